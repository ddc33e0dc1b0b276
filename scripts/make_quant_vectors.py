#!/usr/bin/env python3
"""Golden vectors for PixconvQuant, produced by gguf-py 0.19.0 (`gguf.quants`).

Writes fixtures/quant/vectors.bin (raw little-endian payloads, concatenated) and
fixtures/quant/vectors.json (the index: per case, shape and [offset, length] of each payload).

Per case:
  input          f32 values, shape [rows, cols] (row-major)
  F16, BF16      bytes of gguf.quants.quantize(input, F16 / BF16)
  Q8_0, Q4_0     bytes of gguf.quants.quantize(input, Q8_0 / Q4_0) (only when cols % 32 == 0 and the
                 input has no NaN)
  <T>_dequant    f32 values of gguf.quants.dequantize(<T> bytes, T)
Dequantize-only cases (Q4_1, Q5_0, Q5_1): bytes quantized by gguf-py and their dequantized values.

Run: venv/bin/python scripts/make_quant_vectors.py   (deterministic: fixed seeds)
"""
import json
import os

import numpy as np
import gguf
from gguf.quants import quantize, dequantize
from gguf import GGMLQuantizationType as T

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "quant")


def f32_from_bits(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


def cases():
    rng = np.random.default_rng(20240531)
    out = []

    # Q8_0 ties: max 127 gives d = 1 exactly (fp16 0x3C00, id = 1), so x.5 values are exact ties.
    ties8 = [127.0] + [k + 0.5 for k in range(-8, 7)] + [-(k + 0.5) for k in range(0, 14)] + [126.5, -126.5]
    ties8 = ties8[:32]
    # Second block: max 63.5 gives d = 0.5 exactly; x.25 values become ties after scaling by id = 2.
    ties8b = [-63.5] + [(k + 0.25) for k in range(-15, 16)]
    out.append(("ties_q8", np.array([ties8, ties8b], dtype=np.float32)))

    # Q4_0 ties: signed max -8 gives d = 1, id = 1: x + 8.5 hits exact .0 / .5 values.
    ties4 = [-8.0 + 0.5 * k for k in range(32)]  # -8 … 7.5
    ties4b = [8.0] + [-7.75 + 0.5 * k for k in range(31)]  # positive max: d = -1, id = -1
    out.append(("ties_q4", np.array([ties4, ties4b], dtype=np.float32)))

    # Zeros: an all-zero block, a block of mostly zeros with signed zeros, and negatives.
    z = np.zeros((3, 32), dtype=np.float32)
    z[1, 3] = -0.0
    z[1, 7] = 1.0
    z[1, 20] = -3.0
    z[2, :] = -np.arange(1, 33, dtype=np.float32) / 7.0
    out.append(("zeros_negatives", z))

    # f16 subnormals and boundaries, f32 subnormals (d underflows: gguf-py's NaN/inf casts give 0).
    sub = np.zeros((3, 32), dtype=np.float32)
    sub[0, :] = np.linspace(-6.0e-5, 6.0e-5, 32, dtype=np.float32)  # around f16's normal minimum 6.1e-5
    sub[1, :] = np.float32(2.0 ** -24) * np.arange(-16, 16, dtype=np.float32) * np.float32(0.75)
    sub[2, :] = f32_from_bits([0x00000001 + 0x1000 * i for i in range(32)])  # f32 subnormals
    sub[2, 1::2] *= -1
    out.append(("subnormals", sub))

    # Huge values: f16 max, the rounding boundary (65519.996 → 65504, 65520 → inf), 1e30, f32 max.
    huge = np.zeros((2, 32), dtype=np.float32)
    huge[0, :8] = [65504.0, -65504.0, 65519.0, 65520.0, -65520.0, 1e30, -1e30, 3.4028235e38]
    huge[0, 8:] = np.linspace(-100, 100, 24, dtype=np.float32)
    huge[1, :] = rng.standard_normal(32).astype(np.float32) * np.float32(1e5)
    out.append(("huge", huge))

    # All-equal blocks (positive and negative), and a block whose extremes tie in |x|.
    eq = np.zeros((3, 32), dtype=np.float32)
    eq[0, :] = 0.3
    eq[1, :] = -1.7
    eq[2, :] = np.linspace(-2.0, 2.0, 32, dtype=np.float32)  # |−2| == |2|: first index wins
    out.append(("all_equal", eq))

    # Rounding of the fp16 scale and RNE ties for f16/bf16 (mantissa patterns at half-ulp).
    rne = np.zeros((2, 32), dtype=np.float32)
    rne[0, :] = f32_from_bits([0x3F800000 + (0x1000 if i % 2 else 0x3000) + (i << 13) for i in range(32)])  # f16 ties
    rne[1, :] = f32_from_bits([0x3F808000 + (i << 16) + (0 if i % 3 else 1) for i in range(32)])  # bf16 ties
    out.append(("rne_ties", rne))

    # NaN-free random normal data, several scales.
    rnd = rng.standard_normal((16, 64)).astype(np.float32)
    rnd[4:8] *= np.float32(0.02)
    rnd[8:12] *= np.float32(30.0)
    out.append(("random_normal", rnd))

    # A row length that is not a multiple of 32 (F16/BF16 only; block types must refuse it).
    out.append(("odd_rows", rng.standard_normal((3, 10)).astype(np.float32)))

    # NaNs (F16/BF16 only): quiet NaNs with sign and payload, plus infinities.
    nan = f32_from_bits([0x7FC00000, 0xFFC00000, 0xFFC12345, 0x7FE00001, 0x7F800000, 0xFF800000, 0x3F800000, 0])
    out.append(("nans", nan.reshape(1, 8)))

    # Infinities in a block (Q8_0: d = inf, id = 0, inf·0 → NaN → 0; Q4_0: d = −inf, id = −0).
    inf = np.linspace(-3, 3, 64, dtype=np.float32).reshape(2, 32)
    inf[0, 5] = np.inf
    inf[1, 9] = -np.inf
    out.append(("infinities", inf))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    blob = bytearray()
    index = {"generator": f"gguf-py {getattr(gguf, '__version__', '0.19.0')}, numpy {np.__version__}",
             "cases": [], "dequant_only": []}

    def put(data: bytes):
        off = len(blob)
        blob.extend(data)
        return [off, len(data)]

    for name, x in cases():
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows, cols = x.shape
        entry = {"name": name, "rows": rows, "cols": cols, "input": put(x.tobytes())}
        types = [T.F16, T.BF16]
        if cols % 32 == 0 and not np.isnan(x).any():
            types += [T.Q8_0, T.Q4_0]
        for t in types:
            with np.errstate(all="ignore"):
                q = np.ascontiguousarray(quantize(x, t))
                dq = dequantize(q.view(np.uint8) if t != T.F16 else q, t)
            entry[t.name] = put(q.tobytes())
            entry[t.name + "_dequant"] = put(np.ascontiguousarray(dq, dtype=np.float32).tobytes())
        index["cases"].append(entry)

    rng = np.random.default_rng(7)
    src = rng.standard_normal((4, 64)).astype(np.float32)
    src[1] *= np.float32(0.01)
    src[2] = np.abs(src[2]) + np.float32(3.0)  # min > 0
    src[3, :32] = 0.5  # all-equal block (d = 0)
    for t in (T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_0):
        with np.errstate(all="ignore"):
            q = np.ascontiguousarray(quantize(src, t))
            dq = dequantize(q, t)
        index["dequant_only"].append({"name": "random_" + t.name, "type": t.name, "rows": 4, "cols": 64,
                                      "bytes": put(q.tobytes()),
                                      "dequant": put(np.ascontiguousarray(dq, dtype=np.float32).tobytes())})

    with open(os.path.join(OUT, "vectors.bin"), "wb") as f:
        f.write(bytes(blob))
    with open(os.path.join(OUT, "vectors.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(f"wrote {len(index['cases'])} cases, {len(index['dequant_only'])} dequant-only, {len(blob)} bytes")


if __name__ == "__main__":
    main()
