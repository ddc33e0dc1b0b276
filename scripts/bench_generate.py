#!/usr/bin/env python3
"""Generation benchmark, torch side: PixArtAlphaPipeline (diffusers) on torch CPU, one mode per process.

    nice -n 10 venv/bin/python scripts/bench_generate.py [--mode f32|bf16|int8|t5xxl-bf16|t5xxl-int8]
        [--model /tmp/pixconv-bench/pipeline-512] [--threads 2] [--steps 2] [--warmup 1]
        [--size 512] [--e2e] [--int8-load layerwise|full]

Modes (run each in a fresh process, so that ru_maxrss is that mode's peak):
  f32         the whole pipeline in float32 (the default).
  bf16        from_pretrained(..., dtype=torch.bfloat16) (diffusers' new name for torch_dtype):
              T5, transformer and VAE in bf16, latents and timesteps cast to bf16.
  int8        float32 pipeline, then torch.ao.quantization.quantize_dynamic(m, {nn.Linear},
              dtype=torch.qint8, inplace=True) on the transformer and on the text encoder
              (int8 weights per tensor, activations quantized per call); the VAE stays f32 and is
              not timed (it is the f32 mode's VAE).
  t5xxl-bf16  only the text encoder and tokenizer of --model (default
              /tmp/pixconv-bench/pipeline-512-t5xxl from scripts/make_fullsize_t5xxl.py: the
              full-depth T5-v1.1-XXL, 4.76 B parameters), in bf16: T5 encode only.
  t5xxl-int8  the same encoder dynamically quantized to int8. quantize_dynamic needs the float32
              model; loading all of it takes ~19 GB, so by default (--int8-load layerwise) the
              model is built on the meta device and filled one piece at a time (embedding, each
              block, final norm) from the bf16 shards as float32, each block quantized before
              the next is read: peak ~ int8 model + embedding + one f32 block (~6 GB,
              estimated). The int8 weights are the same as quantizing the whole f32 model
              (each Linear is quantized on its own). --int8-load full loads it whole with from_pretrained (f32) and
              quantizes then, after checking MemAvailable; when that is short it prints a JSON
              object with "error" and exits 3 instead of going out of memory.

Measures, each after --warmup untimed runs:
  t5_encode_seconds   pipe.encode_prompt with classifier-free guidance ("a red fox" and the empty
                      negative prompt, 120 tokens each, as the pipeline does it); median of
                      --t5-runs (also t5_encode_seconds_runs).
  step_seconds        one guided transformer step: a batch-2 forward of the DiT on (2, 4, 64, 64)
                      latents with (2, 120, 4096) caption states and mask (at 512×512), the call
                      the pipeline makes per step; mean of --steps runs (also _runs, _median, _min).
  vae_decode_seconds  vae.decode of one (1, 4, 64, 64) latent to a 512×512 image (f32, bf16 modes).
  *_cpu_seconds       process CPU time (all threads) of the same runs.
  peak_rss_mb         ru_maxrss of this process at the end; rss_after_load_mb (and for int8
                      rss_after_quantize_mb) the current RSS at those points.
  estimated_total_seconds  load (+ quantize) + T5 + --total-steps (3) steps + VAE decode (what
                      `pixconv generate --steps 3` does; int8: without the VAE, see
                      estimated_total_note); with --e2e also e2e_seconds: a real pipe(...) call
                      of --total-steps steps.
  load_average_start/end, cpu_flags (bf16 / VNNI / AMX support decides torch's bf16 and int8 speed).
Prints one JSON object on stdout (progress on stderr).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("f32", "bf16", "int8", "t5xxl-bf16", "t5xxl-int8")


def rss_mb() -> float:
    """Current resident set size of this process in MiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def mem_available_mb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_flags() -> list[str]:
    want = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "f16c")
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [w for w in want if w in have]
    except OSError:
        pass
    return []


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


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


def r3(xs):
    return [round(x, 3) for x in xs]


