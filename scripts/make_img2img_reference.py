#!/usr/bin/env python3
"""Reference outputs for the VAE encoder and img2img (fixtures/img2img/), float32, CPU.

diffusers has no PixArt img2img pipeline, so each img2img case composes diffusers' own parts in the
order of StableDiffusionImg2ImgPipeline (pipelines/stable_diffusion/pipeline_stable_diffusion_img2img.py),
on the tiny pipeline fixtures/tiny-pixart-512:

    image    = diffusers.utils.load_image(NAME-init.png)                 PIL, convert("RGB")
    x        = pipe.image_processor.preprocess(image, height, width)     Lanczos resize, [-1, 1]
    pipe.scheduler.set_timesteps(steps); get_timesteps(steps, strength)  -> timesteps[t_start:], set_begin_index
    g        = torch.Generator("cpu").manual_seed(seed)
    init     = retrieve_latents(pipe.vae.encode(x), generator=g) * scaling_factor     (latent_dist.sample)
    noise    = randn_tensor(init.shape, generator=g)
    latents  = pipe.scheduler.add_noise(init, noise, timesteps[:1])
    latents  = PixArtAlphaPipeline's denoising loop body over timesteps (prompt embeddings from
               pipe.encode_prompt, classifier-free guidance, learned-sigma split, scheduler.step)
    image    = pipe.image_processor.postprocess(pipe.vae.decode(latents / scaling_factor).sample)

Writes:
  cases.json, and per case NAME-init.png (the input), NAME.png (PIL output) and NAME.safetensors:
    pixels (1,3,H,W) preprocessed input, init_latents (scaled sample), noise, noisy_latents,
    final_latents (1,4,H/2,W/2), image (H,W,3) f32 (output_type "np"), timesteps (n,) f32.
  encode.safetensors   tiny VAE: x_a (2,3,16,16) -> moments_a (quant_conv output), x_b (1,3,12,20) ->
                       moments_b, mean_b, std_b, sample_b (latent_dist.sample with manual_seed(5)),
                       mode_b.
  encoder-deep/        a random 3-level AutoencoderKL (block_out_channels (16,16,16), 8 groups,
                       layers_per_block 2, no mid attention): config.json, encoder.* and quant_conv.*
                       tensors, encode.safetensors (x (1,3,13,11) -> moments (1,8,3,2): odd sizes).
  ops.safetensors      stride-2 F.conv2d: Downsample2D's F.pad (0,1,0,1) + stride 2 pad 0, and stride 2 pad 1.
  resize.safetensors   PIL Image.resize(LANCZOS) of random RGB images (src_K, dst_K as uint8 HWC).
  decode/              PNGs written by PIL (rgb, rgba, l, la, p with transparency) and a 16-bit RGB
                       PNG written here; decode.safetensors: PIL Image.open(f).convert("RGB") pixels.

Run: venv/bin/python scripts/make_img2img_reference.py          (the fixtures above)
One case on another pipeline (not a fixture; e.g. the full-size random one of make_fullsize_pipeline.py):
     venv/bin/python scripts/make_img2img_reference.py --model DIR --init-image PNG --out DIR \
         [--prompt TEXT] [--seed N] [--steps N] [--strength S] [--guidance-scale X] [--scheduler dpm++2m|ddim|euler]
  writes OUT/case.png, OUT/case.safetensors and OUT/case.json as above.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
OUT = FIX / "img2img"
MODEL = FIX / "tiny-pixart-512"

CASES = [
    # Init image already at the output size; diffusers' default strength.
    {"name": "fox-dpm", "prompt": "a red fox in a snowy forest, watercolor", "init": "rgb", "init_size": (16, 16),
     "seed": 7, "steps": 10, "strength": 0.8, "guidance_scale": 4.5, "scheduler": "dpm++2m"},
    # RGBA (alpha dropped by convert("RGB")), resized 20x24 -> 16x16 with Lanczos.
    {"name": "owl-euler-resized", "prompt": "a glowing owl under the stars", "negative_prompt": "blurry",
     "init": "rgba", "init_size": (20, 24), "height": 16, "width": 16,
     "seed": 3, "steps": 10, "strength": 0.6, "guidance_scale": 3.0, "scheduler": "euler"},
    # Grey, 17 wide: the default size rounds the width down to 16 (a horizontal-only resize).
    {"name": "lake-ddim-nocfg", "prompt": "a peaceful mountain lake", "init": "l", "init_size": (17, 16),
     "seed": 11, "steps": 10, "strength": 0.5, "guidance_scale": 1.0, "scheduler": "ddim"},
]


def synthetic_rgb(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth picture (gradients, a disc) with a little noise, HWC uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    disc = ((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2) < (min(width, height) * 0.3) ** 2
    b = np.where(disc, 230.0, 40.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (height, width, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_init_png(kind: str, size: tuple[int, int], seed: int, path: Path) -> None:
    from PIL import Image
    if kind.startswith("file:"):  # an existing PNG, copied as is
        path.write_bytes(Path(kind[5:]).read_bytes())
        return
    w, h = size
    rgb = synthetic_rgb(w, h, seed)
    if kind == "rgb":
        im = Image.fromarray(rgb, "RGB")
    elif kind == "rgba":
        alpha = np.random.default_rng(seed + 1).integers(0, 256, (h, w), dtype=np.uint8)
        im = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    elif kind == "l":
        im = Image.fromarray(rgb.mean(axis=-1).round().astype(np.uint8), "L")
    else:
        raise ValueError(kind)
    im.save(path, format="PNG")


def make_scheduler(pipe, kind: str):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
    cls = {"dpm++2m": DPMSolverMultistepScheduler, "ddim": DDIMScheduler,
           "euler": EulerDiscreteScheduler}[kind]
    return cls.from_config(pipe.scheduler.config)


def run_case(pipe, c: dict) -> dict:
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
    from diffusers.utils import load_image
    from diffusers.utils.torch_utils import randn_tensor
    from safetensors.torch import save_file

    name = c["name"]
    init_path = OUT / f"{name}-init.png"
    write_init_png(c["init"], c["init_size"], c["seed"] + 100, init_path)
    neg = c.get("negative_prompt", "")
    steps, strength, cfg = int(c["steps"]), float(c["strength"]), float(c["guidance_scale"])
    do_cfg = cfg > 1.0
    pipe.scheduler = make_scheduler(pipe, c["scheduler"])
    sched = pipe.scheduler

    with torch.no_grad():
        # StableDiffusionImg2ImgPipeline.__call__ order: prompt, image, timesteps, latents, loop.
        pe, pm, ne, nm = pipe.encode_prompt(c["prompt"], do_classifier_free_guidance=do_cfg, negative_prompt=neg,
                                            clean_caption=False)
        if do_cfg:
            pe = torch.cat([ne, pe], dim=0)
            pm = torch.cat([nm, pm], dim=0)
        image = load_image(str(init_path))
        x = pipe.image_processor.preprocess(image, height=c.get("height"), width=c.get("width"))
        h, w = x.shape[-2:]
        sched.set_timesteps(steps)
        init_timestep = min(int(steps * strength), steps)
        t_start = max(steps - init_timestep, 0)
        timesteps = sched.timesteps[t_start * sched.order:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(t_start * sched.order)
        assert len(timesteps) >= 2  # the pipeline's one-step branch is not exercised
        g = torch.Generator("cpu").manual_seed(int(c["seed"]))
        init = retrieve_latents(pipe.vae.encode(x), generator=g)  # latent_dist.sample(g)
        init = pipe.vae.config.scaling_factor * init
        noise = randn_tensor(init.shape, generator=g, dtype=init.dtype)
        latents = sched.add_noise(init, noise, timesteps[:1])
        noisy = latents.clone()

        extra = pipe.prepare_extra_step_kwargs(g, 0.0)
        added = {"resolution": None, "aspect_ratio": None}
        assert pipe.transformer.config.sample_size != 128  # no micro-conditions in this model
        latent_channels = pipe.transformer.config.in_channels
        for t in timesteps:  # PixArtAlphaPipeline.__call__'s loop body
            inp = torch.cat([latents] * 2) if do_cfg else latents
            inp = sched.scale_model_input(inp, t)
            current = t
            if len(current.shape) == 0:
                current = current[None]
            current = current.expand(inp.shape[0])
            pred = pipe.transformer(inp, encoder_hidden_states=pe, encoder_attention_mask=pm, timestep=current,
                                    added_cond_kwargs=added, return_dict=False)[0]
            if do_cfg:
                u, t_ = pred.chunk(2)
                pred = u + cfg * (t_ - u)
            if pipe.transformer.config.out_channels // 2 == latent_channels:
                pred = pred.chunk(2, dim=1)[0]
            latents = sched.step(pred, t, latents, **extra, return_dict=False)[0]
        sample = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
        img = pipe.image_processor.postprocess(sample, output_type="np")[0]
        pil = pipe.image_processor.numpy_to_pil(img[None])[0]

    pil.save(OUT / f"{name}.png", format="PNG")
    tensors = {"pixels": x.contiguous(), "init_latents": init.contiguous(), "noise": noise.contiguous(),
               "noisy_latents": noisy.contiguous(), "final_latents": latents.contiguous(),
               "image": torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)),
               "timesteps": timesteps.to(torch.float32).contiguous()}
    save_file(tensors, str(OUT / f"{name}.safetensors"), metadata={"format": "pt"})
    rec = {k: c[k] for k in ("name", "prompt", "seed", "steps", "strength", "guidance_scale", "scheduler")}
    rec.update(negative_prompt=neg, height=int(h), width=int(w), init_image=f"{name}-init.png",
               init_width=c["init_size"][0], init_height=c["init_size"][1],
               size_given="height" in c, first_step=t_start, image=f"{name}.png", tensors=f"{name}.safetensors",
               scheduler_class=type(sched).__name__)
    print(f"  {name}: {w}x{h}, steps {t_start}..{steps}, |latents| {float(latents.abs().max()):.3f}")
    return rec


def make_encode(vae) -> None:
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(4321)
    t = {}
    with torch.no_grad():
        t["x_a"] = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
        t["moments_a"] = vae.encode(t["x_a"]).latent_dist.parameters.contiguous().clone()
        t["x_b"] = torch.rand(1, 3, 12, 20, generator=g) * 2 - 1
        dist = vae.encode(t["x_b"]).latent_dist
        t["moments_b"] = dist.parameters.contiguous().clone()
        t["mean_b"] = dist.mean.contiguous().clone()
        t["std_b"] = dist.std.contiguous().clone()
        t["sample_b"] = dist.sample(torch.Generator("cpu").manual_seed(5)).contiguous().clone()
        t["mode_b"] = dist.mode().contiguous().clone()
    save_file(t, str(OUT / "encode.safetensors"))


def make_deep_encoder() -> None:
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file
    torch.manual_seed(17)
    vae = AutoencoderKL(block_out_channels=(16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=2, norm_num_groups=8,
                        latent_channels=4, mid_block_add_attention=False).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = OUT / "encoder-deep"
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous().clone() for k, v in vae.state_dict().items()
             if k.startswith("encoder.") or k.startswith("quant_conv.")}
    save_file(state, str(folder / "diffusion_pytorch_model.safetensors"))
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vae.config.items() if not k.startswith("_")}
    config["_class_name"] = "AutoencoderKL"
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    g = torch.Generator().manual_seed(18)
    x = torch.rand(1, 3, 13, 11, generator=g) * 2 - 1
    with torch.no_grad():
        moments = vae.encode(x).latent_dist.parameters.contiguous()
    save_file({"x": x, "moments": moments}, str(folder / "encode.safetensors"))


def make_ops() -> None:
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(77)
    t = {}
    for tag, (h, w) in (("odd", (7, 9)), ("even", (8, 8))):
        x = torch.randn(5, h, w, generator=g)
        wt = torch.randn(6, 5, 3, 3, generator=g) * 0.3
        b = torch.randn(6, generator=g)
        t[f"x_{tag}"], t[f"w_{tag}"], t[f"b_{tag}"] = x, wt, b
        t[f"down_{tag}"] = F.conv2d(F.pad(x[None], (0, 1, 0, 1)), wt, b, stride=2)[0].contiguous()
        t[f"s2p1_{tag}"] = F.conv2d(x[None], wt, b, stride=2, padding=1)[0].contiguous()
    save_file(t, str(OUT / "ops.safetensors"))


def make_resize() -> None:
    from PIL import Image
    from safetensors.torch import save_file
    rng = np.random.default_rng(99)
    t = {}
    shapes = {"down": ((23, 17), (16, 16)), "up": ((7, 5), (16, 12)), "vert": ((20, 16), (20, 9)),
              "horiz": ((12, 10), (31, 10)), "mixed": ((40, 9), (13, 21))}
    for tag, ((sw, sh), (dw, dh)) in shapes.items():
        src = synthetic_rgb(sw, sh, int(rng.integers(1 << 30)))
        dst = np.asarray(Image.fromarray(src, "RGB").resize((dw, dh), resample=Image.Resampling.LANCZOS))
        t[f"src_{tag}"] = torch.from_numpy(np.ascontiguousarray(src))
        t[f"dst_{tag}"] = torch.from_numpy(np.ascontiguousarray(dst))
    save_file(t, str(OUT / "resize.safetensors"))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16_rgb(rgb16: np.ndarray, path: Path) -> None:
    """A 16-bit RGB PNG (PIL cannot write one): filter 0 rows, zlib level 9."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
                     + png_chunk(b"IEND", b""))


