#!/usr/bin/env python3
"""Regenerates every committed test fixture under fixtures/ from the real libraries.

Run from the repository root:

    /work/venv/bin/python scripts/make_fixtures.py            # everything
    /work/venv/bin/python scripts/make_fixtures.py pipelines  # only some stages

Stages: pipelines (tiny diffusers PixArt folders), readers (checkpoint-reader fixtures and
expected values), reference (whole-pipeline reference images).

Everything is produced by torch / diffusers / transformers / safetensors / sentencepiece with
fixed seeds; nothing here uses pixconv code. See /work/helpers/fixtures-contract.md.
"""
from __future__ import annotations

import codecs
import hashlib
import inspect
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# --------------------------------------------------------------------------------------------
# Tokenizer corpus and sentencepiece model
# --------------------------------------------------------------------------------------------

CORPUS_MODULES = [
    "collections", "itertools", "functools", "os", "re", "json", "string", "textwrap", "argparse",
    "logging", "unittest", "typing", "pathlib", "datetime", "decimal", "fractions", "random",
    "statistics", "heapq", "bisect", "csv", "shutil", "tempfile", "zipfile", "tarfile", "gzip",
    "subprocess", "threading", "queue", "socket", "http.client", "urllib.parse", "email.message",
    "pickle", "copy", "pprint", "difflib", "inspect", "dataclasses", "enum", "contextlib", "abc",
    "io", "codecs", "base64", "hashlib", "calendar", "math", "operator", "glob", "fnmatch",
    "sqlite3", "xml.dom.minidom", "html.parser", "configparser", "sched", "shlex", "uuid",
]

PROMPT_SUBJECTS = [
    "a cat", "a dog", "a red fox", "an astronaut", "a small cactus", "a castle", "a lighthouse",
    "a bowl of fruit", "a vintage car", "an old man", "a young woman", "a robot", "a dragon",
    "a squirrel eating a burger", "a sailing boat", "a mountain lake", "a city street", "a forest",
    "a owl", "a horse", "a teddy bear", "a cup of coffee", "a bicycle", "a waterfall", "a garden",
    "a portrait of a girl", "a tiger", "a panda", "a wooden house", "a spaceship", "a pizza",
]
PROMPT_ADJECTIVES = [
    "beautiful", "cute", "tiny", "giant", "colorful", "dark", "bright", "golden", "ancient",
    "futuristic", "cozy", "misty", "snowy", "sunny", "rainy", "glowing", "detailed", "happy",
    "lonely", "majestic", "peaceful", "dramatic", "soft", "vivid", "blue", "green", "purple",
]
PROMPT_PLACES = [
    "in the Sahara desert", "on the beach", "at sunset", "under the stars", "in a snowy forest",
    "on the moon", "in a busy market", "by the river", "in the mountains", "in a cozy kitchen",
    "on a rainy night", "in a flower field", "in the jungle", "inside a library", "over the ocean",
]
PROMPT_STYLES = [
    "oil painting", "watercolor", "digital art", "photograph", "studio lighting", "8k",
    "highly detailed", "cinematic lighting", "pencil sketch", "anime style", "3d render",
    "trending on artstation", "sharp focus", "soft light", "impressionism", "pixel art",
]

TEST_TEXTS = [
    "A painting of a squirrel eating a burger",
    "A small cactus with a happy face in the Sahara desert.",
    "an astronaut riding a horse on the moon, digital art",
    "Beautiful   castle,\tat sunset — oil painting (8k) 42%",
    "ｆｕｌｌｗｉｄｔｈ text and café naïve ﬁ ligature ½",
    "",
    "zzqx unknown wörds 日本語",
]


def make_corpus() -> str:
    lines: list[str] = []
    import contextlib
    import importlib
    with contextlib.redirect_stdout(io.StringIO()):
        import this  # noqa: F401  (prints the Zen of Python on import)
    lines.extend(codecs.decode(sys.modules["this"].s, "rot13").splitlines())
    for name in CORPUS_MODULES:
        mod = importlib.import_module(name)
        docs = [inspect.getdoc(mod) or ""]
        for attr in sorted(dir(mod)):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr, None)
            if callable(obj):
                d = inspect.getdoc(obj)
                if d:
                    docs.append(d)
        for d in docs:
            for line in d.splitlines():
                line = line.strip()
                if len(line) >= 20 and line.isascii():
                    lines.append(line)
    rng = random.Random(1234)
    for _ in range(1500):
        p = f"{rng.choice(PROMPT_ADJECTIVES)} {rng.choice(PROMPT_SUBJECTS)} {rng.choice(PROMPT_PLACES)}"
        if rng.random() < 0.7:
            p += ", " + ", ".join(rng.sample(PROMPT_STYLES, rng.randint(1, 3)))
        if rng.random() < 0.5:
            p = p[0].upper() + p[1:]
        lines.append(p)
    lines.extend(TEST_TEXTS[:4])
    return "\n".join(lines) + "\n"


def train_spiece(out_model: Path) -> None:
    import sentencepiece as spm
    corpus = make_corpus()
    # sentence_iterator/model_writer: no temp paths end up in the model's trainer_spec.
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus.splitlines()), model_writer=buf, model_type="unigram",
        vocab_size=1000, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        normalization_rule_name="nmt_nfkc", character_coverage=1.0, num_threads=1,
        input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    out_model.write_bytes(buf.getvalue())
    print(f"corpus {len(corpus.encode())} bytes; spiece.model {out_model.stat().st_size} bytes")


