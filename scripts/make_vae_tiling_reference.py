#!/usr/bin/env python3
"""Reference outputs of diffusers' tiled VAE decoding (AutoencoderKL.enable_tiling()) for the
Swift tests.

Writes fixtures/vae/tiled.safetensors (deterministic, float32, CPU), from the VAE of
fixtures/tiny-pixart-512 (sample_size 16, scale factor 2: tiles of 8 latent cells every 6,
blended over 4 pixels, cropped to 12):
  latents_a (1,4,16,20), tiled_a = vae.decode(latents_a / scaling_factor) with tiling on,
  plain_a the same without tiling (so a test can see that tiling is really in effect);
  latents_b (2,4,9,13), tiled_b, plain_b (a batch, edge tiles of 3 and 1 cells).

Run: venv/bin/python scripts/make_vae_tiling_reference.py [--vae fixtures/tiny-pixart-512/vae]
"""
import argparse
import os

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vae", default=os.path.join(ROOT, "fixtures", "tiny-pixart-512", "vae"))
    args = parser.parse_args()
    torch.manual_seed(0)
    vae = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32).eval()
    out = {}
    for name, shape, seed in [("a", (1, 4, 16, 20), 31), ("b", (2, 4, 9, 13), 32)]:
        g = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn(shape, generator=g, dtype=torch.float32)
        with torch.no_grad():
            vae.disable_tiling()
            plain = vae.decode(latents / vae.config.scaling_factor).sample
            vae.enable_tiling()
            tiled = vae.decode(latents / vae.config.scaling_factor).sample
        out["latents_" + name] = latents.contiguous()
        out["tiled_" + name] = tiled.contiguous()
        out["plain_" + name] = plain.contiguous()
        print(name, tuple(shape), "max |tiled - plain|", float((tiled - plain).abs().max()))
    path = os.path.join(ROOT, "fixtures", "vae", "tiled.safetensors")
    save_file(out, path)
    print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
