#!/usr/bin/env python3
"""Makes a whole-pipeline reference bundle with diffusers' PixArtAlphaPipeline (float32, CPU).

    venv/bin/python scripts/make_reference.py --model fixtures/tiny-pixart-512 \
        --prompts prompts.json --out out/reference-512

prompts.json is a JSON list of cases (or {"cases": [...]}); each case has a "name" and any of
"prompt", "negative_prompt" (default ""), "seed" (0), "steps" (20), "guidance_scale" (4.5),
"height"/"width" (model default: transformer sample_size x vae scale factor), "scheduler"
("dpm++2m" = the folder's DPMSolverMultistepScheduler, "ddim" = DDIMScheduler and "euler" =
EulerDiscreteScheduler, both configured from the folder's scheduler config).

The bundle is <out>/cases.json plus, per case, NAME.png (the pipeline's PIL output) and
NAME.safetensors with
  image             (H, W, 3) f32  output_type="np" image in [0, 1]
  latents           (1, 4, H/f, W/f) f32  initial noise: torch.randn from
                    torch.Generator("cpu").manual_seed(seed), before init_noise_sigma scaling
  final_latents     (1, 4, H/f, W/f) f32  denoised latents (output_type="latent"), before the VAE
  input_ids, attention_mask            (1, 120) i64  tokenizer output for the prompt
  negative_input_ids, negative_attention_mask (1, 120) i64  (only when guidance_scale > 1)
  prompt_embeds     (1, 120, D) f32  T5 last_hidden_state for the prompt
  negative_prompt_embeds (1, 120, D) f32  (only when guidance_scale > 1)
All calls use clean_caption=False, use_resolution_binning=False, float32 on CPU. The script
checks that passing `latents` back reproduces the generator run bit for bit.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

DEFAULTS = {"negative_prompt": "", "seed": 0, "steps": 20, "guidance_scale": 4.5,
            "scheduler": "dpm++2m"}
GENERATOR = "diffusers PixArtAlphaPipeline, float32, CPU"


def load_pipeline(model_dir: Path):
    from diffusers import PixArtAlphaPipeline
    pipe = PixArtAlphaPipeline.from_pretrained(str(model_dir), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_scheduler(pipe, kind: str):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
    cls = {"dpm++2m": DPMSolverMultistepScheduler, "ddim": DDIMScheduler,
           "euler": EulerDiscreteScheduler}[kind]
    if kind == "dpm++2m":
        assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)
    return cls.from_config(pipe.scheduler.config)


def finite_config(cfg) -> dict:
    """Scheduler config as plain JSON (non-finite floats, which JSON cannot hold, are dropped)."""
    out = {}
    for k, v in dict(cfg).items():
        if k.startswith("_"):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            continue
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def run_case(pipe, case: dict, out_dir: Path) -> dict:
    from safetensors.torch import save_file
    c = dict(DEFAULTS, **case)
    vsf = pipe.vae_scale_factor
    default = pipe.transformer.config.sample_size * vsf
    c.setdefault("height", default)
    c.setdefault("width", default)
    h, w, seed = int(c["height"]), int(c["width"]), int(c["seed"])
    pipe.scheduler = make_scheduler(pipe, c["scheduler"])
    common = dict(prompt=c["prompt"], negative_prompt=c["negative_prompt"],
                  num_inference_steps=int(c["steps"]), guidance_scale=float(c["guidance_scale"]),
                  height=h, width=w, clean_caption=False, use_resolution_binning=False)

    # 1. Reference run with the generator, as a user would call it.
    img_gen = pipe(generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **common).images[0]
    # 2. The same initial noise drawn explicitly; passing it back must give the same image.
    shape = (1, pipe.transformer.config.in_channels, h // vsf, w // vsf)
    latents = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
    img = pipe(latents=latents.clone(), output_type="np", **common).images[0]
    assert np.array_equal(img, img_gen), f"{c['name']}: explicit latents do not reproduce the run"
    pil = pipe(latents=latents.clone(), output_type="pil", **common).images[0]
    assert np.array_equal(np.asarray(pil), (img * 255).round().astype(np.uint8))
    final = pipe(latents=latents.clone(), output_type="latent", **common).images

    do_cfg = float(c["guidance_scale"]) > 1.0
    tensors = {"image": torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)),
               "latents": latents, "final_latents": final.float().contiguous()}
    with torch.no_grad():
        for key, text in (("", c["prompt"]), ("negative_", c["negative_prompt"])):
            if key and not do_cfg:
                continue
            tok = pipe.tokenizer(text.lower().strip(), padding="max_length", max_length=120,
                                 truncation=True, add_special_tokens=True, return_tensors="pt")
            emb = pipe.text_encoder(tok.input_ids, attention_mask=tok.attention_mask)[0]
            tensors[f"{key}input_ids"] = tok.input_ids.to(torch.int64).contiguous()
            tensors[f"{key}attention_mask"] = tok.attention_mask.to(torch.int64).contiguous()
            tensors[f"{key}prompt_embeds"] = emb.float().contiguous()
    # The embeddings above must be what the pipeline itself computes.
    with torch.no_grad():  # as in PixArtAlphaPipeline.__call__
        pe, pm, ne, nm = pipe.encode_prompt(c["prompt"], do_classifier_free_guidance=do_cfg,
                                            negative_prompt=c["negative_prompt"], clean_caption=False)
    assert torch.equal(pe, tensors["prompt_embeds"]), (pe - tensors["prompt_embeds"]).abs().max()
    assert torch.equal(pm, tensors["attention_mask"]), (pm, tensors["attention_mask"])
    if do_cfg:
        assert torch.equal(ne, tensors["negative_prompt_embeds"])

    name = c["name"]
    pil.save(out_dir / f"{name}.png", format="PNG")
    save_file(tensors, str(out_dir / f"{name}.safetensors"), metadata={"format": "pt"})
    rec = {k: c[k] for k in ("name", "prompt", "negative_prompt", "seed", "steps",
                             "guidance_scale", "height", "width", "scheduler")}
    rec["image"] = f"{name}.png"
    rec["tensors"] = f"{name}.safetensors"
    rec["scheduler_class"] = type(pipe.scheduler).__name__
    rec["scheduler_config"] = finite_config(pipe.scheduler.config)
    return rec


def make_bundle(model_dir: Path, cases: list[dict], out_dir: Path, model_name: str | None = None) -> dict:
    pipe = load_pipeline(model_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    records = []
    for case in cases:
        records.append(run_case(pipe, case, out_dir))
        print(f"  {case['name']}: done")
    doc = {"generator": GENERATOR, "model": model_name or model_dir.name,
           "vae_scale_factor": pipe.vae_scale_factor, "cases": records}
    (out_dir / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, type=Path, help="diffusers PixArt pipeline folder")
    ap.add_argument("--prompts", required=True, type=Path, help="JSON list of cases")
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    ap.add_argument("--name", default=None, help="model name written to cases.json")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    cases = json.loads(args.prompts.read_text())
    if isinstance(cases, dict):
        cases = cases["cases"]
    make_bundle(args.model, cases, args.out, args.name)


if __name__ == "__main__":
    main(sys.argv[1:])
