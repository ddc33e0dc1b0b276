#!/usr/bin/env python3
"""Builds a random PixArt-α 512 diffusers pipeline folder for benchmarks (not used by tests).

    nice -n 10 venv/bin/python scripts/make_fullsize_pipeline.py [--out /tmp/pixconv-bench]

Writes OUT/pipeline-512/ (default OUT /tmp/pixconv-bench), float32 safetensors throughout:
  transformer/   symlink to OUT/transformer (full-size PixArt-XL-2 512, 28 blocks, hidden 1152,
                 made by scripts/make_fullsize_checkpoint.py, which this script runs when missing)
  text_encoder/  T5EncoderModel with the real T5-v1.1-XXL width (d_model 4096, d_kv 64,
                 64 heads, gated-gelu, d_ff 10240, relative attention 32 buckets / 128 distance)
                 but only 2 layers (the real encoder has 24) and the tiny fixture tokenizer's
                 1000-piece vocabulary (the real one has 32128): ~1.6 GB instead of ~19 GB,
                 sharded (index + 2 shards) like the real repository. The T5 stage is therefore
                 NOT full-size: per-layer cost is real, total T5 time/memory is about 2/24 of it.
  vae/           AutoencoderKL with the real SD VAE architecture (block_out_channels
                 [128, 256, 512, 512], layers_per_block 2, 32 groups, 4 latent channels,
                 scaling_factor 0.18215), randomly initialised: full-size.
  scheduler/, tokenizer/   copied from fixtures/tiny-pixart-512.
  model_index.json         copied from fixtures/tiny-pixart-512.

Weights are random (fixed seeds), so images are noise; the folder is only for timing and memory.
Then checks that PixArtAlphaPipeline.from_pretrained loads it (no generation).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "fixtures" / "tiny-pixart-512"

T5_LAYERS = 2


def full_text_encoder(vocab_size: int, seed: int):
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=vocab_size, d_model=4096, d_kv=64, num_heads=64, num_layers=T5_LAYERS,
        d_ff=10240, feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
        relative_attention_max_distance=128, layer_norm_epsilon=1e-6, dropout_rate=0.1,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False)
    return T5EncoderModel(cfg).eval()


def full_vae(seed: int):
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=512,
        scaling_factor=0.18215, act_fn="silu").eval()


def dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/pixconv-bench")
    ap.add_argument("--force", action="store_true", help="rebuild text_encoder/ and vae/")
    ap.add_argument("--no-check", action="store_true", help="skip the from_pretrained check")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    tr = out / "transformer"
    if not (tr / "diffusion_pytorch_model.safetensors").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_fullsize_checkpoint.py"),
                        "--out", str(out)], check=True)
    pipe_dir = out / "pipeline-512"
    pipe_dir.mkdir(parents=True, exist_ok=True)

    link = pipe_dir / "transformer"
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(os.path.relpath(tr, pipe_dir))

    for name in ("scheduler", "tokenizer"):
        if (pipe_dir / name).exists():
            shutil.rmtree(pipe_dir / name)
        shutil.copytree(TINY / name, pipe_dir / name)
    shutil.copyfile(TINY / "model_index.json", pipe_dir / "model_index.json")

    vocab = json.loads((TINY / "text_encoder" / "config.json").read_text())["vocab_size"]
    ted = pipe_dir / "text_encoder"
    if args.force or not (ted / "model.safetensors.index.json").exists():
        if ted.exists():
            shutil.rmtree(ted)
        with torch.no_grad():
            te = full_text_encoder(vocab, 400)
        # Sharded (index + 2 shards) like the real repository.
        te.save_pretrained(str(ted), safe_serialization=True, max_shard_size="1GB")
        del te
        shards = sorted(ted.glob("model-*.safetensors"))
        assert (ted / "model.safetensors.index.json").exists() and len(shards) >= 2, shards

    vd = pipe_dir / "vae"
    if args.force or not (vd / "diffusion_pytorch_model.safetensors").exists():
        if vd.exists():
            shutil.rmtree(vd)
        with torch.no_grad():
            vae = full_vae(500)
        vae.save_pretrained(str(vd), safe_serialization=True)
        del vae

    for name in ("transformer", "text_encoder", "vae"):
        print(f"{name}: {dir_bytes((pipe_dir / name).resolve()) / 1e9:.2f} GB")

    if not args.no_check:
        from diffusers import PixArtAlphaPipeline
        pipe = PixArtAlphaPipeline.from_pretrained(str(pipe_dir), torch_dtype=torch.float32)
        te, vae, trm = pipe.text_encoder, pipe.vae, pipe.transformer
        assert te.config.d_model == 4096 and te.config.num_layers == T5_LAYERS
        assert te.config.vocab_size == vocab == len(pipe.tokenizer), (vocab, len(pipe.tokenizer))
        assert list(vae.config.block_out_channels) == [128, 256, 512, 512]
        assert trm.config.num_layers == 28 and trm.config.sample_size == 64
        n = {k: sum(p.numel() for p in m.parameters()) for k, m in
             (("text_encoder", te), ("vae", vae), ("transformer", trm))}
        print("from_pretrained ok: vae_scale_factor", pipe.vae_scale_factor,
              "params", json.dumps(n))
    print("wrote", pipe_dir)


if __name__ == "__main__":
    main()
