#!/usr/bin/env python3
"""Conversion benchmark, gguf-py side (issue 3): quantize the full-size PixArt-XL-2 transformer.

    nice -n 10 venv/bin/python scripts/bench_convert.py [--input FILE.safetensors]
        [--types q8_0,f16] [--modes write,quantize] [--out-dir /tmp/pixconv-bench/out]

For each type and mode a fresh worker process (so ru_maxrss is that run's alone):
  1. warms the page cache (reads the file once, untimed),
  2. reads every tensor with safetensors' numpy API (`safe_open(..., "np").get_tensor`),
  3. decides its stored type with pixconv's precision policy (Sources/PixconvStore/
     PrecisionPolicy.swift: 1-D, <= 1024 elements, scale_shift_table, embedding/position
     tables and norms stay F32; a row not a multiple of 32 falls back to F16 for Q8_0),
  4. converts it with `gguf.quants.quantize(arr, GGMLQuantizationType.Q8_0 / F16)`,
  5. mode `write`: streams it into a GGUF file with gguf.GGUFWriter (tensor infos first, then
     write_tensor_data per tensor: memory bounded by one tensor, like pixconv convert);
     mode `quantize`: discards it (the quantizer's own speed, no output);
     mode `write-pread`: like `write`, but reads each tensor with os.pread instead of
     safetensors (which memory-maps the file, so every page it reads stays in the process's
     RSS until the file is closed: its peak RSS is about the file size).
Reports input GB/s (safetensors bytes / wall seconds; also per CPU second, which is steadier on a
shared machine, and the load average), output bytes, peak RSS (ru_maxrss), and the
largest tensor's size from the safetensors header (the issue's RSS target is
largest tensor + 64 MB). Prints one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_INPUT = "/tmp/pixconv-bench/transformer/diffusion_pytorch_model.safetensors"
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1}
EMBEDDING_PARTS = ("relative_attention_bias", "pos_embed", "y_embedding", "embed_tokens")


def read_header(path: str) -> dict:
    """The safetensors JSON header: {name: {"dtype", "shape", "data_offsets"}}."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header


def tensor_bytes(info: dict) -> int:
    n = DTYPE_BYTES[info["dtype"]]
    for d in info["shape"]:
        n *= d
    return n


def largest_tensor(header: dict) -> tuple[str, int]:
    name = max(header, key=lambda k: tensor_bytes(header[k]))
    return name, tensor_bytes(header[name])


