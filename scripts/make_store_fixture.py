#!/usr/bin/env python3
"""A small GGUF file written by gguf-py 0.19.0's `gguf.GGUFWriter`, for PixconvStoreTests.

Writes fixtures/store/gguf-py.gguf (default alignment 32, so `general.alignment` is absent) and
fixtures/store/gguf-py.json: for each tensor its name, ggml type, shape (numpy/PyTorch order),
CRC-32 of its bytes and its values as `gguf.quants.dequantize` gives them; and every KV.

Run: venv/bin/python scripts/make_store_fixture.py   (deterministic: fixed seed)
"""
import json
import os
import zlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "store")


def main():
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "gguf-py.gguf")
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(path, arch="pixart")
    kvs = [
        ("test.u8", 200, gguf.GGUFValueType.UINT8),
        ("test.i8", -5, gguf.GGUFValueType.INT8),
        ("test.u16", 65000, gguf.GGUFValueType.UINT16),
        ("test.i16", -30000, gguf.GGUFValueType.INT16),
        ("test.u32", 4000000000, gguf.GGUFValueType.UINT32),
        ("test.i32", -2000000000, gguf.GGUFValueType.INT32),
        ("test.f32", 1.5, gguf.GGUFValueType.FLOAT32),
        ("test.bool", True, gguf.GGUFValueType.BOOL),
        ("test.string", "héllo, wörld", gguf.GGUFValueType.STRING),
        ("test.u64", 2 ** 63 + 5, gguf.GGUFValueType.UINT64),
        ("test.i64", -(2 ** 62), gguf.GGUFValueType.INT64),
        ("test.f64", -2.25e-300, gguf.GGUFValueType.FLOAT64),
    ]
    for key, val, vtype in kvs:
        w.add_key_value(key, val, vtype)
    w.add_array("test.bytes", bytes(range(0, 256, 5)))
    w.add_array("test.ints", [1, -2, 3, 2 ** 31 - 1])
    w.add_array("test.floats", [0.5, -1.25, 3.0e10])
    w.add_array("test.strings", ["a", "", "ünï"])
    w.add_array("test.bools", [True, False, True])
    w.add_array("test.nested", [[1, 2, 3], [4, 5]])

    tensors = []

    def add(name, values, qtype, store_shape):
        values = np.ascontiguousarray(values, dtype=np.float32)
        if qtype == T.F32:
            data = values
        elif qtype == T.F16:
            data = values.astype(np.float16)
        else:
            data = quantize(values, qtype)
        w.add_tensor(name, data, raw_dtype=qtype if qtype not in (T.F32, T.F16) else None)
        raw = np.ascontiguousarray(data).tobytes()
        deq = dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(values.shape[0], -1) if qtype not in (T.F32, T.F16)
                         else np.frombuffer(raw, dtype=data.dtype).reshape(values.shape), qtype)
        tensors.append({"name": name, "type": qtype.name, "shape": list(store_shape), "crc32": zlib.crc32(raw),
                        "nbytes": len(raw), "values": [float(v) for v in np.asarray(deq, dtype=np.float32).ravel()]})

    add("dit.f32", rng.standard_normal((3, 5)), T.F32, (3, 5))
    add("dit.f16", rng.standard_normal((2, 8)), T.F16, (2, 8))
    add("dit.bf16", rng.standard_normal((4, 4)), T.BF16, (4, 4))
    add("te.q8_0", rng.standard_normal((2, 64)), T.Q8_0, (2, 64))
    add("te.q4_0", rng.standard_normal((3, 32)), T.Q4_0, (3, 32))
    add("vae.q4_1", rng.standard_normal((2, 32)), T.Q4_1, (2, 32))
    add("vae.q5_0", rng.standard_normal((2, 32)), T.Q5_0, (2, 32))
    add("vae.q5_1", rng.standard_normal((1, 64)), T.Q5_1, (1, 64))
    vec = rng.standard_normal(7).astype(np.float32)
    w.add_tensor("vae.vector", vec)
    tensors.append({"name": "vae.vector", "type": "F32", "shape": [7], "crc32": zlib.crc32(vec.tobytes()),
                    "nbytes": 28, "values": [float(v) for v in vec]})

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Read back with gguf-py itself to list the KVs as stored.
    r = gguf.GGUFReader(path)
    kv_out = {}
    for field in r.fields.values():
        if field.name.startswith("GGUF."):
            continue
        kv_out[field.name] = {"types": [t.name for t in field.types], "value": to_json(field.contents())}
    with open(os.path.join(OUT, "gguf-py.json"), "w") as f:
        json.dump({"generator": "gguf-py 0.19.0 GGUFWriter", "alignment": r.alignment, "data_offset": r.data_offset,
                   "kvs": kv_out, "tensors": tensors}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes), {len(tensors)} tensors, {len(kv_out)} kvs")


def to_json(v):
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


if __name__ == "__main__":
    main()
