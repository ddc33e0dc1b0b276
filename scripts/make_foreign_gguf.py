#!/usr/bin/env python3
"""GGUF files as other tools write them, for pixconv's foreign-input tests (fixtures/foreign/).

Run from the repository root:  venv/bin/python scripts/make_foreign_gguf.py

Writes, with gguf-py's GGUFWriter (arch "pixart", as ComfyUI-GGUF's convert.py does):
- pixart-original-<type>.gguf for type in f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1: the tiny
  original-layout checkpoint fixtures/readers/pixart-original.pth under its original tensor names
  (what ComfyUI-GGUF / stable-diffusion.cpp keep). Tensors of rank >= 2 whose rows are a whole
  number of blocks are quantized with gguf.quants.quantize to the type; other tensors of rank >= 2
  stay F16 (ComfyUI-GGUF's fallback), 1-D tensors F32. For f32/f16/bf16 every tensor of rank >= 2
  has that type.
- pixart-diffusers-q8_0.gguf: the diffusers-layout conversion of the same checkpoint
  (fixtures/readers/diffusers-conversion), quantized the same way to Q8_0.
- <stem>.expected.safetensors: every tensor dequantized by gguf.quants.dequantize from the bytes
  read back with GGUFReader, as f32, in diffusers names (original-layout files go through the
  official key mapping, scripts/make_fixtures.py::diffusers_convert) — what
  `pixconv convert <file> --format safetensors --type f32` must produce.
- expected.json: per file, every tensor's ggml type name and shape (PyTorch order).
- broken-offset.gguf, broken-type.gguf: pixart-original-q8_0.gguf with the second tensor's offset
  moved by 8 bytes (not aligned, not the running sum) and the first tensor's type id set to 42.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import quants

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "foreign"
sys.path.insert(0, str(ROOT / "scripts"))
from make_fixtures import diffusers_convert  # noqa: E402

TYPES = {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0,
         "q4_1": Q.Q4_1, "q5_0": Q.Q5_0, "q5_1": Q.Q5_1}


def target_type(array: np.ndarray, qtype: Q) -> Q:
    if array.ndim < 2:
        return Q.F32
    block, _ = gguf.GGML_QUANT_SIZES[qtype]
    if array.shape[-1] % block != 0:
        return Q.F16
    return qtype


def write(path: Path, tensors: dict[str, np.ndarray], qtype: Q) -> None:
    writer = gguf.GGUFWriter(str(path), arch="pixart")
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type({Q.F32: 0, Q.F16: 1, Q.Q4_0: 2, Q.Q4_1: 3, Q.Q8_0: 7, Q.Q5_0: 8, Q.Q5_1: 9, Q.BF16: 32}[qtype])
    for name, array in tensors.items():
        t = target_type(array, qtype)
        if t == Q.F32:
            writer.add_tensor(name, array.astype(np.float32))
        elif t == Q.F16:
            writer.add_tensor(name, array.astype(np.float16))
        else:
            data = quants.quantize(array.astype(np.float32), t)
            writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=t)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_back(path: Path) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Dequantized f32 values and type/shape per tensor, from the file's bytes."""
    reader = gguf.GGUFReader(str(path))
    values, info = {}, {}
    for t in reader.tensors:
        shape = [int(d) for d in reversed(t.shape.tolist())]  # ggml ne -> PyTorch order
        raw = np.asarray(t.data)
        deq = quants.dequantize(raw, t.tensor_type).astype(np.float32).reshape(shape)
        values[t.name] = deq
        info[t.name] = {"type": t.tensor_type.name, "shape": shape}
    return values, info


def expected_in_diffusers_names(values: dict[str, np.ndarray], original: bool) -> dict[str, np.ndarray]:
    if not original:
        return {k: np.ascontiguousarray(v) for k, v in values.items()}
    depth = len({k.split(".")[1] for k in values if k.startswith("blocks.")})
    converted = diffusers_convert({k: torch.from_numpy(v.copy()) for k, v in values.items()}, depth)
    return {k: np.ascontiguousarray(v.numpy()) for k, v in converted.items()}


def patch(src: Path, dst: Path, tensor_index: int, what: str, value: int) -> None:
    """Copies src to dst with one tensor info's offset or type replaced."""
    reader = gguf.GGUFReader(str(src))
    t = reader.tensors[tensor_index]
    data = bytearray(src.read_bytes())
    name = t.name.encode()
    needle = struct.pack("<Q", len(name)) + name
    at = data.index(needle) + len(needle)
    n_dims = struct.unpack_from("<I", data, at)[0]
    type_at = at + 4 + 8 * n_dims
    if what == "type":
        struct.pack_into("<I", data, type_at, value)
    else:
        old = struct.unpack_from("<Q", data, type_at + 4)[0]
        struct.pack_into("<Q", data, type_at + 4, old + value)
    dst.write_bytes(bytes(data))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sd = torch.load(str(ROOT / "fixtures/readers/pixart-original.pth"), map_location="cpu", weights_only=True)["state_dict"]
    original = {k: v.numpy() for k, v in sd.items()}
    diffusers = {k: v.numpy() for k, v in
                 load_file(str(ROOT / "fixtures/readers/diffusers-conversion/diffusion_pytorch_model.safetensors")).items()}
    manifest = {}
    jobs = [(f"pixart-original-{name}", original, q, True) for name, q in TYPES.items()]
    jobs.append(("pixart-diffusers-q8_0", diffusers, Q.Q8_0, False))
    for stem, tensors, qtype, is_original in jobs:
        path = OUT / f"{stem}.gguf"
        write(path, tensors, qtype)
        values, info = read_back(path)
        assert list(info) == list(tensors), stem
        manifest[path.name] = {"layout": "original" if is_original else "diffusers", "tensors": info}
        save_file(expected_in_diffusers_names(values, is_original), str(OUT / f"{stem}.expected.safetensors"))
        types = sorted({i["type"] for i in info.values()})
        print(f"{path.name}: {path.stat().st_size} bytes, types {types}")
    q8 = OUT / "pixart-original-q8_0.gguf"
    patch(q8, OUT / "broken-offset.gguf", 1, "offset", 8)
    patch(q8, OUT / "broken-type.gguf", 0, "type", 42)
    for name in ("broken-offset.gguf", "broken-type.gguf"):
        try:
            r = gguf.GGUFReader(str(OUT / name))
            print(f"{name}: gguf-py reads it ({len(r.tensors)} tensors)")
        except Exception as e:  # noqa: BLE001
            print(f"{name}: gguf-py refuses it: {type(e).__name__}: {e}")
    (OUT / "expected.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
