#!/usr/bin/env python3
"""Builds a random full-depth T5-v1.1-XXL text encoder inside a diffusers PixArt-α pipeline folder
(benchmarks only, not used by tests).

    nice -n 10 venv/bin/python scripts/make_fullsize_t5xxl.py [--out /tmp/pixconv-bench]
        [--base OUT/pipeline-512] [--name pipeline-512-t5xxl] [--shard-gb 2] [--seed 600] [--check]
    # small variants for testing the script itself (any of the shape flags, or --tiny):
    venv/bin/python scripts/make_fullsize_t5xxl.py --tiny --base fixtures/tiny-pixart-512 --out /tmp/x --check

Writes OUT/NAME/ (default /tmp/pixconv-bench/pipeline-512-t5xxl/):
  text_encoder/   T5EncoderModel with the real T5-v1.1-XXL shape: 24 layers, d_model 4096, d_kv 64,
                  64 heads, d_ff 10240, gated-gelu, vocabulary 32128, relative attention
                  32 buckets / 128 distance, untied embeddings: 4.76 B parameters, bf16
                  safetensors shards of about --shard-gb GB (5 shards, 9.5 GB) with
                  model.safetensors.index.json and config.json, like the real repository.
  transformer/, vae/, scheduler/, tokenizer/   relative symlinks to those of --base (default
                  OUT/pipeline-512 from scripts/make_fullsize_pipeline.py, built when missing);
  model_index.json                             copied from --base.
The tokenizer is the base folder's (the fixture tokenizer: 1000 pieces, so ids < 1000 of the
32128 rows are used); only time and memory matter, the weights are random.

Memory: the model is never held whole. Each tensor is drawn from its own seeded generator
(seed + index of the tensor in file order) in float32, cast to bf16 and kept until its shard
(~--shard-gb GB) is written with safetensors.torch.save_file; peak RSS is about one shard plus
one f32 tensor (~2.2 GB by default).

Init (the same scales as transformers' T5 initialisation, so the activations keep unit scale
over all 24 layers): embedding N(0, 1); q N(0, (d_model·d_kv)^-½); k, v N(0, d_model^-½);
o N(0, (heads·d_kv)^-½); wi_0, wi_1 N(0, d_model^-½); wo N(0, d_ff^-½); relative attention
bias N(0, d_model^-½); the RMS layer-norm weights are ones.

--check loads the encoder with transformers (bf16; the full-size one needs ~10 GB RAM) and
encodes one 120-token prompt, checking the output is finite; without it only the shard headers
and the index are checked.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent

XXL = dict(layers=24, d_model=4096, d_kv=64, heads=64, d_ff=10240, vocab=32128)
TINY = dict(layers=24, d_model=32, d_kv=8, heads=4, d_ff=64, vocab=1000)  # fits the tiny fixture's DiT


def plan(s: dict) -> list[tuple[str, tuple[int, ...], float]]:
    """(name, shape, init std; 0 = ones) of every tensor, in file order."""
    d, kv, h, ff = s["d_model"], s["d_kv"], s["heads"], s["d_ff"]
    inner = h * kv
    out = [("shared.weight", (s["vocab"], d), 1.0)]
    for i in range(s["layers"]):
        p = f"encoder.block.{i}.layer."
        out += [(p + "0.SelfAttention.q.weight", (inner, d), (d * kv) ** -0.5),
                (p + "0.SelfAttention.k.weight", (inner, d), d ** -0.5),
                (p + "0.SelfAttention.v.weight", (inner, d), d ** -0.5),
                (p + "0.SelfAttention.o.weight", (d, inner), inner ** -0.5)]
        if i == 0:
            out.append((p + "0.SelfAttention.relative_attention_bias.weight",
                        (s["buckets"], h), d ** -0.5))
        out += [(p + "0.layer_norm.weight", (d,), 0.0),
                (p + "1.DenseReluDense.wi_0.weight", (ff, d), d ** -0.5),
                (p + "1.DenseReluDense.wi_1.weight", (ff, d), d ** -0.5),
                (p + "1.DenseReluDense.wo.weight", (d, ff), ff ** -0.5),
                (p + "1.layer_norm.weight", (d,), 0.0)]
    out.append(("encoder.final_layer_norm.weight", (d,), 0.0))
    return out


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for x in shape:
        n *= x
    return n


def make_tensor(shape: tuple[int, ...], std: float, seed: int) -> torch.Tensor:
    if std == 0.0:
        return torch.ones(shape, dtype=torch.bfloat16)
    g = torch.Generator("cpu").manual_seed(seed)
    t = torch.randn(shape, generator=g, dtype=torch.float32)
    t.mul_(std)
    return t.to(torch.bfloat16)


def config(s: dict):
    from transformers import T5Config
    cfg = T5Config(
        vocab_size=s["vocab"], d_model=s["d_model"], d_kv=s["d_kv"], num_heads=s["heads"],
        num_layers=s["layers"], num_decoder_layers=s["layers"], d_ff=s["d_ff"],
        feed_forward_proj="gated-gelu", relative_attention_num_buckets=s["buckets"],
        relative_attention_max_distance=s["max_distance"], layer_norm_epsilon=1e-6,
        dropout_rate=0.1, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
        tie_word_embeddings=False, is_encoder_decoder=False, use_cache=False)
    cfg.architectures = ["T5EncoderModel"]
    cfg.tie_word_embeddings = False  # T5Config's constructor may not keep the keyword
    return cfg


def link_base(base: Path, dest: Path) -> None:
    for name in ("transformer", "vae", "scheduler", "tokenizer"):
        link = dest / name
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        if not (base / name).exists():
            sys.exit(f"{base / name} is missing")
        link.symlink_to(os.path.relpath((base / name).resolve(), dest))
    shutil.copyfile(base / "model_index.json", dest / "model_index.json")


def write_encoder(ted: Path, s: dict, seed: int, shard_bytes: int) -> tuple[int, int]:
    tensors = plan(s)
    shards: list[list[int]] = [[]]
    size = 0
    for i, (_, shape, _) in enumerate(tensors):
        b = numel(shape) * 2
        if shards[-1] and size + b > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(i)
        size += b
    total_bytes = sum(numel(sh) * 2 for _, sh, _ in tensors)
    total_params = sum(numel(sh) for _, sh, _ in tensors)
    free = shutil.disk_usage(ted.parent).free
    if free < total_bytes + 2**30:
        sys.exit(f"not enough disk under {ted.parent}: {free / 1e9:.1f} GB free, "
                 f"{total_bytes / 1e9:.1f} GB + 1 GB needed")
    if ted.exists():
        shutil.rmtree(ted)
    tmp = ted.with_name(ted.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    n = len(shards)
    weight_map = {}
    t0 = time.perf_counter()
    for k, idx in enumerate(shards, 1):
        fname = f"model-{k:05d}-of-{n:05d}.safetensors"
        part = {}
        for i in idx:
            name, shape, std = tensors[i]
            part[name] = make_tensor(shape, std, seed + i)
            weight_map[name] = fname
        save_file(part, str(tmp / fname), metadata={"format": "pt"})
        mb = sum(t.numel() * 2 for t in part.values()) / 1e6
        del part
        print(f"{fname}: {len(idx)} tensors, {mb:.0f} MB, {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)
    index = {"metadata": {"total_parameters": total_params, "total_size": total_bytes},
             "weight_map": dict(sorted(weight_map.items()))}
    (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    cfg = config(s)
    cfg.dtype = "bfloat16"
    cfg.to_json_file(str(tmp / "config.json"))
    tmp.rename(ted)
    return total_params, total_bytes


def check_headers(ted: Path, s: dict) -> int:
    index = json.loads((ted / "model.safetensors.index.json").read_text())
    want = {name: shape for name, shape, _ in plan(s)}
    seen = {}
    for fname in sorted(set(index["weight_map"].values())):
        with safe_open(str(ted / fname), "pt") as f:
            for key in f.keys():
                sl = f.get_slice(key)
                assert sl.get_dtype() == "BF16", (key, sl.get_dtype())
                seen[key] = tuple(sl.get_shape())
                assert index["weight_map"][key] == fname, key
    assert seen == want, set(seen) ^ set(want)
    return sum(numel(sh) for sh in seen.values())


def check_forward(dest: Path) -> dict:
    from transformers import AutoTokenizer, T5EncoderModel
    te = T5EncoderModel.from_pretrained(str(dest / "text_encoder"), torch_dtype=torch.bfloat16).eval()
    tok = AutoTokenizer.from_pretrained(str(dest / "tokenizer"))
    ids = tok(["a red fox"], padding="max_length", max_length=120, truncation=True,
              add_special_tokens=True, return_tensors="pt")
    with torch.inference_mode():
        out = te(ids.input_ids, attention_mask=ids.attention_mask)[0].float()
    assert torch.isfinite(out).all(), "non-finite encoder output"
    return {"shape": list(out.shape), "rms": round(out.pow(2).mean().sqrt().item(), 4),
            "max_abs": round(out.abs().max().item(), 3), "layers": te.config.num_layers}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/pixconv-bench")
    ap.add_argument("--base", help="pipeline folder to link transformer/vae/scheduler/tokenizer "
                    "from (default OUT/pipeline-512, built by make_fullsize_pipeline.py when missing)")
    ap.add_argument("--name", default="pipeline-512-t5xxl")
    ap.add_argument("--shard-gb", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=600)
    ap.add_argument("--force", action="store_true", help="rewrite text_encoder/ when present")
    ap.add_argument("--check", action="store_true", help="also load it and encode one prompt")
    ap.add_argument("--tiny", action="store_true", help="test shape: " + json.dumps(TINY))
    for k in XXL:
        ap.add_argument("--" + k.replace("_", "-"), type=int, help=f"override (real: {XXL[k]})")
    ap.add_argument("--buckets", type=int, default=32)
    ap.add_argument("--max-distance", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    s = dict(TINY if args.tiny else XXL)
    for k in XXL:
        if getattr(args, k) is not None:
            s[k] = getattr(args, k)
    s["buckets"], s["max_distance"] = args.buckets, args.max_distance

    out = Path(args.out)
    base = Path(args.base) if args.base else out / "pipeline-512"
    if not (base / "model_index.json").exists():
        if args.base:
            sys.exit(f"{base} is not a pipeline folder")
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_fullsize_pipeline.py"),
                        "--out", str(out)], check=True)
    dest = out / args.name
    dest.mkdir(parents=True, exist_ok=True)
    link_base(base, dest)

    ted = dest / "text_encoder"
    existing = ted / "config.json"
    same = False
    if existing.exists() and (ted / "model.safetensors.index.json").exists():
        c = json.loads(existing.read_text())
        same = all(c.get(a) == s[b] for a, b in (("num_layers", "layers"), ("d_model", "d_model"),
                   ("d_kv", "d_kv"), ("num_heads", "heads"), ("d_ff", "d_ff"), ("vocab_size", "vocab")))
    if args.force or not same:
        params, nbytes = write_encoder(ted, s, args.seed, int(args.shard_gb * 1e9))
        print(f"wrote {ted}: {params / 1e9:.3f} B parameters, {nbytes / 1e9:.2f} GB bf16",
              file=sys.stderr)
    else:
        print(f"{ted} exists with this shape (--force rewrites it)", file=sys.stderr)
    n = check_headers(ted, s)
    shards = len(list(ted.glob("model-*.safetensors")))
    res = {"folder": str(dest), "parameters": n, "shards": shards, "shape": s}
    if args.check:
        res["forward"] = check_forward(dest)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
