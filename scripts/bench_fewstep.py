#!/usr/bin/env python3
"""The torch side of scripts/bench_fewstep.sh: one whole diffusers pipeline call, float32 on the CPU.

    venv/bin/python scripts/bench_fewstep.py --mode lcm --model /tmp/pixconv-bench/pipeline-1024-lcm
    venv/bin/python scripts/bench_fewstep.py --mode dmd --model /tmp/pixconv-bench/pipeline-512 \
        --scheduler fixtures/tiny-pixart-dmd/scheduler

lcm: PixArtAlphaPipeline with the folder's LCMScheduler, 4 steps, guidance_scale 0, 1024x1024
(diffusers' PixArt-LCM usage). dmd: PixArtAlphaPipeline with DDPMScheduler from --scheduler,
num_inference_steps 1, guidance_scale 1, timesteps [400], 512x512 (PixArt-α-DMD's app).
clean_caption False and use_resolution_binning False, as pixconv runs them. Prints one JSON line:
seconds (the pipe() call), text_encoder_seconds, peak_rss_mb. Not used by tests.
"""
from __future__ import annotations

import argparse
import json
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("lcm", "dmd"), required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--scheduler", help="scheduler folder (dmd: the DDPMScheduler config)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", default="a red fox")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from diffusers import DDPMScheduler, PixArtAlphaPipeline
    t0 = time.perf_counter()
    pipe = PixArtAlphaPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    load = time.perf_counter() - t0
    if args.mode == "dmd":
        pipe.scheduler = DDPMScheduler.from_pretrained(args.scheduler)
        kw = dict(num_inference_steps=1, guidance_scale=1.0, timesteps=[400], height=512, width=512)
    else:
        assert type(pipe.scheduler).__name__ == "LCMScheduler", type(pipe.scheduler)
        kw = dict(num_inference_steps=4, guidance_scale=0.0, height=1024, width=1024)
    enc = {}
    orig = pipe.encode_prompt

    def timed_encode(*a, **k):
        t = time.perf_counter()
        r = orig(*a, **k)
        enc["s"] = time.perf_counter() - t
        return r
    pipe.encode_prompt = timed_encode
    t1 = time.perf_counter()
    with torch.no_grad():
        image = pipe(args.prompt, generator=torch.Generator("cpu").manual_seed(0), clean_caption=False,
                     use_resolution_binning=False, output_type="np", **kw).images[0]
    seconds = time.perf_counter() - t1
    print(json.dumps({"mode": args.mode, "seconds": round(seconds, 3), "load_seconds": round(load, 3),
                      "text_encoder_seconds": round(enc.get("s", 0.0), 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "shape": list(image.shape)}))


if __name__ == "__main__":
    main()
