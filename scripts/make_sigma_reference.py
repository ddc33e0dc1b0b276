#!/usr/bin/env python3
"""Makes the tiny random PixArt-Σ pipelines and their diffusers reference bundles.

    venv/bin/python scripts/make_sigma_reference.py        # or: scripts/make_fixtures.py sigma

PixArt-Σ is PixArt-α's transformer class with other settings, run by diffusers'
PixArtSigmaPipeline: 300 text tokens (max_sequence_length), no micro-conditions
(use_additional_conditions false), interpolation_scale set per size (256: 0.5, 512: 1, 1024: 2,
2048: 4, as diffusers' scripts/convert_pixart_sigma_to_diffusers.py sets it), the SDXL VAE
(scaling_factor 0.13025) and aspect-ratio bins that add a 2048 table (sample_size 256).

Writes, from random weights with fixed seeds (the tokenizer is tiny-pixart-512's):
  fixtures/tiny-pixart-sigma-512/    sample_size 64, interpolation 1, VAE factor 8 (native 512²)
  fixtures/tiny-pixart-sigma-1024/   sample_size 128, interpolation 2
  fixtures/tiny-pixart-sigma-2k/     sample_size 256, interpolation 4
  fixtures/reference-sigma-512/, reference-sigma-1024/, reference-sigma-2k/
      reference bundles (the cases.json of make_reference.py plus "resolution_binning" and
      "max_sequence_length"), PixArtSigmaPipeline float32 on the CPU, clean_caption=False; per
      case NAME.png and NAME.safetensors (image, final_latents, input_ids, attention_mask,
      prompt_embeds of the prompt: 300 tokens).
  fixtures/sigma/bins.json            for each bin table (256, 512, 1024, 2048) sizes and the
      bin diffusers' PixArtImageProcessor.classify_height_width_bin picks for them.
  fixtures/sigma/PixArt-Sigma-tiny-1024-MS.pth   the 1024 transformer in the original release
      layout ({"state_dict": ...}: no pos_embed, no csize/ar embedders, as PixArtMS saves it)
  fixtures/sigma/converted-1024/      that .pth converted as diffusers' Σ conversion script
      does (its key mapping, Transformer2DModel(sample_size=1024 // 8, interpolation_scale=2,
      use_additional_conditions=False), load_state_dict strict) and saved by save_pretrained.
Nothing here uses pixconv code.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
sys.path.insert(0, str(ROOT / "scripts"))
import make_fixtures as mf  # noqa: E402  (tiny T5, tokenizer loading, original layout)
from make_reference import finite_config  # noqa: E402

GENERATOR = "diffusers PixArtSigmaPipeline, float32, CPU"
# diffusers' scripts/convert_pixart_sigma_to_diffusers.py: interpolation_scale per image size.
INTERPOLATION = {256: 0.5, 512: 1, 1024: 2, 2048: 4}

PIPELINES = {
    # name: (image size of the released model it imitates, base seed)
    "tiny-pixart-sigma-512": (512, 300),
    "tiny-pixart-sigma-1024": (1024, 400),
    "tiny-pixart-sigma-2k": (2048, 500),
}

LONG_PROMPT = (
    "A breathtaking panoramic view of an ancient mountain monastery at dawn, golden light "
    "spilling over jagged snowy peaks, prayer flags fluttering in the cold wind, monks in red "
    "robes walking along a narrow stone path, mist rising from the deep green valley below, "
    "a winding river reflecting the pink sky, flocks of birds circling the tall wooden towers, "
    "intricate carvings on the weathered doors, lanterns glowing softly in the windows, "
    "highly detailed, cinematic composition, volumetric lighting, 8k, oil painting in the style "
    "of the old masters, warm colours, soft shadows, sharp focus, award winning photograph, "
    "trending on artstation, a small dog sleeping by the gate, a cart of apples, a quiet morning"
)

# About 220 tokens of the tiny tokenizer: past PixArt-α's 120, within Σ's 300 (LONG_PROMPT is
# about 330, so Σ truncates it too).
MEDIUM_PROMPT = LONG_PROMPT[:LONG_PROMPT.index("highly detailed")].rstrip(", ")

CASES = {
    "tiny-pixart-sigma-512": [
        {"name": "long-prompt-dpm", "prompt": MEDIUM_PROMPT, "seed": 0, "steps": 20,
         "guidance_scale": 4.5, "height": 64, "width": 64, "scheduler": "dpm++2m"},
        {"name": "tall-binned-dpm", "prompt": "a lighthouse on a cliff at dusk", "seed": 1,
         "steps": 10, "guidance_scale": 4.5, "height": 96, "width": 64, "scheduler": "dpm++2m",
         "resolution_binning": True},  # generated at the 1.46 bin, 608x416, then resized back
        {"name": "fox-ddim-nocfg", "prompt": "a red fox in a snowy forest", "seed": 2, "steps": 10,
         "guidance_scale": 1.0, "height": 64, "width": 96, "scheduler": "ddim"},
    ],
    "tiny-pixart-sigma-1024": [
        {"name": "wide-binned-dpm", "prompt": "A peaceful mountain lake, watercolor, soft light",
         "negative_prompt": "ugly, text", "seed": 3, "steps": 8, "guidance_scale": 4.5,
         "height": 120, "width": 200, "scheduler": "dpm++2m", "resolution_binning": True},  # bin 768x1280
        {"name": "square-euler", "prompt": LONG_PROMPT, "seed": 4, "steps": 10,
         "guidance_scale": 3.0, "height": 128, "width": 128, "scheduler": "euler"},
    ],
    "tiny-pixart-sigma-2k": [
        {"name": "small-dpm", "prompt": "an astronaut riding a horse on the moon", "seed": 5,
         "steps": 20, "guidance_scale": 4.5, "height": 128, "width": 192, "scheduler": "dpm++2m"},
    ],
}


def tiny_sigma_transformer(image_size: int, seed: int):
    from diffusers import PixArtTransformer2DModel
    torch.manual_seed(seed)
    m = PixArtTransformer2DModel(
        sample_size=image_size // 8, num_layers=2, patch_size=2, attention_head_dim=8,
        num_attention_heads=3, caption_channels=32, in_channels=4, cross_attention_dim=24,
        out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False,
        norm_eps=1e-6, interpolation_scale=INTERPOLATION[image_size], use_additional_conditions=False)
    mf.add_noise(m, seed + 1)
    return m.eval()


def tiny_sdxl_vae(seed: int):
    """The SDXL VAE's layout (4 blocks: factor 8, 4 latent channels, scaling_factor 0.13025),
    narrow."""
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    m = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64,
        scaling_factor=0.13025, force_upcast=True)
    mf.add_noise(m, seed + 1)
    return m.eval()


def make_pipeline(name: str) -> Path:
    from diffusers import PixArtSigmaPipeline
    size, seed = PIPELINES[name]
    folder = FIX / name
    if folder.exists():
        shutil.rmtree(folder)
    spiece = FIX / "tiny-pixart-512" / "tokenizer" / "spiece.model"
    with tempfile.TemporaryDirectory() as td:
        tdir = Path(td) / "tok"
        tdir.mkdir()
        shutil.copyfile(spiece, tdir / "spiece.model")
        tok = mf.load_tokenizer(tdir, spiece)
        te = mf.tiny_text_encoder(len(tok), seed + 10)
        tr = tiny_sigma_transformer(size, seed + 20)
        vae = tiny_sdxl_vae(seed + 30)
        pipe = PixArtSigmaPipeline(tokenizer=tok, text_encoder=te, vae=vae, transformer=tr,
                                   scheduler=mf.pixart_scheduler())
        pipe.save_pretrained(str(folder), safe_serialization=True)
    shutil.copyfile(spiece, folder / "tokenizer" / "spiece.model")
    (folder / "tokenizer" / "tokenizer.json").unlink()
    for cfg in folder.glob("*/config.json"):
        cfg.write_text(cfg.read_text().replace(str(ROOT) + "/", ""))
    return folder


def load(folder: Path):
    from diffusers import PixArtSigmaPipeline
    pipe = PixArtSigmaPipeline.from_pretrained(str(folder), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae_scale_factor == 8, pipe.vae_scale_factor
    return pipe


def run_case(pipe, case: dict, out_dir: Path) -> dict:
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
    from safetensors.torch import save_file
    c = {"negative_prompt": "", "resolution_binning": False, **case}
    cls = {"dpm++2m": DPMSolverMultistepScheduler, "ddim": DDIMScheduler,
           "euler": EulerDiscreteScheduler}[c["scheduler"]]
    pipe.scheduler = cls.from_config(pipe.scheduler.config)
    common = dict(prompt=c["prompt"], negative_prompt=c["negative_prompt"],
                  num_inference_steps=int(c["steps"]), guidance_scale=float(c["guidance_scale"]),
                  height=int(c["height"]), width=int(c["width"]), clean_caption=False,
                  use_resolution_binning=bool(c["resolution_binning"]), max_sequence_length=300)
    gen = lambda: torch.Generator("cpu").manual_seed(int(c["seed"]))  # noqa: E731
    img = pipe(generator=gen(), output_type="np", **common).images[0]
    pil = pipe(generator=gen(), output_type="pil", **common).images[0]
    assert np.array_equal(np.asarray(pil), (img * 255).round().astype(np.uint8))
    assert img.shape == (c["height"], c["width"], 3), img.shape
    final = pipe(generator=gen(), output_type="latent", **common).images
    with torch.no_grad():
        tok = pipe.tokenizer(c["prompt"].lower().strip(), padding="max_length", max_length=300,
                             truncation=True, add_special_tokens=True, return_tensors="pt")
        emb = pipe.text_encoder(tok.input_ids, attention_mask=tok.attention_mask)[0]
        pe, pm, _, _ = pipe.encode_prompt(c["prompt"], do_classifier_free_guidance=False,
                                          clean_caption=False, max_sequence_length=300)
    assert torch.equal(pe, emb) and torch.equal(pm, tok.attention_mask)
    tensors = {"image": torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)),
               "final_latents": final.float().contiguous(),
               "input_ids": tok.input_ids.to(torch.int64).contiguous(),
               "attention_mask": tok.attention_mask.to(torch.int64).contiguous(),
               "prompt_embeds": emb.float().contiguous()}
    name = c["name"]
    pil.save(out_dir / f"{name}.png", format="PNG")
    save_file(tensors, str(out_dir / f"{name}.safetensors"), metadata={"format": "pt"})
    rec = {k: c[k] for k in ("name", "prompt", "negative_prompt", "seed", "steps", "guidance_scale",
                             "height", "width", "scheduler", "resolution_binning")}
    rec.update(max_sequence_length=300, image=f"{name}.png", tensors=f"{name}.safetensors",
               scheduler_class=type(pipe.scheduler).__name__,
               scheduler_config=finite_config(pipe.scheduler.config),
               prompt_tokens=int(tok.attention_mask.sum()))
    if c["resolution_binning"]:
        rec["latent_size"] = list(final.shape[2:])
    return rec


def make_bundle(folder: Path, name: str) -> None:
    pipe = load(folder)
    out = FIX / ("reference-" + name.replace("tiny-pixart-", ""))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    records = [run_case(pipe, case, out) for case in CASES[name]]
    for r in records:
        print(f"  {name}/{r['name']}: {r['width']}x{r['height']}, {r['prompt_tokens']} prompt tokens"
              + (f", latents {r['latent_size']}" if "latent_size" in r else ""))
    doc = {"generator": GENERATOR, "model": name, "vae_scale_factor": pipe.vae_scale_factor,
           "cases": records}
    (out / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")


def make_bins() -> None:
    from diffusers.image_processor import PixArtImageProcessor
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
        ASPECT_RATIO_256_BIN, ASPECT_RATIO_512_BIN, ASPECT_RATIO_1024_BIN)
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_sigma import ASPECT_RATIO_2048_BIN
    tables = {"256": ASPECT_RATIO_256_BIN, "512": ASPECT_RATIO_512_BIN,
              "1024": ASPECT_RATIO_1024_BIN, "2048": ASPECT_RATIO_2048_BIN}
    rng = np.random.default_rng(7)
    sizes = [(8 * int(h), 8 * int(w)) for h, w in rng.integers(1, 600, size=(150, 2))]
    # Ratios on and between the keys (ties go to the earlier key).
    for key in ASPECT_RATIO_2048_BIN:
        sizes.append((int(round(float(key) * 1000)) * 8, 8000))
    sizes += [(1024, 1024), (8, 4096), (4096, 8), (600, 1000), (1000, 600)]
    out = {"tables": {}, "cases": {}}
    for name, table in tables.items():
        out["tables"][name] = [[k, int(v[0]), int(v[1])] for k, v in table.items()]
        out["cases"][name] = [[h, w, *PixArtImageProcessor.classify_height_width_bin(h, w, ratios=table)]
                              for h, w in sizes]
    (FIX / "sigma").mkdir(exist_ok=True)
    (FIX / "sigma" / "bins.json").write_text(json.dumps(out, separators=(",", ":")) + "\n")


def sigma_convert(state_dict: dict, num_layers: int) -> dict:
    """The key mapping of diffusers' scripts/convert_pixart_sigma_to_diffusers.py (no micro
    conditions, no qk norm; depth adapted): α's mapping, and pos_embed / y_embedding dropped
    when present."""
    sd = dict(state_dict)
    sd.setdefault("pos_embed", None)
    c = mf.diffusers_convert(sd, num_layers)
    assert not any("resolution_embedder" in k for k in c)
    return c


def make_original_layout() -> None:
    from diffusers import PixArtTransformer2DModel
    folder = FIX / "tiny-pixart-sigma-1024"
    tr = PixArtTransformer2DModel.from_pretrained(str(folder / "transformer")).eval()
    orig = mf.to_original(tr, seed=41)
    orig.pop("pos_embed")  # PixArtMS computes its position embedding per size and saves none
    g = torch.Generator("cpu").manual_seed(42)  # Σ's learned null caption has 300 tokens
    orig["y_embedder.y_embedding"] = torch.randn(300, 32, generator=g) / 32 ** 0.5
    assert not any(k.startswith("csize_embedder") for k in orig)
    pth = FIX / "sigma" / "PixArt-Sigma-tiny-1024-MS.pth"
    torch.save({"state_dict": orig}, str(pth))
    loaded = torch.load(str(pth), map_location="cpu", weights_only=True)["state_dict"]
    converted = sigma_convert(loaded, tr.config.num_layers)
    model = PixArtTransformer2DModel(
        sample_size=1024 // 8, num_layers=tr.config.num_layers, attention_head_dim=8, in_channels=4,
        out_channels=8, patch_size=2, attention_bias=True, num_attention_heads=3,
        cross_attention_dim=24, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        caption_channels=32, interpolation_scale=INTERPOLATION[1024], use_additional_conditions=False)
    model.load_state_dict(converted, strict=True)
    out = FIX / "sigma" / "converted-1024"
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(str(out), safe_serialization=True)
    # The conversion must give back the model it came from.
    for k, v in tr.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    print(f"sigma/PixArt-Sigma-tiny-1024-MS.pth: {len(orig)} tensors; converted-1024 equal to the source")


def main() -> None:
    torch.manual_seed(0)
    for name in PIPELINES:
        folder = make_pipeline(name)
        make_bundle(folder, name)
    make_bins()
    make_original_layout()


if __name__ == "__main__":
    main()