def stored_type(name: str, shape: list[int], target: str) -> str:
    """pixconv's PrecisionPolicy.decide for a floating-point tensor: 'f32', 'f16' or target."""
    count = 1
    for d in shape:
        count *= d
    parts = name.split(".")
    if len(shape) <= 1 or count <= 1024:
        return "f32"
    if any("scale_shift_table" in p for p in parts):
        return "f32"
    if name == "shared.weight" or name.endswith(".shared.weight") or \
            any(e in p for p in parts for e in EMBEDDING_PARTS):
        return "f32"
    if any("norm" in p for p in parts):
        return "f32"
    if target == "q8_0" and shape[-1] % 32 != 0:
        return "f16"
    return target


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def warm(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def worker(path: str, target: str, mode: str, out_dir: str, keep: bool) -> dict:
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quant_shape_to_byte_shape, quantize
    from safetensors import safe_open

    qt = {"f32": GGMLQuantizationType.F32, "f16": GGMLQuantizationType.F16,
          "q8_0": GGMLQuantizationType.Q8_0}
    header = read_header(path)
    names = sorted(header)
    plan = {n: stored_type(n, header[n]["shape"], target) for n in names}
    in_bytes = sum(tensor_bytes(header[n]) for n in names)
    warm(path)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    c0 = cpu_seconds()
    out_path = None
    writer = None
    if mode.startswith("write"):
        out_path = os.path.join(out_dir, f"gguf-py.{target}.gguf")
        writer = GGUFWriter(out_path, arch="pixart")
        for n in names:
            shape = header[n]["shape"]
            t = qt[plan[n]]
            if plan[n] == "q8_0":
                bshape = quant_shape_to_byte_shape(shape, t)
                writer.add_tensor_info(n, bshape, np.dtype(np.uint8), int(np.prod(bshape)), raw_dtype=t)
            else:
                dt = np.dtype(np.float32 if plan[n] == "f32" else np.float16)
                writer.add_tensor_info(n, shape, dt, int(np.prod(shape)) * dt.itemsize)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
    out_bytes = 0

    def convert(n, arr):
        nonlocal out_bytes
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        q = quantize(arr, qt[plan[n]])
        out_bytes += q.nbytes
        if writer is not None:
            writer.write_tensor_data(q)

    if mode.endswith("-pread"):
        # Each tensor read with os.pread into its own buffer: no mapping of the file.
        np_types = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
        with open(path, "rb") as fh:
            base = 8 + struct.unpack("<Q", fh.read(8))[0]
            for n in names:
                info = header[n]
                a, b = info["data_offsets"]
                buf = os.pread(fh.fileno(), b - a, base + a)
                convert(n, np.frombuffer(buf, dtype=np_types[info["dtype"]]).reshape(info["shape"]))
                del buf
    else:
        # safetensors' numpy API (memory-maps the file: every page read counts in RSS).
        with safe_open(path, framework="np") as f:
            for n in names:
                convert(n, f.get_tensor(n))
    if writer is not None:
        writer.close()
    secs = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    counts: dict[str, int] = {}
    for v in plan.values():
        counts[v] = counts.get(v, 0) + 1
    res = {"tool": "gguf-py", "type": target, "mode": mode, "seconds": round(secs, 3),
           "cpu_seconds": round(cpu, 3),
           "input_bytes": in_bytes, "input_gb_per_s": round(in_bytes / max(secs, 1e-6) / 1e9, 3),
           "input_gb_per_cpu_s": round(in_bytes / max(cpu, 1e-6) / 1e9, 3),
           "load_average": [round(x, 2) for x in os.getloadavg()],
           "output_tensor_bytes": out_bytes, "stored_types": counts,
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_before_conversion_mb": round(rss_start, 1)}
    if out_path:
        res["output_file_bytes"] = os.path.getsize(out_path)
        if not keep:
            os.unlink(out_path)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", default=DEFAULT_INPUT)
    ap.add_argument("--types", default="q8_0,f16")
    ap.add_argument("--modes", default="write,quantize,write-pread")
    ap.add_argument("--out-dir", default="/tmp/pixconv-bench/out")
    ap.add_argument("--worker", nargs=2, metavar=("TYPE", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the written GGUF files")
    ap.add_argument("--header-only", action="store_true",
                    help="print the input size and largest tensor, convert nothing")
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(worker(args.input, args.worker[0], args.worker[1], args.out_dir,
                                args.keep)))
        return

    if not os.path.exists(args.input):
        root = Path(__file__).resolve().parent.parent
        subprocess.run([sys.executable, str(root / "scripts" / "make_fullsize_checkpoint.py")],
                       check=True, stdout=sys.stderr)
    header = read_header(args.input)
    name, big = largest_tensor(header)
    res = {"input": args.input, "input_file_bytes": os.path.getsize(args.input),
           "tensors": len(header),
           "tensor_bytes": sum(tensor_bytes(i) for i in header.values()),
           "largest_tensor": name, "largest_tensor_bytes": big,
           "rss_target_mb": round(big / 2**20 + 64, 1), "runs": []}
    if not args.header_only:
        from importlib.metadata import version
        res["generator"] = f"gguf-py {version('gguf')}, numpy {version('numpy')}"
        os.makedirs(args.out_dir, exist_ok=True)
        for t in args.types.split(","):
            for m in args.modes.split(","):
                p = subprocess.run([sys.executable, __file__, "--input", args.input,
                                    "--out-dir", args.out_dir, "--worker", t, m]
                               + (["--keep"] if args.keep else []),
                                   check=True, capture_output=True, text=True)
                r = json.loads(p.stdout.strip().splitlines()[-1])
                print(f"gguf-py {t} {m}: {r['seconds']} s ({r['cpu_seconds']} s CPU), "
                      f"{r['input_gb_per_s']} GB/s, "
                      f"peak RSS {r['peak_rss_mb']} MB", file=sys.stderr, flush=True)
                res["runs"].append(r)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
