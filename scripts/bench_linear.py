"""torch's linear layers on the shapes of scripts/bench_linear.c: f32 (torch.nn.functional.linear)
and dynamic int8 (torch.ao.quantization.quantize_dynamic on an nn.Linear, fbgemm), THREADS
threads, REPS calls each, medians. Printed in bench_linear.c's format."""
import os
import sys
import time

import torch

SHAPES = [("dit-qkvo", 2048, 1152, 1152), ("dit-ff1", 2048, 1152, 4608), ("dit-ff2", 2048, 4608, 1152),
          ("dit-cross-kv", 240, 4096, 1152),
          ("t5-attn", 240, 4096, 4096), ("t5-wi", 240, 4096, 10240), ("t5-wo", 240, 10240, 4096)]


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    filt = sys.argv[2] if len(sys.argv) > 2 else ""
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(0)
    for name, m, k, n in SHAPES:
        if filt and filt not in name:
            continue
        x = torch.rand(m, k) * 2 - 1
        lin = torch.nn.Linear(k, n, bias=False)
        mods = [("f32", lin), ("int8", torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8))]
        for label, mod in mods:
            with torch.inference_mode():
                mod(x)
                ts = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    mod(x)
                    ts.append(time.perf_counter() - t0)
            ts.sort()
            med = ts[len(ts) // 2]
            print(f"{name:<13} {m:5d} {k:6d} {n:6d}  torch {label:<12} {med * 1e3:9.2f} ms {2 * m * k * n / med * 1e-9:7.1f} GOP/s", flush=True)

    if not filt or filt in "dit-attention":
        b, h, l, d = 2, 16, 1024, 72
        q, k, v = (torch.rand(b, h, l, d) * 2 - 1 for _ in range(3))
        with torch.inference_mode():
            torch.nn.functional.scaled_dot_product_attention(q, k, v)
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                torch.nn.functional.scaled_dot_product_attention(q, k, v)
                ts.append(time.perf_counter() - t0)
        ts.sort()
        med = ts[len(ts) // 2]
        print(f"{'dit-attention':<13} {b * h:5d} {l:6d} {d:6d}  torch sdpa-f32     {med * 1e3:9.2f} ms {4 * b * h * l * l * d / med * 1e-9:7.1f} GFLOP/s", flush=True)


if __name__ == "__main__":
    main()
