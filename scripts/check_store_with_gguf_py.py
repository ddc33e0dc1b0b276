#!/usr/bin/env python3
"""Reads a pixconv store (or any GGUF file) with gguf-py 0.19.0's `GGUFReader` and checks it.

  venv/bin/python scripts/check_store_with_gguf_py.py FILE [--quiet] [--pipeline DIR]

Checks that gguf-py parses the file, that every tensor dequantizes with `gguf.quants.dequantize`
to finite-or-not values of the right count, and, when the pixconv keys are present: the
architecture, `general.alignment` = 64, one `pixconv.tensor_crc32` entry per tensor matching the
CRC-32 of its bytes, and `pixconv.header_crc32` (CRC-32 of the bytes before the tensor data with
that value's 4 bytes zeroed). With `--pipeline DIR` (a diffusers pipeline folder of safetensors
files), every stored tensor must also equal, byte for byte, gguf-py's own encoding of the source
tensor (`gguf.quants.quantize`, f32 kept as is). Exit status 0 when every check passes, 1 otherwise.
"""
import glob
import os
import sys
import zlib

import numpy as np
import gguf
from gguf.quants import dequantize


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    path = argv[1]
    quiet = "--quiet" in argv
    problems = []
    r = gguf.GGUFReader(path)
    fields = {f.name: f for f in r.fields.values()}

    def value(key):
        f = fields.get(key)
        return None if f is None else f.contents()

    arch = value("general.architecture")
    print(f"{path}: GGUF v{value('GGUF.version')}, {len(r.tensors)} tensors, {len(fields)} fields, "
          f"alignment {r.alignment}, data at {r.data_offset}, architecture {arch!r}")
    pixconv = value("pixconv.version") is not None
    if pixconv:
        if arch != "pixart":
            problems.append(f"general.architecture is {arch!r}")
        if value("general.alignment") != 64:
            problems.append(f"general.alignment is {value('general.alignment')!r}")
        if value("general.quantization_version") != 2:
            problems.append("general.quantization_version is not 2")
        comps = value("pixconv.components") or []
        print(f"  pixconv {value('pixconv.version')}, components {comps}, file_type {value('general.file_type')}")
        print(f"  precision policy: {value('pixconv.precision_policy')}")
        for c in comps:
            cfg = value(f"pixconv.{c}.config")
            print(f"  {c}: config {len(cfg) if cfg else 0} chars, "
                  f"{sum(1 for t in r.tensors if t.name.startswith(c + '.'))} tensors")
        sp = fields.get("pixconv.tokenizer.spiece_model")
        if sp is not None:
            print(f"  spiece.model: {len(sp.data)} bytes")

    crcs = value("pixconv.tensor_crc32")
    if pixconv and (crcs is None or len(crcs) != len(r.tensors)):
        problems.append("pixconv.tensor_crc32 missing or of the wrong length")
        crcs = None
    for i, t in enumerate(r.tensors):
        raw = np.ascontiguousarray(t.data).tobytes()
        if len(raw) != int(t.n_bytes):
            problems.append(f"{t.name}: {len(raw)} bytes, expected {t.n_bytes}")
        T = gguf.GGMLQuantizationType
        if t.tensor_type in (T.I8, T.I16, T.I32, T.I64, T.F64):  # gguf-py has no dequantize for these
            values = np.asarray(t.data).astype(np.float64).ravel()
        else:
            with np.errstate(all="ignore"):
                values = dequantize(np.ascontiguousarray(t.data), t.tensor_type)
        if values.size != int(t.n_elements):
            problems.append(f"{t.name}: dequantized {values.size} values, expected {t.n_elements}")
        crc = zlib.crc32(raw)
        if crcs is not None and int(crcs[i]) != crc:
            problems.append(f"{t.name}: crc32 {crc:08x}, stored {int(crcs[i]):08x}")
        if not quiet:
            shape = [int(d) for d in reversed(t.shape)]
            with np.errstate(all="ignore"):
                mean = float(np.abs(values.astype(np.float64)).mean()) if values.size else 0.0
            print(f"  {t.name:48s} {t.tensor_type.name:5s} {shape} crc32 {crc:08x} mean|x| {mean:.6g}")

    hc = fields.get("pixconv.header_crc32")
    if pixconv:
        if hc is None:
            problems.append("pixconv.header_crc32 missing")
        else:
            data = bytearray(np.memmap(path, dtype=np.uint8, mode="r")[: r.data_offset].tobytes())
            # Locate the value: the field's last part is the 4-byte value; its offset is field.offset + sum of earlier part sizes.
            at = hc.offset + sum(p.nbytes for p in hc.parts[:-1])
            stored = int(hc.parts[-1][0])
            data[at:at + 4] = b"\0\0\0\0"
            crc = zlib.crc32(bytes(data))
            print(f"  header crc32 {crc:08x}, stored {stored:08x}")
            if crc != stored:
                problems.append(f"header crc32 {crc:08x}, stored {stored:08x}")

    if "--pipeline" in argv:
        problems += compare_with_sources(r, argv[argv.index("--pipeline") + 1])

    for p in problems:
        print("PROBLEM:", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


SUBFOLDERS = {"dit": "transformer", "te": "text_encoder", "vae": "vae"}
ABBREVIATIONS = {"rel_attn_bias": "relative_attention_bias"}  # store names (formats/store.md)


def compare_with_sources(r, folder):
    from safetensors.numpy import load_file
    from gguf.quants import quantize
    sources = {}
    for comp, sub in SUBFOLDERS.items():
        tensors = {}
        for f in sorted(glob.glob(os.path.join(folder, sub, "*.safetensors"))):
            tensors.update(load_file(f))
        sources[comp] = tensors
    problems, same = [], 0
    for t in r.tensors:
        comp, _, key = t.name.partition(".")
        key = ".".join(ABBREVIATIONS.get(p, p) for p in key.split("."))
        src = sources.get(comp, {}).get(key)
        if src is None:
            problems.append(f"{t.name}: no source tensor '{key}' under {SUBFOLDERS.get(comp)}")
            continue
        x = np.asarray(src, dtype=np.float32)
        x = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
        expected = x if t.tensor_type == gguf.GGMLQuantizationType.F32 else quantize(x, t.tensor_type)
        if np.ascontiguousarray(expected).tobytes() != np.ascontiguousarray(t.data).tobytes():
            problems.append(f"{t.name}: bytes differ from gguf-py's {t.tensor_type.name} encoding of the source")
        else:
            same += 1
    print(f"  {same} of {len(r.tensors)} tensors byte-identical to gguf-py's encoding of {folder}")
    return problems


if __name__ == "__main__":
    sys.exit(main(sys.argv))
