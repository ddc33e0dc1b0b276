#!/usr/bin/env python3
"""Reference outputs of diffusers' tiled VAE encoding (AutoencoderKL.enable_tiling(), then encode:
_tiled_encode) for the Swift tests, float32, CPU.

From the VAE of fixtures/tiny-pixart-512 (sample_size 16, scale factor 2: pixel tiles of 16 every
12, each through the encoder and quant_conv, blended over int(8 * 0.25) = 2 latent cells, cropped
to 6), writes fixtures/vae/tiled-encode/:

  encode.safetensors, for images a (1,3,24,28) (2 x 3 tiles), b (2,3,20,18) (a batch, 2 x 2 tiles)
  and c (1,3,27,17) (odd sizes, 3 x 2 tiles); only a's height is a multiple of the 12-pixel stride:
    x_K        the images (seeded normals, tanh-squashed into (-1, 1))
    moments_K  vae.encode(x_K).latent_dist.parameters with tiling on (the blended quant_conv output)
    plain_a    a's moments with tiling off (so a test can see that tiling is really in effect)
    sample_a   latent_dist.sample(torch.Generator("cpu").manual_seed(5)) of a, tiled
    mean_c, std_c  c's latent_dist.mean and .std, tiled
  cases.json, tiled-fox-init.png, tiled-fox.png, tiled-fox.safetensors: one img2img case composed
    as scripts/make_img2img_reference.py does (its run_case), on a 32x24 init image, with
    pipe.vae.enable_tiling(), so both the encode and the decode run in tiles; the safetensors
    keep pixels, noisy_latents and timesteps.
  tiled-fox-decode-only.png: the same case with only the decode tiled (the encode run whole), so
    a test can see that the encode's tiling changes the image.

Run: venv/bin/python scripts/make_vae_tiled_encode_reference.py
"""
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import make_img2img_reference  # noqa: E402  (run_case: the composed img2img pipeline)

MODEL = ROOT / "fixtures" / "tiny-pixart-512"
OUT = ROOT / "fixtures" / "vae" / "tiled-encode"

CASE = {"name": "tiled-fox", "prompt": "a red fox in a snowy forest, watercolor", "init": "rgb", "init_size": (32, 24),
        "seed": 7, "steps": 10, "strength": 0.3, "guidance_scale": 4.5, "scheduler": "dpm++2m"}


def make_encode(vae) -> None:
    out = {}
    for name, shape, seed in [("a", (1, 3, 24, 28), 41), ("b", (2, 3, 20, 18), 42), ("c", (1, 3, 27, 17), 43)]:
        g = torch.Generator("cpu").manual_seed(seed)
        x = torch.tanh(torch.randn(shape, generator=g, dtype=torch.float32))
        with torch.no_grad():
            vae.disable_tiling()
            plain = vae.encode(x).latent_dist.parameters
            vae.enable_tiling()
            dist = vae.encode(x).latent_dist
            vae.disable_tiling()
        assert dist.parameters.shape == plain.shape, (dist.parameters.shape, plain.shape)
        keep = lambda t: t.clone(memory_format=torch.contiguous_format)  # noqa: E731
        out["x_" + name] = keep(x)
        out["moments_" + name] = keep(dist.parameters)
        if name == "a":
            out["plain_a"] = keep(plain)
            out["sample_a"] = keep(dist.sample(torch.Generator("cpu").manual_seed(5)))
        if name == "c":
            out["mean_c"] = keep(dist.mean)
            out["std_c"] = keep(dist.std)
        print(name, tuple(shape), "->", tuple(plain.shape), "max |tiled - plain| moments",
              float((dist.parameters - plain).abs().max()))
    save_file(out, str(OUT / "encode.safetensors"))


def main() -> None:
    from diffusers import AutoencoderKL, PixArtAlphaPipeline
    torch.set_num_threads(1)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    vae = AutoencoderKL.from_pretrained(str(MODEL / "vae"), torch_dtype=torch.float32).eval()
    assert (vae.tile_sample_min_size, vae.tile_latent_min_size, vae.tile_overlap_factor) == (16, 8, 0.25)
    make_encode(vae)

    make_img2img_reference.OUT = OUT  # run_case writes NAME-init.png, NAME.png, NAME.safetensors there
    pipe = PixArtAlphaPipeline.from_pretrained(str(MODEL), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_tiling()
    record = make_img2img_reference.run_case(pipe, CASE)
    tensors = load_file(str(OUT / "tiled-fox.safetensors"))
    save_file({k: tensors[k].contiguous() for k in ("pixels", "noisy_latents", "timesteps")},
              str(OUT / "tiled-fox.safetensors"), metadata={"format": "pt"})

    # The same case with the encode whole: _encode only calls _tiled_encode when tiling is on.
    untiled = pipe.vae
    untiled._tiled_encode = lambda x: untiled.quant_conv(untiled.encoder(x))
    only = dict(CASE, name="tiled-fox-decode-only", init=f"file:{OUT / 'tiled-fox-init.png'}")
    make_img2img_reference.run_case(pipe, only)
    (OUT / "tiled-fox-decode-only-init.png").unlink()
    (OUT / "tiled-fox-decode-only.safetensors").unlink()
    doc = {"generator": "diffusers parts composed as StableDiffusionImg2ImgPipeline "
                        "(scripts/make_img2img_reference.py run_case) with vae.enable_tiling(), float32, CPU "
                        "(scripts/make_vae_tiled_encode_reference.py)",
           "model": MODEL.name, "vae_scale_factor": pipe.vae_scale_factor, "cases": [record],
           "decode_only_image": "tiled-fox-decode-only.png"}
    (OUT / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")
    print("wrote", os.path.relpath(OUT, ROOT))


if __name__ == "__main__":
    main()
