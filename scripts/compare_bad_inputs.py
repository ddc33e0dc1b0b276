#!/usr/bin/env python3
"""What the reference readers do with pixconv's bad-input corpus (formats/hostile-inputs.md).

1. Export the corpus (files + cases.tsv with pixconv's status and message):
     PIXCONV_CORPUS_OUT=/tmp/corpus swift test --skip-build --filter BadInputCorpusTests/testGoldenTable
2. Run:  venv/bin/python scripts/compare_bad_inputs.py /tmp/corpus > /tmp/compare.md

Each file is opened in a child process (30 s, 4 GiB address space) by the reference for its kind:
safetensors 0.8.0 `safe_open(..., "pt")` + `get_tensor` of every tensor; torch 2.15
`torch.load(weights_only=True)` (the safe mode; the default since torch 2.6) and again with
`mmap=True`; gguf-py `GGUFReader` + reading every tensor's data. Nothing is ever loaded with
`weights_only=False`. Prints a Markdown table: case, reference behaviour, pixconv behaviour.
"""
from __future__ import annotations

import csv
import multiprocessing as mp
import resource
import sys
from pathlib import Path


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _summary(obj) -> str:
    import torch
    tensors = []

    def walk(o):
        if isinstance(o, torch.Tensor):
            tensors.append(o)
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)

    walk(obj)
    return f"loads ({len(tensors)} tensors, type {type(obj).__name__})"


def _safetensors(path: str) -> str:
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        keys = list(f.keys())
        for k in keys:
            f.get_tensor(k)
    return f"loads ({len(keys)} tensors)"


def _torch(path: str, mmap: bool) -> str:
    import torch
    return _summary(torch.load(path, map_location="cpu", weights_only=True, mmap=mmap))


def _gguf(path: str) -> str:
    import numpy as np
    import gguf
    r = gguf.GGUFReader(path)
    for t in r.tensors:
        np.asarray(t.data).sum()
    return f"loads ({len(r.tensors)} tensors)"


def _child(kind: str, path: str, queue) -> None:
    _limit()
    try:
        if kind == "safetensors":
            result = _safetensors(path)
        elif kind == "torch":
            result = _torch(path, False)
        elif kind == "torch-mmap":
            result = _torch(path, True)
        else:
            result = _gguf(path)
    except BaseException as e:  # noqa: BLE001 — the type is the observation
        text = str(e).replace("\n", " ").replace("|", "\\|")
        if len(text) > 110:
            text = text[:107] + "..."
        result = f"{type(e).__name__}: {text}"
    queue.put(result)


def observe(kind: str, path: str) -> str:
    queue = mp.Queue()
    p = mp.Process(target=_child, args=(kind, path, queue))
    p.start()
    p.join(30)
    if p.is_alive():
        p.kill()
        p.join()
        return "hangs (killed after 30 s)"
    if p.exitcode != 0:
        return f"crashes (exit {p.exitcode})"
    return queue.get() if not queue.empty() else "no result"


def main() -> None:
    folder = Path(sys.argv[1])
    rows = list(csv.DictReader(open(folder / "cases.tsv"), delimiter="\t"))
    print("| # | case | reference | reference behaviour | pixconv |")
    print("|---|---|---|---|---|")
    for row in rows:
        path = str(folder / row["file"])
        if row["file"].endswith(".safetensors"):
            refs = [("safetensors 0.8.0", "safetensors")]
        elif row["file"].endswith(".gguf"):
            refs = [("gguf-py 0.19.0", "gguf")]
        else:
            refs = [("torch 2.15", "torch"), ("torch 2.15 mmap", "torch-mmap")]
        seen = "; ".join(f"{label}: {observe(kind, path)}" if len(refs) > 1 else observe(kind, path) for label, kind in refs)
        ref = " / ".join(label for label, _ in refs) if len(refs) == 1 else "torch 2.15 (weights_only)"
        pix = "accepts" if row["pixconv_status"] == "0" else "rejects: " + row["pixconv_message"].replace("pixconv: ", "").replace("|", "\\|")
        print(f"| {row['number']} | {row['id']} | {ref} | {seen} | {pix} |")


if __name__ == "__main__":
    main()
