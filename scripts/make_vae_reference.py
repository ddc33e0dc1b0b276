#!/usr/bin/env python3
"""Reference outputs of the diffusers AutoencoderKL decoder for the Swift VAE tests.

Writes (deterministic, float32, CPU):
  fixtures/vae/decode.safetensors
      latents_a (2,4,8,8), sample_a (2,3,16,16), image_a (2,16,16,3) f32, pixels_a (2,16,16,3) u8
      latents_b (2,4,6,10), sample_b (2,3,12,20), image_b, pixels_b
    from fixtures/tiny-pixart-512/vae: sample = vae.decode(latents / scaling_factor).sample,
    image = VaeImageProcessor.postprocess(sample, "np"), pixels = numpy_to_pil(image) as uint8.
  fixtures/vae/ops.safetensors  F.conv2d (3×3 pad 1, 1×1, 5×5 pad 2, 3×3 pad 0), F.group_norm (+ SiLU)
    and nearest ×2 F.interpolate on small random inputs.
  fixtures/vae/legacy/  a second, deeper VAE decoder (block_out_channels (32, 32, 32),
    layers_per_block 2, scale factor 4) saved with the old attention key names
    query/key/value/proj_attn, decoder tensors only; plus decode.safetensors (latents (1,4,5,7), sample).
  fixtures/vae/noattn/  a one-level VAE decoder with mid_block_add_attention=False (scale factor 1),
    decoder tensors only; plus decode.safetensors (latents (2,4,6,5), sample).

Run: venv/bin/python scripts/make_vae_reference.py [--vae fixtures/tiny-pixart-512/vae]
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.image_processor import VaeImageProcessor
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def decode(vae, latents):
    with torch.no_grad():
        return vae.decode(latents / vae.config.scaling_factor).sample.contiguous()


def decoder_state(vae, legacy_names=False):
    """post_quant_conv.* and decoder.* tensors, optionally with pre-0.14 attention names."""
    rename = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    out = {}
    for k, v in vae.state_dict().items():
        if not (k.startswith("decoder.") or k.startswith("post_quant_conv.")):
            continue
        if legacy_names and ".attentions." in k:
            for new, old in rename.items():
                k = k.replace("." + new + ".", "." + old + ".")
        out[k] = v.contiguous().clone()
    return out


def make_extra(name, seed, latent_shape, legacy_names, **kwargs):
    torch.manual_seed(seed)
    vae = AutoencoderKL(latent_channels=4, norm_num_groups=32, **kwargs).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # every weight matters
    folder = os.path.join(ROOT, "fixtures", "vae", name)
    os.makedirs(folder, exist_ok=True)
    save_file(decoder_state(vae, legacy_names), os.path.join(folder, "diffusion_pytorch_model.safetensors"))
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vae.config.items() if not k.startswith("_")}
    config["_class_name"] = "AutoencoderKL"
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    g = torch.Generator().manual_seed(seed + 1)
    latents = torch.randn(*latent_shape, generator=g) * 0.7
    sample = decode(vae, latents)
    save_file({"latents": latents.contiguous(), "sample": sample}, os.path.join(folder, "decode.safetensors"))
    print(name, tuple(sample.shape), float(sample.abs().max()))


def make_ops():
    """Single-layer references from torch.nn.functional for the Conv2d / GroupNorm / upsample tests."""
    g = torch.Generator().manual_seed(99)
    x = torch.randn(5, 7, 9, generator=g)
    t = {"conv_x": x}
    for name, k, p in (("conv3", 3, 1), ("conv1", 1, 0), ("conv5", 5, 2), ("conv3v", 3, 0)):
        w = torch.randn(6, 5, k, k, generator=g) * 0.3
        b = torch.randn(6, generator=g)
        t[name + "_w"], t[name + "_b"] = w, b
        t[name + "_y"] = F.conv2d(x[None], w, b, padding=p)[0].contiguous()
    gx = torch.randn(16, 5, 6, generator=g) * 3 + 1.5
    gw = torch.randn(16, generator=g)
    gb = torch.randn(16, generator=g)
    gy = F.group_norm(gx[None], 4, gw, gb, eps=1e-6)[0]
    t.update(gn_x=gx, gn_w=gw, gn_b=gb, gn_y=gy.contiguous(), gn_silu_y=F.silu(gy).contiguous())
    t["up_y"] = F.interpolate(x[None], scale_factor=2.0, mode="nearest")[0].contiguous()
    save_file(t, os.path.join(ROOT, "fixtures", "vae", "ops.safetensors"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae", default=os.path.join(ROOT, "fixtures", "tiny-pixart-512", "vae"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    vae = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32).eval()
    processor = VaeImageProcessor(vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))
    g = torch.Generator().manual_seed(1234)
    tensors = {}
    for tag, (h, w) in (("a", (8, 8)), ("b", (6, 10))):
        # Typical denoiser latents are ~N(0, 1) times the scaling factor's inverse range; keep them moderate.
        latents = torch.randn(2, vae.config.latent_channels, h, w, generator=g) * 0.8
        sample = decode(vae, latents)
        image = processor.postprocess(sample, output_type="np")  # (B,H,W,3) float32 in [0,1]
        pixels = np.stack([np.asarray(p) for p in processor.numpy_to_pil(image)])
        tensors["latents_" + tag] = latents.contiguous()
        tensors["sample_" + tag] = sample
        tensors["image_" + tag] = torch.from_numpy(np.ascontiguousarray(image))
        tensors["pixels_" + tag] = torch.from_numpy(np.ascontiguousarray(pixels))
        print(tag, tuple(sample.shape), float(sample.abs().max()))
    out = os.path.join(ROOT, "fixtures", "vae")
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "decode.safetensors"))

    make_ops()
    make_extra("legacy", 7, (1, 4, 5, 7), True, block_out_channels=(32, 32, 32),
               down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
               layers_per_block=2)
    make_extra("noattn", 11, (2, 4, 6, 5), False, block_out_channels=(32,),
               down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
               layers_per_block=1, mid_block_add_attention=False)


if __name__ == "__main__":
    main()
