#!/usr/bin/env python3
"""Reference images of the demo model (fixtures/demo-pixart, trained by scripts/train_demo.py),
made by diffusers' PixArtAlphaPipeline (float32, CPU):

    venv/bin/python scripts/make_demo_reference.py

  fixtures/reference-demo/   a scripts/make_reference.py bundle (PNGs, latents, embeddings) of a few
                             cases (DPM-Solver++, DDIM without guidance, Euler, a negative prompt):
                             what `pixconv verify --reference` compares the demo's stores with
  fixtures/demo-semantic/    the 36 prompts of the semantic check (train_demo.SEMANTICS), one PNG
                             each, in the reference-bundle layout (cases.json; `pixconv verify`
                             reads it too), with per case the prompted shape, colour and background
                             and the verdict of train_demo.score_image on diffusers' image, and the
                             pass rate. Tests/PixconvCLITests/DemoSemanticTests uses it.
  fixtures/demo-sheet/prompts.txt  the prompts of the README's contact sheet (scripts/setup.sh)

Everything is produced by torch / diffusers with fixed seeds; nothing here uses pixconv code.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
sys.path.insert(0, str(ROOT / "scripts"))

import make_reference  # noqa: E402
import train_demo  # noqa: E402

MODEL = FIX / "demo-pixart"
GENERATOR = make_reference.GENERATOR

# DPM-Solver++ cases first: make_reference.py replaces the pipeline's scheduler per case.
REFERENCE_CASES = [
    {"name": "red-circle-dpm", "prompt": "a red circle on a blue background", "seed": 0},
    {"name": "yellow-triangle-dpm", "prompt": "a yellow triangle on a black background", "seed": 1},
    {"name": "blue-circle-negative", "prompt": "blue circle on a white background", "seed": 4,
     "negative_prompt": "a red square on a black background", "steps": 14, "guidance_scale": 3.0},
    {"name": "white-square-ddim-nocfg", "prompt": "a white square against a green background", "seed": 2,
     "guidance_scale": 1.0, "scheduler": "ddim"},
    {"name": "green-triangle-euler", "prompt": "a blue background with a green triangle", "seed": 3,
     "scheduler": "euler"},
]

SEMANTIC_SEED = 1000  # case i uses seed SEMANTIC_SEED + i


def semantic_cases() -> list[dict]:
    cases = []
    for i, (s, c, b) in enumerate(train_demo.SEMANTICS):
        cases.append({"name": f"{c}-{s}-on-{b}", "prompt": train_demo.caption(s, c, b, 0), "negative_prompt": "",
                      "seed": SEMANTIC_SEED + i, "steps": 20, "guidance_scale": 4.5,
                      "height": train_demo.IMAGE, "width": train_demo.IMAGE, "scheduler": "dpm++2m",
                      "shape": s, "colour": c, "background": b})
    return cases


def make_semantic(model: Path, out: Path) -> float:
    pipe = make_reference.load_pipeline(model)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    records = []
    for case in semantic_cases():
        img = pipe(case["prompt"], negative_prompt="", num_inference_steps=case["steps"],
                   guidance_scale=case["guidance_scale"], height=case["height"], width=case["width"],
                   generator=torch.Generator("cpu").manual_seed(case["seed"]), clean_caption=False,
                   use_resolution_binning=False, output_type="pil").images[0]
        img.save(out / f"{case['name']}.png", format="PNG")
        v = train_demo.score_image(np.asarray(img), case["shape"], case["colour"], case["background"])
        records.append(dict(case, image=f"{case['name']}.png",
                            semantic={"background": v["background"], "colour": v["colour"],
                                      "shape": v["shape"], "pass": bool(v["pass"]),
                                      "iou": {k: round(x, 4) for k, x in v["iou"].items()}}))
    rate = sum(r["semantic"]["pass"] for r in records) / len(records)
    doc = {"generator": GENERATOR, "model": model.name, "vae_scale_factor": pipe.vae_scale_factor,
           "rule": "scripts/train_demo.py score_image", "pass_rate": rate, "cases": records}
    (out / "cases.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"demo-semantic: {sum(r['semantic']['pass'] for r in records)}/{len(records)} pass ({rate:.1%})")
    return rate


def sheet_prompts() -> list[str]:
    """6 colours x 3 shapes, each on another colour: rows are shapes, columns colours."""
    names = list(train_demo.COLOURS)
    return [train_demo.caption(s, c, names[(i + 2 + k) % 6], 0)
            for k, s in enumerate(train_demo.SHAPES) for i, c in enumerate(names)]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=MODEL, help="the demo pipeline folder")
    ap.add_argument("--fixtures", type=Path, default=FIX, help="where the three folders go")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    make_reference.make_bundle(args.model, REFERENCE_CASES, args.fixtures / "reference-demo", model_name=MODEL.name)
    make_semantic(args.model, args.fixtures / "demo-semantic")
    sheet = args.fixtures / "demo-sheet"
    sheet.mkdir(exist_ok=True)
    (sheet / "prompts.txt").write_text("\n".join(sheet_prompts()) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