def make_decode() -> None:
    from PIL import Image
    from safetensors.torch import save_file
    folder = OUT / "decode"
    folder.mkdir(parents=True, exist_ok=True)
    rgb = synthetic_rgb(9, 7, 55)
    alpha = np.random.default_rng(56).integers(0, 256, (7, 9), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(folder / "rgb.png")
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(folder / "rgba.png")
    grey = rgb.mean(axis=-1).round().astype(np.uint8)
    Image.fromarray(grey, "L").save(folder / "l.png")
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(folder / "la.png")
    pal = Image.fromarray(rgb, "RGB").quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.info["transparency"] = 3  # one palette entry transparent (tRNS)
    pal.save(folder / "p.png", transparency=3)
    # 16-bit colour 256·v + l with |l − v| ≤ 100: PIL keeps the high byte v, libpng rounds to v too.
    low = np.clip(rgb.astype(np.int64) + np.random.default_rng(57).integers(-100, 101, rgb.shape), 0, 255)
    write_png16_rgb(rgb.astype(np.uint16) * 256 + low.astype(np.uint16), folder / "rgb16.png")
    t = {}
    for name in ("rgb", "rgba", "l", "la", "p", "rgb16"):
        with Image.open(folder / f"{name}.png") as im:
            t[name] = torch.from_numpy(np.ascontiguousarray(np.asarray(im.convert("RGB"))))
    save_file(t, str(OUT / "decode.safetensors"))


def main() -> None:
    from diffusers import AutoencoderKL, PixArtAlphaPipeline
    torch.set_num_threads(1)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    pipe = PixArtAlphaPipeline.from_pretrained(str(MODEL), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    records = [run_case(pipe, c) for c in CASES]
    doc = {"generator": "diffusers parts composed as StableDiffusionImg2ImgPipeline (scripts/make_img2img_reference.py), "
                        "float32, CPU",
           "model": MODEL.name, "vae_scale_factor": pipe.vae_scale_factor, "cases": records}
    (OUT / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")
    vae = AutoencoderKL.from_pretrained(str(MODEL / "vae"), torch_dtype=torch.float32).eval()
    make_encode(vae)
    make_deep_encoder()
    make_ops()
    make_resize()
    make_decode()


def one_case(argv: list[str]) -> None:
    import argparse
    from PIL import Image
    from diffusers import PixArtAlphaPipeline
    global OUT
    ap = argparse.ArgumentParser(description="one composed img2img reference case")
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--init-image", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--prompt", default="a red fox")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--strength", type=float, default=0.5)
    ap.add_argument("--guidance-scale", type=float, default=4.5)
    ap.add_argument("--scheduler", default="dpm++2m")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    OUT = args.out
    OUT.mkdir(parents=True, exist_ok=True)
    with Image.open(args.init_image) as im:
        size = im.size
    pipe = PixArtAlphaPipeline.from_pretrained(str(args.model), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    c = {"name": "case", "prompt": args.prompt, "init": f"file:{args.init_image}", "init_size": size,
         "seed": args.seed, "steps": args.steps, "strength": args.strength, "guidance_scale": args.guidance_scale,
         "scheduler": args.scheduler}
    (OUT / "case.json").write_text(json.dumps(run_case(pipe, c), indent=2) + "\n")


if __name__ == "__main__":
    one_case(sys.argv[1:]) if len(sys.argv) > 1 else main()
