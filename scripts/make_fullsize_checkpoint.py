#!/usr/bin/env python3
"""Builds a full-size random PixArt-XL-2 transformer (28 blocks, hidden 1152) for benchmarks.

Writes, under OUT (default /tmp/pixconv-bench):
  transformer/config.json + diffusion_pytorch_model.safetensors   diffusers layout, f32 (~2.4 GB)
  PixArt-XL-2-512x512.pth                                          original layout {"state_dict": ...}, f32

Needs torch, diffusers, safetensors (scripts/requirements-fixtures.txt). Not used by tests.
"""
import argparse
import os

import torch
from diffusers import PixArtTransformer2DModel


def to_original(sd, depth):
    """diffusers → original PixArt names (inverse of formats/keymap-pixart-original.tsv)."""
    out = {}
    out["x_embedder.proj.weight"] = sd["pos_embed.proj.weight"]
    out["x_embedder.proj.bias"] = sd["pos_embed.proj.bias"]
    for i, (a, b) in enumerate([("t_embedder.mlp.0", "adaln_single.emb.timestep_embedder.linear_1"),
                                ("t_embedder.mlp.2", "adaln_single.emb.timestep_embedder.linear_2"),
                                ("t_block.1", "adaln_single.linear"),
                                ("y_embedder.y_proj.fc1", "caption_projection.linear_1"),
                                ("y_embedder.y_proj.fc2", "caption_projection.linear_2"),
                                ("final_layer.linear", "proj_out")]):
        for s in ("weight", "bias"):
            out[f"{a}.{s}"] = sd[f"{b}.{s}"]
    out["final_layer.scale_shift_table"] = sd["scale_shift_table"]
    for n in range(depth):
        p = f"transformer_blocks.{n}"
        o = f"blocks.{n}"
        out[f"{o}.scale_shift_table"] = sd[f"{p}.scale_shift_table"]
        for s in ("weight", "bias"):
            out[f"{o}.attn.qkv.{s}"] = torch.cat([sd[f"{p}.attn1.to_{x}.{s}"] for x in "qkv"])
            out[f"{o}.attn.proj.{s}"] = sd[f"{p}.attn1.to_out.0.{s}"]
            out[f"{o}.cross_attn.q_linear.{s}"] = sd[f"{p}.attn2.to_q.{s}"]
            out[f"{o}.cross_attn.kv_linear.{s}"] = torch.cat([sd[f"{p}.attn2.to_{x}.{s}"] for x in "kv"])
            out[f"{o}.cross_attn.proj.{s}"] = sd[f"{p}.attn2.to_out.0.{s}"]
            out[f"{o}.mlp.fc1.{s}"] = sd[f"{p}.ff.net.0.proj.{s}"]
            out[f"{o}.mlp.fc2.{s}"] = sd[f"{p}.ff.net.2.{s}"]
    out["pos_embed"] = torch.zeros(1, 1024, 1152)
    out["y_embedder.y_embedding"] = torch.randn(120, 4096)
    return {k: v.contiguous() for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/pixconv-bench")
    ap.add_argument("--sample-size", type=int, default=64)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    with torch.no_grad():
        model = PixArtTransformer2DModel(
            sample_size=args.sample_size, num_layers=28, attention_head_dim=72, num_attention_heads=16,
            in_channels=4, out_channels=8, patch_size=2, attention_bias=True, cross_attention_dim=1152,
            activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
            norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=4096)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    folder = os.path.join(args.out, "transformer")
    model.save_pretrained(folder, safe_serialization=True)
    sd = model.state_dict()
    torch.save({"state_dict": to_original(sd, 28)}, os.path.join(args.out, "PixArt-XL-2-512x512.pth"))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