def from_pretrained(cls, path: str, dtype, **kw):
    """diffusers 0.42 renamed torch_dtype to dtype; older ones only know torch_dtype."""
    try:
        return cls.from_pretrained(path, dtype=dtype, **kw)
    except TypeError:
        return cls.from_pretrained(path, torch_dtype=dtype, **kw)


QUANTIZED_PARAMS: dict[str, int] = {}  # parameters of the Linears quantized, per model


def quantize(torch, module, model: str) -> int:
    """Dynamic int8 quantization of every nn.Linear in `module`, in place; returns their count."""
    lin = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    n = len(lin)
    QUANTIZED_PARAMS[model] = QUANTIZED_PARAMS.get(model, 0) + sum(
        p.numel() for m in lin for p in m.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8,
                                               inplace=True)
    left = sum(type(m) is torch.nn.Linear for m in module.modules())
    assert left == 0, f"{left} nn.Linear modules left unquantized"
    # The replaced float Linears sit in reference cycles: without a collection now their f32
    # weights stay allocated until the cyclic collector happens to run (for the layer-by-layer
    # T5-XXL that is every block's 0.77 GB, 19 GB in all).
    gc.collect()
    return n


def t5_int8_layerwise(torch, te_dir: Path):
    """T5EncoderModel with int8 dynamic-quantized Linears, filled piece by piece from the
    safetensors shards as float32 and quantized before the next piece is read."""
    from safetensors import safe_open
    from transformers import T5Config, T5EncoderModel
    cfg = T5Config.from_pretrained(str(te_dir))
    with torch.device("meta"):
        model = T5EncoderModel(cfg)
    index_path = te_dir / "model.safetensors.index.json"
    if index_path.exists():
        weight_map = json.loads(index_path.read_text())["weight_map"]
    else:
        single = te_dir / "model.safetensors"
        with safe_open(str(single), "pt") as f:
            weight_map = {k: single.name for k in f.keys()}
    handles = {}

    def tensor(key: str):
        fname = weight_map[key]
        if fname not in handles:
            handles[fname] = safe_open(str(te_dir / fname), "pt")
        return handles[fname].get_tensor(key).to(torch.float32)

    enc = model.encoder
    pieces = [("shared.", model.shared)]
    pieces += [(f"encoder.block.{i}.", b) for i, b in enumerate(enc.block)]
    pieces.append(("encoder.final_layer_norm.", enc.final_layer_norm))
    linears = 0
    for prefix, module in pieces:
        want = list(module.state_dict().keys())
        src = prefix
        if prefix == "shared." and "shared.weight" not in weight_map:
            src = "encoder.embed_tokens."
        sd = {k: tensor(src + k) for k in want}
        handles.clear()  # unmaps the shards: their pages leave this process's RSS
        module.load_state_dict(sd, strict=True, assign=True)
        del sd
        if prefix == "shared." and enc.embed_tokens is not model.shared:
            enc.embed_tokens.weight = model.shared.weight  # tied, as from_pretrained does
        if prefix.startswith("encoder.block."):
            linears += quantize(torch, module, "text_encoder")
    meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    assert not meta, f"left on the meta device: {meta[:5]}"
    return model.eval(), linears


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=MODES, default="f32")
    ap.add_argument("--model", help="pipeline folder (default /tmp/pixconv-bench/pipeline-512, "
                    "for t5xxl-* /tmp/pixconv-bench/pipeline-512-t5xxl)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2, help="timed transformer steps")
    ap.add_argument("--t5-runs", type=int, default=1, help="timed T5 encodes")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prompt", default="a red fox")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--total-steps", type=int, default=3,
                    help="steps counted in estimated_total_seconds (and in the --e2e call)")
    ap.add_argument("--e2e", action="store_true", help="also time a full pipe() call")
    ap.add_argument("--int8-load", choices=("layerwise", "full"), default="layerwise",
                    help="t5xxl-int8: how the f32 model is made before quantizing")
    args = ap.parse_args()
    mode = args.mode
    t5_only = mode.startswith("t5xxl")

    default = "/tmp/pixconv-bench/pipeline-512-t5xxl" if t5_only else "/tmp/pixconv-bench/pipeline-512"
    model = Path(args.model or default)
    if not (model / "model_index.json").exists():
        if t5_only:
            cmd = ["make_fullsize_t5xxl.py", "--out", str(model.parent), "--name", model.name]
        else:
            cmd = ["make_fullsize_pipeline.py", "--out", str(model.parent)]
        subprocess.run([sys.executable, str(ROOT / "scripts" / cmd[0])] + cmd[1:], check=True,
                       stdout=sys.stderr)

    import torch
    import diffusers
    from diffusers import PixArtAlphaPipeline
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    dtype = torch.bfloat16 if mode.endswith("bf16") else torch.float32

    res = {"mode": mode,
           "generator": f"diffusers {diffusers.__version__} PixArtAlphaPipeline, torch "
                        f"{torch.__version__} CPU "
                        + {"f32": "float32", "bf16": "bfloat16", "int8": "dynamic int8 (qint8 "
                           "Linear in T5 and DiT, rest float32)", "t5xxl-bf16": "bfloat16 T5 only",
                           "t5xxl-int8": "dynamic int8 T5 only"}[mode],
           "model": str(model), "threads": args.threads, "height": args.size, "width": args.size,
           "cpu_flags": cpu_flags(), "quantized_engine": torch.backends.quantized.engine,
           "load_average_start": [round(x, 2) for x in os.getloadavg()]}

    t0 = time.perf_counter()
    if mode == "t5xxl-int8":
        te_dir = model / "text_encoder"
        res["int8_load"] = args.int8_load
        if args.int8_load == "layerwise":
            te, n = t5_int8_layerwise(torch, te_dir)
        else:
            idx = json.loads((te_dir / "model.safetensors.index.json").read_text())
            need = idx["metadata"]["total_size"] / 2 * 4 / 2**20  # bf16 bytes → f32 MiB
            avail = mem_available_mb()
            res.update(f32_model_mb=round(need), mem_available_mb=round(avail))
            if not avail >= need * 1.1 + 1024:
                res["error"] = (f"did not fit: the f32 text encoder needs {need:.0f} MiB, "
                                f"{avail:.0f} MiB available; use --int8-load layerwise")
                print(json.dumps(res, indent=1))
                sys.exit(3)
            from transformers import T5EncoderModel
            te = T5EncoderModel.from_pretrained(str(te_dir), dtype=torch.float32).eval()
            res["rss_before_quantize_mb"] = round(rss_mb(), 1)
            n = quantize(torch, te, "text_encoder")
        res["quantized_linears"] = {"text_encoder": n}
        pipe = from_pretrained(PixArtAlphaPipeline, str(model), torch.float32, text_encoder=te,
                               transformer=None, vae=None)
    elif t5_only:
        pipe = from_pretrained(PixArtAlphaPipeline, str(model), dtype, transformer=None, vae=None)
    else:
        pipe = from_pretrained(PixArtAlphaPipeline, str(model), dtype)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0
    res["load_seconds"] = round(load_s, 3)
    res["rss_after_load_mb"] = round(rss_mb(), 1)
    print(f"load: {load_s:.2f} s, RSS {res['rss_after_load_mb']:.0f} MiB", file=sys.stderr, flush=True)

    quant_s = 0.0
    if mode == "int8":
        t0 = time.perf_counter()
        res["quantized_linears"] = {
            "transformer": quantize(torch, pipe.transformer, "transformer"),
            "text_encoder": quantize(torch, pipe.text_encoder, "text_encoder")}
        quant_s = time.perf_counter() - t0
        res["quantize_seconds"] = round(quant_s, 3)
        res["rss_after_quantize_mb"] = round(rss_mb(), 1)
        print(f"quantize: {quant_s:.2f} s, RSS {res['rss_after_quantize_mb']:.0f} MiB",
              file=sys.stderr, flush=True)

    with torch.inference_mode():
        enc = {}

        def encode():
            enc["out"] = pipe.encode_prompt(args.prompt, do_classifier_free_guidance=True,
                                            negative_prompt="", clean_caption=False,
                                            max_sequence_length=120)
        t5_cpu: list[float] = []
        t5 = timed(encode, args.t5_runs, args.warmup, "t5 encode", t5_cpu)
        pe, pm, npe, npm = enc["out"]
        d_model = pipe.text_encoder.config.d_model
        assert pe.shape == (1, 120, d_model), pe.shape
        assert torch.isfinite(pe).all() and torch.isfinite(npe).all(), "non-finite T5 output"
        res["t5_encode_seconds"] = round(median(t5), 3)
        res["t5_encode_seconds_runs"] = r3(t5)
        res["t5_encode_cpu_seconds"] = round(median(t5_cpu), 3)
        res["t5_layers"] = pipe.text_encoder.config.num_layers
        res["t5_parameters"] = (sum(p.numel() for p in pipe.text_encoder.parameters())
                                + QUANTIZED_PARAMS.get("text_encoder", 0))
        res["t5_dtype"] = str(pe.dtype).replace("torch.", "")

        if not t5_only:
            tdtype = pipe.transformer.dtype  # f32 for int8 (norms, convs, embeddings stay f32)
            states = torch.cat([npe, pe]).to(tdtype)
            mask = torch.cat([npm, pm])
            lat = args.size // pipe.vae_scale_factor
            g = torch.Generator("cpu").manual_seed(0)
            latents = torch.randn(1, 4, lat, lat, generator=g)
            x = torch.cat([latents] * 2).to(tdtype)
            t = torch.tensor([999.0, 999.0])  # the pipeline passes float32 timesteps
            cond = {"resolution": None, "aspect_ratio": None}

            def step():
                out = pipe.transformer(x, encoder_hidden_states=states, encoder_attention_mask=mask,
                                       timestep=t, added_cond_kwargs=cond, return_dict=False)[0]
                assert out.shape == (2, 8, lat, lat)
                enc["step"] = out
            step_cpu: list[float] = []
            steps = timed(step, args.steps, args.warmup, "transformer step (batch 2)", step_cpu)
            assert torch.isfinite(enc.pop("step")).all(), "non-finite transformer output"
            res["step_seconds_runs"] = r3(steps)
            res["step_seconds"] = round(sum(steps) / len(steps), 3)
            res["step_seconds_median"] = round(median(steps), 3)
            res["step_seconds_min"] = round(min(steps), 3)
            res["step_cpu_seconds_runs"] = r3(step_cpu)
            res["transformer_dtype"] = str(tdtype).replace("torch.", "")

            total = (load_s + quant_s + res["t5_encode_seconds"]
                     + args.total_steps * res["step_seconds"])
            res["total_steps"] = args.total_steps
            if mode != "int8":
                z = (latents / pipe.vae.config.scaling_factor).to(pipe.vae.dtype)

                def decode():
                    img = pipe.vae.decode(z, return_dict=False)[0]
                    assert img.shape == (1, 3, args.size, args.size)
                vae_cpu: list[float] = []
                vae = timed(decode, 1, args.warmup, "vae decode", vae_cpu)
                res["vae_decode_seconds"] = round(min(vae), 3)
                res["vae_decode_cpu_seconds"] = round(min(vae_cpu), 3)
                total += res["vae_decode_seconds"]
            else:
                res["estimated_total_note"] = "without the VAE decode (f32, as in the f32 mode)"
            res["estimated_total_seconds"] = round(total, 1)

    if args.e2e and not t5_only:
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = pipe(args.prompt, num_inference_steps=args.total_steps, height=args.size, width=args.size,
                       generator=torch.Generator("cpu").manual_seed(0), clean_caption=False,
                       use_resolution_binning=False, output_type="np")
        res["e2e_seconds"] = round(time.perf_counter() - t0, 3)
        assert out.images[0].shape == (args.size, args.size, 3)
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    res["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