def load_tokenizer(folder: Path, spiece: Path):
    """Loads T5Tokenizer (transformers 5 pitfall, pixart-alpha.md §9) and checks it against sp."""
    import sentencepiece as spm
    from transformers import T5Tokenizer
    tok = T5Tokenizer.from_pretrained(str(folder), extra_ids=0, legacy=True)
    check_tokenizer(tok, spiece)
    return tok


def check_tokenizer(tok, spiece: Path) -> None:
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(spiece))
    assert len(tok) == sp.get_piece_size(), (len(tok), sp.get_piece_size())
    for text in TEST_TEXTS:
        want = sp.encode(text) + [1]
        got = tok(text).input_ids
        assert got == want, f"tokenizer mismatch for {text!r}: {got} vs {want}"


# --------------------------------------------------------------------------------------------
# Tiny pipelines
# --------------------------------------------------------------------------------------------

def add_noise(module: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Adds small seeded noise to every parameter so that every weight matters."""
    g = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)


def tiny_transformer(sample_size: int, seed: int):
    from diffusers import PixArtTransformer2DModel
    torch.manual_seed(seed)
    m = PixArtTransformer2DModel(
        sample_size=sample_size, num_layers=2, patch_size=2, attention_head_dim=8,
        num_attention_heads=3, caption_channels=32, in_channels=4, cross_attention_dim=24,
        out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False,
        norm_eps=1e-6)
    add_noise(m, seed + 1)
    return m.eval()


def tiny_vae(seed: int):
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    m = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), layers_per_block=1,
        latent_channels=4, norm_num_groups=32, sample_size=16, scaling_factor=0.18215)
    add_noise(m, seed + 1)
    return m.eval()


def tiny_text_encoder(vocab_size: int, seed: int):
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=vocab_size, d_model=32, d_kv=8, num_heads=4, num_layers=2, d_ff=64,
        feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
        relative_attention_max_distance=128, layer_norm_epsilon=1e-6, dropout_rate=0.1,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False)
    m = T5EncoderModel(cfg)
    add_noise(m, seed + 1)
    return m.eval()


def pixart_scheduler():
    from diffusers import DPMSolverMultistepScheduler
    return DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        prediction_type="epsilon", algorithm_type="dpmsolver++", solver_order=2,
        solver_type="midpoint", lower_order_final=True, timestep_spacing="linspace",
        steps_offset=0)


PIPELINES = {
    # name: (transformer sample_size, base seed)
    "tiny-pixart-512": (8, 100),
    "tiny-pixart-1024ms": (128, 200),
}


def make_pipeline(name: str, spiece: Path) -> Path:
    from diffusers import PixArtAlphaPipeline
    sample_size, seed = PIPELINES[name]
    folder = FIX / name
    if folder.exists():
        shutil.rmtree(folder)
    with tempfile.TemporaryDirectory() as td:
        tdir = Path(td) / "tok"
        tdir.mkdir()
        shutil.copyfile(spiece, tdir / "spiece.model")
        tok = load_tokenizer(tdir, spiece)
        te = tiny_text_encoder(len(tok), seed + 10)
        tr = tiny_transformer(sample_size, seed + 20)
        vae = tiny_vae(seed + 30)
        pipe = PixArtAlphaPipeline(tokenizer=tok, text_encoder=te, vae=vae, transformer=tr,
                                   scheduler=pixart_scheduler())
        pipe.save_pretrained(str(folder), safe_serialization=True)
    # Text encoder sharded (index + 2 shards) like the real one.
    ted = folder / "text_encoder"
    for f in ted.glob("*.safetensors*"):
        f.unlink()
    te.save_pretrained(str(ted), safe_serialization=True, max_shard_size="150KB")
    shards = sorted(ted.glob("model-*.safetensors"))
    assert (ted / "model.safetensors.index.json").exists() and len(shards) == 2, shards
    shutil.copyfile(spiece, folder / "tokenizer" / "spiece.model")
    return folder


def check_pipeline(folder: Path, spiece: Path, size: tuple[int, int] | None) -> None:
    from diffusers import PixArtAlphaPipeline
    pipe = PixArtAlphaPipeline.from_pretrained(str(folder))
    check_tokenizer(pipe.tokenizer, spiece)
    vsf = pipe.vae_scale_factor
    assert vsf == 2, vsf
    default = pipe.transformer.config.sample_size * vsf
    h, w = size if size else (default, default)
    out = pipe("a cat on the beach", num_inference_steps=2, height=h, width=w,
               generator=torch.Generator("cpu").manual_seed(0), clean_caption=False,
               use_resolution_binning=False, output_type="np")
    img = out.images[0]
    assert img.shape == (h, w, 3) and np.isfinite(img).all(), img.shape
    print(f"{folder.name}: vae_scale_factor {vsf}, default size {default}x{default}, "
          f"generated {h}x{w} mean {img.mean():.4f} std {img.std():.4f}")


def stage_pipelines() -> None:
    spiece = FIX / "tokenizer-src" / "spiece.model"
    train_spiece(spiece)
    for name in PIPELINES:
        folder = make_pipeline(name, spiece)
        check_pipeline(folder, spiece, None if name == "tiny-pixart-512" else (32, 32))
    shutil.rmtree(spiece.parent)


STAGES = {"pipelines": stage_pipelines}


def main(argv: list[str]) -> None:
    names = argv or list(STAGES)
    for n in names:
        t0 = time.time()
        STAGES[n]()
        print(f"stage {n}: {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
