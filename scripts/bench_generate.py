#!/usr/bin/env python3
"""Generation benchmark, diffusers side: PixArtAlphaPipeline on torch CPU, float32, 512×512.

    nice -n 10 /work/venv/bin/python scripts/bench_generate.py [--model /tmp/pixconv-bench/pipeline-512]
        [--threads 2] [--steps 2] [--warmup 1] [--e2e]

Uses the random full-size folder from scripts/make_fullsize_pipeline.py (built when missing).
Measures, each after --warmup untimed runs:
  t5_encode_seconds         pipe.encode_prompt with classifier-free guidance ("a red fox" and the
                            empty negative prompt, 120 tokens each, as the pipeline does it). The
                            benchmark T5 has 2 of the real 24 layers (see make_fullsize_pipeline.py).
  step_seconds              one guided transformer step: a batch-2 forward of the 28-block DiT on
                            (2, 4, 64, 64) latents with (2, 120, 4096) caption states and mask,
                            the same call the pipeline makes per step; mean of --steps runs
                            (also step_seconds_min).
  *_cpu_seconds             process CPU time (all threads) of the same runs: on a shared machine
                            wall time depends on the load average (recorded at start and end);
                            CPU seconds / threads estimates the unloaded wall time.
  vae_decode_seconds        vae.decode of one (1, 4, 64, 64) latent to a 512×512 image.
  peak_rss_mb               ru_maxrss of this process at the end (all three components loaded,
                            plus the largest stage's activations).
  estimated_total_seconds   load + T5 + 3 steps + VAE decode (what `pixconv generate --steps 3`
                            does); with --e2e also e2e_seconds: a real pipe(...) call, 3 steps.
Prints one JSON object on stdout (progress on stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    """Current resident set size of this process in MB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(fn, runs: int, warmup: int, label: str, cpu: list[float]) -> list[float]:
    """Wall seconds of each of `runs` calls after `warmup` calls; appends their process CPU
    seconds (all threads) to `cpu`."""
    for _ in range(warmup):
        t = time.perf_counter()
        fn()
        print(f"{label}: warm-up {time.perf_counter() - t:.2f} s", file=sys.stderr, flush=True)
    out = []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        out.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        print(f"{label}: {out[-1]:.2f} s wall, {cpu[-1]:.2f} s CPU, load {os.getloadavg()[0]:.1f}",
              file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/tmp/pixconv-bench/pipeline-512")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2, help="timed transformer steps")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prompt", default="a red fox")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--e2e", action="store_true", help="also time a full 3-step pipe() call")
    args = ap.parse_args()

    model = Path(args.model)
    if not (model / "model_index.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_fullsize_pipeline.py"),
                        "--out", str(model.parent)], check=True, stdout=sys.stderr)

    import torch
    import diffusers
    from diffusers import PixArtAlphaPipeline
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    t0 = time.perf_counter()
    pipe = PixArtAlphaPipeline.from_pretrained(str(model), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    print(f"load: {load_s:.2f} s, RSS {rss_loaded:.0f} MB", file=sys.stderr, flush=True)

    res = {"generator": f"diffusers {diffusers.__version__} PixArtAlphaPipeline, "
                        f"torch {torch.__version__} CPU float32",
           "model": str(model), "threads": args.threads, "height": args.size,
           "width": args.size, "load_seconds": round(load_s, 3),
           "rss_after_load_mb": round(rss_loaded, 1),
           "load_average_start": [round(x, 2) for x in os.getloadavg()]}

    with torch.inference_mode():
        enc = {}

        def encode():
            enc["out"] = pipe.encode_prompt(args.prompt, do_classifier_free_guidance=True,
                                            negative_prompt="", clean_caption=False,
                                            max_sequence_length=120)
        t5_cpu: list[float] = []
        t5 = timed(encode, 1, args.warmup, "t5 encode", t5_cpu)
        pe, pm, npe, npm = enc["out"]
        assert torch.isfinite(pe).all() and pe.shape == (1, 120, 4096), pe.shape
        res["t5_encode_seconds"] = round(min(t5), 3)
        res["t5_encode_cpu_seconds"] = round(min(t5_cpu), 3)
        res["t5_layers"] = pipe.text_encoder.config.num_layers

        states = torch.cat([npe, pe])
        mask = torch.cat([npm, pm])
        lat = args.size // pipe.vae_scale_factor
        g = torch.Generator("cpu").manual_seed(0)
        latents = torch.randn(1, 4, lat, lat, generator=g)
        x = torch.cat([latents] * 2)
        t = torch.tensor([999.0, 999.0])
        cond = {"resolution": None, "aspect_ratio": None}

        def step():
            out = pipe.transformer(x, encoder_hidden_states=states, encoder_attention_mask=mask,
                                   timestep=t, added_cond_kwargs=cond, return_dict=False)[0]
            assert out.shape == (2, 8, lat, lat)
        step_cpu: list[float] = []
        steps = timed(step, args.steps, args.warmup, "transformer step (batch 2)", step_cpu)
        res["step_seconds_runs"] = [round(s, 3) for s in steps]
        res["step_seconds"] = round(sum(steps) / len(steps), 3)
        res["step_seconds_min"] = round(min(steps), 3)
        res["step_cpu_seconds_runs"] = [round(s, 3) for s in step_cpu]

        z = latents / pipe.vae.config.scaling_factor

        def decode():
            img = pipe.vae.decode(z, return_dict=False)[0]
            assert img.shape == (1, 3, args.size, args.size)
        vae_cpu: list[float] = []
        vae = timed(decode, 1, args.warmup, "vae decode", vae_cpu)
        res["vae_decode_seconds"] = round(min(vae), 3)
        res["vae_decode_cpu_seconds"] = round(min(vae_cpu), 3)

    res["estimated_total_seconds"] = round(
        load_s + res["t5_encode_seconds"] + 3 * res["step_seconds"] + res["vae_decode_seconds"], 1)

    if args.e2e:
        t0 = time.perf_counter()
        out = pipe(args.prompt, num_inference_steps=3, height=args.size, width=args.size,
                   generator=torch.Generator("cpu").manual_seed(0), clean_caption=False,
                   use_resolution_binning=False, output_type="np")
        res["e2e_seconds"] = round(time.perf_counter() - t0, 3)
        assert out.images[0].shape == (args.size, args.size, 3)
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    res["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
