#!/usr/bin/env python3
"""Regenerates every committed test fixture under fixtures/ from the real libraries.

Run from the repository root, with the packages of scripts/requirements-fixtures.txt:

    venv/bin/python scripts/make_fixtures.py                 # every stage, in the order below
    venv/bin/python scripts/make_fixtures.py pipelines dit   # only some stages

Stages, in order (each later one reads what an earlier one wrote); fixtures/README.md says which
tests use each folder:
  pipelines  fixtures/tiny-pixart-512/, fixtures/tiny-pixart-1024ms/   (this file)
  readers    fixtures/readers/                                          (this file)
  reference  fixtures/reference-512/, fixtures/reference-1024ms/        (scripts/make_reference.py)
  dit        fixtures/dit/      scripts/make_dit_reference.py
  text       fixtures/text/     scripts/make_text_reference.py
  captions   fixtures/captions/ scripts/make_caption_reference.py   (reads tiny-pixart-512/tokenizer/)
  vae        fixtures/vae/      scripts/make_vae_reference.py
  vaetiled   fixtures/vae/tiled.safetensors   scripts/make_vae_tiling_reference.py
  foreign    fixtures/foreign/  scripts/make_foreign_gguf.py
  store      fixtures/store/    scripts/make_store_fixture.py
  quant      fixtures/quant/    scripts/make_quant_vectors.py
  image      fixtures/image/    scripts/make_metric_reference.py
  img2img    fixtures/img2img/  scripts/make_img2img_reference.py
  vaetiledenc  fixtures/vae/tiled-encode/   scripts/make_vae_tiled_encode_reference.py
             (reads tiny-pixart-512/; imports make_img2img_reference.py's run_case)
  fewstep    fixtures/fewstep/, reference-lcm/, reference-dmd/, tiny-pixart-lcm/, tiny-pixart-dmd/
             scripts/make_fewstep_reference.py   (reads tiny-pixart-512/)
  sigma      fixtures/tiny-pixart-sigma-{512,1024,2k}/, reference-sigma-{512,1024,2k}/, sigma/
             scripts/make_sigma_reference.py   (reads tiny-pixart-512/tokenizer/)
  demo       fixtures/reference-demo/, demo-semantic/, demo-sheet/   scripts/make_demo_reference.py
             (reads fixtures/demo-pixart/, which scripts/train_demo.py trains: ~45 minutes, not run here)
The script stages run as child processes of this interpreter from the repository root. Not run
here: scripts/make_fullsize_*.py (benchmark models written outside the repository, not fixtures)
and FuzzTesting/make_corpus.py / make_regressions.py (the fuzz seeds and regression inputs).

Everything is produced by torch / diffusers / transformers / safetensors / sentencepiece /
gguf-py / PIL / scikit-image with fixed seeds; nothing here uses pixconv code.
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
import subprocess
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
    """Loads T5Tokenizer (transformers 5 pitfall, formats/pixart.md §5) and checks it against sp."""
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
    # Like the real PixArt repositories: the tokenizer folder holds spiece.model and no
    # tokenizer.json (transformers converts spiece.model on load; needs protobuf).
    shutil.copyfile(spiece, folder / "tokenizer" / "spiece.model")
    (folder / "tokenizer" / "tokenizer.json").unlink()
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


# --------------------------------------------------------------------------------------------
# Reader fixtures
# --------------------------------------------------------------------------------------------

READERS = FIX / "readers"
ST_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_record(t: torch.Tensor) -> dict:
    """Expected values of one tensor, computed by torch/numpy only."""
    c = t.detach().contiguous()
    raw = (c.view(torch.int16) if c.dtype == torch.bfloat16 else c).numpy().tobytes()
    assert sys.byteorder == "little"
    flat = c.reshape(-1)[:4]
    first = [float(x) for x in flat.to(torch.float64).tolist()]
    return {"dtype": ST_DTYPES[c.dtype], "shape": list(c.shape), "bytes": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest(), "first": first}


def walk(obj, prefix: str, tensors: dict, values: dict) -> None:
    """Flattens a loaded object: dict keys and list indices joined with '.'."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = tensor_record(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            walk(v, f"{prefix}.{k}" if prefix else str(k), tensors, values)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            walk(v, f"{prefix}.{i}" if prefix else str(i), tensors, values)
    else:
        values[prefix] = obj


def torch_expectation(path: Path, fmt: str) -> dict:
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    tensors: dict = {}
    values: dict = {}
    walk(obj, "", tensors, values)
    return {"format": fmt, "tensors": tensors, "values": values}


def st_expectation(path: Path) -> dict:
    from safetensors import safe_open
    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        for k in sorted(f.keys()):
            tensors[k] = tensor_record(f.get_tensor(k))
    return {"format": "safetensors", "metadata": meta, "tensors": tensors}


def st_index_expectation(path: Path) -> dict:
    index = json.loads(path.read_text())
    tensors = {}
    for shard in sorted(set(index["weight_map"].values())):
        sub = st_expectation(path.parent / shard)["tensors"]
        for k, v in sub.items():
            assert index["weight_map"][k] == shard
            tensors[k] = dict(v, shard=shard)
    return {"format": "safetensors-index", "tensors": dict(sorted(tensors.items()))}


def to_original(tr, seed: int) -> "OrderedDict[str, torch.Tensor]":
    """diffusers PixArtTransformer2DModel -> original PixArt (PixArt.py / PixArtMS.py) layout,
    in the original module registration order (formats/pixart.md §1)."""
    sd = {k: v.detach().clone() for k, v in tr.state_dict().items()}
    cfg = tr.config
    g = torch.Generator("cpu").manual_seed(seed)
    o: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    o["pos_embed"] = tr.pos_embed.pos_embed.detach().clone().float()  # (1, N, inner) sin-cos
    o["x_embedder.proj.weight"] = sd.pop("pos_embed.proj.weight")
    o["x_embedder.proj.bias"] = sd.pop("pos_embed.proj.bias")
    for i, j in ((0, 1), (2, 2)):
        o[f"t_embedder.mlp.{i}.weight"] = sd.pop(f"adaln_single.emb.timestep_embedder.linear_{j}.weight")
        o[f"t_embedder.mlp.{i}.bias"] = sd.pop(f"adaln_single.emb.timestep_embedder.linear_{j}.bias")
    o["t_block.1.weight"] = sd.pop("adaln_single.linear.weight")
    o["t_block.1.bias"] = sd.pop("adaln_single.linear.bias")
    o["y_embedder.y_embedding"] = torch.randn(120, cfg.caption_channels, generator=g) / cfg.caption_channels ** 0.5
    for i in (1, 2):
        o[f"y_embedder.y_proj.fc{i}.weight"] = sd.pop(f"caption_projection.linear_{i}.weight")
        o[f"y_embedder.y_proj.fc{i}.bias"] = sd.pop(f"caption_projection.linear_{i}.bias")
    for n in range(cfg.num_layers):
        b, t = f"blocks.{n}", f"transformer_blocks.{n}"
        o[f"{b}.scale_shift_table"] = sd.pop(f"{t}.scale_shift_table")
        for w in ("weight", "bias"):
            o[f"{b}.attn.qkv.{w}"] = torch.cat([sd.pop(f"{t}.attn1.to_{x}.{w}") for x in "qkv"], 0)
        for w in ("weight", "bias"):
            o[f"{b}.attn.proj.{w}"] = sd.pop(f"{t}.attn1.to_out.0.{w}")
        for w in ("weight", "bias"):
            o[f"{b}.cross_attn.q_linear.{w}"] = sd.pop(f"{t}.attn2.to_q.{w}")
        for w in ("weight", "bias"):
            o[f"{b}.cross_attn.kv_linear.{w}"] = torch.cat([sd.pop(f"{t}.attn2.to_{x}.{w}") for x in "kv"], 0)
        for w in ("weight", "bias"):
            o[f"{b}.cross_attn.proj.{w}"] = sd.pop(f"{t}.attn2.to_out.0.{w}")
        for w in ("weight", "bias"):
            o[f"{b}.mlp.fc1.{w}"] = sd.pop(f"{t}.ff.net.0.proj.{w}")
        for w in ("weight", "bias"):
            o[f"{b}.mlp.fc2.{w}"] = sd.pop(f"{t}.ff.net.2.{w}")
    o["final_layer.scale_shift_table"] = sd.pop("scale_shift_table")
    o["final_layer.linear.weight"] = sd.pop("proj_out.weight")
    o["final_layer.linear.bias"] = sd.pop("proj_out.bias")
    for orig, diff in (("csize_embedder", "resolution_embedder"), ("ar_embedder", "aspect_ratio_embedder")):
        if f"adaln_single.emb.{diff}.linear_1.weight" in sd:
            for i, j in ((0, 1), (2, 2)):
                for w in ("weight", "bias"):
                    o[f"{orig}.mlp.{i}.{w}"] = sd.pop(f"adaln_single.emb.{diff}.linear_{j}.{w}")
    assert not sd, sorted(sd)
    return OrderedDict((k, v.contiguous().clone()) for k, v in o.items())


def diffusers_convert(state_dict: dict, num_layers: int) -> dict:
    """The key mapping of diffusers scripts/convert_pixart_alpha_to_diffusers.py (depth adapted)."""
    sd = dict(state_dict)
    c = {}
    c["pos_embed.proj.weight"] = sd.pop("x_embedder.proj.weight")
    c["pos_embed.proj.bias"] = sd.pop("x_embedder.proj.bias")
    c["caption_projection.linear_1.weight"] = sd.pop("y_embedder.y_proj.fc1.weight")
    c["caption_projection.linear_1.bias"] = sd.pop("y_embedder.y_proj.fc1.bias")
    c["caption_projection.linear_2.weight"] = sd.pop("y_embedder.y_proj.fc2.weight")
    c["caption_projection.linear_2.bias"] = sd.pop("y_embedder.y_proj.fc2.bias")
    c["adaln_single.emb.timestep_embedder.linear_1.weight"] = sd.pop("t_embedder.mlp.0.weight")
    c["adaln_single.emb.timestep_embedder.linear_1.bias"] = sd.pop("t_embedder.mlp.0.bias")
    c["adaln_single.emb.timestep_embedder.linear_2.weight"] = sd.pop("t_embedder.mlp.2.weight")
    c["adaln_single.emb.timestep_embedder.linear_2.bias"] = sd.pop("t_embedder.mlp.2.bias")
    if "csize_embedder.mlp.0.weight" in sd:  # the script's image_size == 1024 branch
        for src, dst in (("csize_embedder", "resolution_embedder"), ("ar_embedder", "aspect_ratio_embedder")):
            for i, j in ((0, 1), (2, 2)):
                c[f"adaln_single.emb.{dst}.linear_{j}.weight"] = sd.pop(f"{src}.mlp.{i}.weight")
                c[f"adaln_single.emb.{dst}.linear_{j}.bias"] = sd.pop(f"{src}.mlp.{i}.bias")
    c["adaln_single.linear.weight"] = sd.pop("t_block.1.weight")
    c["adaln_single.linear.bias"] = sd.pop("t_block.1.bias")
    for d in range(num_layers):
        t, b = f"transformer_blocks.{d}", f"blocks.{d}"
        c[f"{t}.scale_shift_table"] = sd.pop(f"{b}.scale_shift_table")
        q, k, v = torch.chunk(sd.pop(f"{b}.attn.qkv.weight"), 3, dim=0)
        qb, kb, vb = torch.chunk(sd.pop(f"{b}.attn.qkv.bias"), 3, dim=0)
        c[f"{t}.attn1.to_q.weight"], c[f"{t}.attn1.to_q.bias"] = q, qb
        c[f"{t}.attn1.to_k.weight"], c[f"{t}.attn1.to_k.bias"] = k, kb
        c[f"{t}.attn1.to_v.weight"], c[f"{t}.attn1.to_v.bias"] = v, vb
        c[f"{t}.attn1.to_out.0.weight"] = sd.pop(f"{b}.attn.proj.weight")
        c[f"{t}.attn1.to_out.0.bias"] = sd.pop(f"{b}.attn.proj.bias")
        c[f"{t}.ff.net.0.proj.weight"] = sd.pop(f"{b}.mlp.fc1.weight")
        c[f"{t}.ff.net.0.proj.bias"] = sd.pop(f"{b}.mlp.fc1.bias")
        c[f"{t}.ff.net.2.weight"] = sd.pop(f"{b}.mlp.fc2.weight")
        c[f"{t}.ff.net.2.bias"] = sd.pop(f"{b}.mlp.fc2.bias")
        c[f"{t}.attn2.to_q.weight"] = sd.pop(f"{b}.cross_attn.q_linear.weight")
        c[f"{t}.attn2.to_q.bias"] = sd.pop(f"{b}.cross_attn.q_linear.bias")
        k, v = torch.chunk(sd.pop(f"{b}.cross_attn.kv_linear.weight"), 2, dim=0)
        kb, vb = torch.chunk(sd.pop(f"{b}.cross_attn.kv_linear.bias"), 2, dim=0)
        c[f"{t}.attn2.to_k.weight"], c[f"{t}.attn2.to_k.bias"] = k, kb
        c[f"{t}.attn2.to_v.weight"], c[f"{t}.attn2.to_v.bias"] = v, vb
        c[f"{t}.attn2.to_out.0.weight"] = sd.pop(f"{b}.cross_attn.proj.weight")
        c[f"{t}.attn2.to_out.0.bias"] = sd.pop(f"{b}.cross_attn.proj.bias")
    c["proj_out.weight"] = sd.pop("final_layer.linear.weight")
    c["proj_out.bias"] = sd.pop("final_layer.linear.bias")
    c["scale_shift_table"] = sd.pop("final_layer.scale_shift_table")
    sd.pop("pos_embed")
    sd.pop("y_embedder.y_embedding")
    assert not sd, sorted(sd)
    return c


def convert_with_diffusers(pth: Path, key: str, like, out_dir: Path) -> None:
    """Converts an original .pth like diffusers' script and saves a diffusers transformer folder."""
    from diffusers import PixArtTransformer2DModel
    allsd = torch.load(str(pth), map_location="cpu", weights_only=True)
    conv = diffusers_convert(allsd.pop(key), like.config.num_layers)
    model = PixArtTransformer2DModel.from_config(like.config)
    model.load_state_dict(conv, strict=True)
    model.eval()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    # diffusers records the source folder as `_name_or_path`: keep it relative to the repository
    config = out_dir / "config.json"
    config.write_text(config.read_text().replace(str(ROOT) + "/", ""))
    # The converted model must reproduce the source model's output.
    if key == "state_dict":
        check_same_output(like, model)


def check_same_output(a, b) -> None:
    g = torch.Generator("cpu").manual_seed(5)
    x = torch.randn(2, 4, 8, 8, generator=g)
    enc = torch.randn(2, 7, a.config.caption_channels, generator=g)
    t = torch.tensor([999, 500])
    cond = {"resolution": None, "aspect_ratio": None}
    if a.config.sample_size == 128:
        cond = {"resolution": torch.tensor([[16.0, 16.0]] * 2), "aspect_ratio": torch.tensor([[1.0]] * 2)}
    with torch.no_grad():
        ya = a(x, encoder_hidden_states=enc, timestep=t, added_cond_kwargs=cond).sample
        yb = b(x, encoder_hidden_states=enc, timestep=t, added_cond_kwargs=cond).sample
    assert torch.equal(ya, yb)


def views_dict(seed: int) -> dict:
    g = torch.Generator("cpu").manual_seed(seed)
    base = torch.randn(4, 6, generator=g)
    flat = torch.randn(40, generator=g)
    shared = torch.arange(10, dtype=torch.float32) * 0.5
    return {
        "contiguous": torch.randn(2, 3, generator=g),
        "transposed": base.t(),                       # non-contiguous (stride (1, 6))
        "strided": base[:, ::2],                      # stride (6, 2)
        "offset": flat[7:19].view(3, 4),              # storage offset 7
        "shared_a": shared,                           # two tensors sharing one storage
        "shared_b": shared[2:8].view(2, 3),
        "f16": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(2, 2, generator=g).bfloat16(),
        "int64": torch.tensor([-3, 0, 7, 2 ** 40], dtype=torch.int64),
        "int32": torch.tensor([[1, -2], [3, -4]], dtype=torch.int32),
        "uint8": torch.tensor([0, 7, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "nested": {"inner": {"w": torch.randn(3, 2, generator=g)},
                   "list": [torch.randn(2, generator=g), "text", 7, torch.tensor([1, 2])],
                   "tuple": (1.5, torch.ones(1, dtype=torch.float64))},
        "name": "views",
        "lr": 0.125,
        "step": 12,
        "flag": True,
        "none": None,
    }


def rewrite_deflated(src: Path, dst: Path) -> None:
    """Re-compresses every record of a torch zip with ZIP_DEFLATED (order and names kept)."""
    out = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zout.writestr(zi, zin.read(info.filename), compresslevel=6)
    dst.write_bytes(out.getvalue())


def make_big_endian(src: Path, dst: Path) -> bool:
    """A torch zip with byteorder 'big' and byte-swapped storages (torch cannot write one on a
    little-endian machine; torch.load must read it back identically or the file is dropped)."""
    out = io.BytesIO()
    obj = torch.load(str(src), map_location="cpu", weights_only=True)
    sizes = {}
    # Every storage in the source holds float32 only (checked below), so records swap by 4 bytes.
    assert all(v.dtype == torch.float32 for v in obj.values())
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            name = info.filename.split("/", 1)[1]
            if name == "byteorder":
                data = b"big"
            elif name.startswith("data/"):
                data = np.frombuffer(data, dtype="<f4").astype(">f4").tobytes()
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zout.writestr(zi, data)
    dst.write_bytes(out.getvalue())
    back = torch.load(str(dst), map_location="cpu", weights_only=True)
    ok = back.keys() == obj.keys() and all(torch.equal(back[k], obj[k]) for k in obj)
    if not ok:
        dst.unlink()
    return ok


def legacy_save(obj, path: Path) -> None:
    """torch.save(obj, path, _use_new_zipfile_serialization=False), except that storage keys
    (which torch takes from memory addresses) are numbered in first-use order so that the file
    is reproducible. torch's own legacy writer is used otherwise."""
    import pickle
    ser = torch.serialization
    src = inspect.getsource(ser._legacy_save)
    assert src.count("str(storage._cdata)") >= 1
    keys: dict = {}
    ns = dict(ser.__dict__)
    ns["_fixtures_key"] = lambda cdata: keys.setdefault(cdata, str(len(keys)))
    exec(src.replace("str(storage._cdata)", "_fixtures_key(storage._cdata)"), ns)
    with open(path, "wb") as f:
        ns["_legacy_save"](obj, f, pickle, ser.DEFAULT_PROTOCOL)
    # Same bytes as torch.save apart from the keys: torch must read it back identically.
    back = torch.load(str(path), map_location="cpu", weights_only=True)
    a, b = {}, {}
    walk(obj, "", a, {})
    walk(back, "", b, {})
    assert a == b and len(keys) > 0


def stage_readers() -> None:
    from diffusers import PixArtTransformer2DModel
    from safetensors.torch import save_file
    if READERS.exists():
        shutil.rmtree(READERS)
    READERS.mkdir(parents=True)
    expected: dict = {}
    tr512 = PixArtTransformer2DModel.from_pretrained(str(FIX / "tiny-pixart-512" / "transformer")).eval()
    trms = PixArtTransformer2DModel.from_pretrained(str(FIX / "tiny-pixart-1024ms" / "transformer")).eval()

    # Original PixArt layout, wrapped like a training checkpoint.
    orig = to_original(tr512, 301)
    torch.save({"state_dict": orig, "epoch": 3}, READERS / "pixart-original.pth")
    expected["pixart-original.pth"] = torch_expectation(READERS / "pixart-original.pth", "torch-zip")

    orig_ms = to_original(trms, 302)
    g = torch.Generator("cpu").manual_seed(303)
    ema = OrderedDict()
    for k, v in orig_ms.items():
        # Buffers (pos_embed, y_embedding) are the same tensors in both dicts (shared storage).
        ema[k] = v if k in ("pos_embed", "y_embedder.y_embedding") else (
            v + 1e-3 * torch.randn(v.shape, generator=g)).contiguous()
    torch.save({"state_dict": orig_ms, "state_dict_ema": ema, "epoch": 3, "step": 1200},
               READERS / "pixart-original-ms.pth")
    expected["pixart-original-ms.pth"] = torch_expectation(READERS / "pixart-original-ms.pth", "torch-zip")

    # Official-style diffusers conversions of those files.
    convert_with_diffusers(READERS / "pixart-original.pth", "state_dict", tr512, READERS / "diffusers-conversion")
    convert_with_diffusers(READERS / "pixart-original-ms.pth", "state_dict", trms, READERS / "diffusers-conversion-ms")
    convert_with_diffusers(READERS / "pixart-original-ms.pth", "state_dict_ema", trms,
                           READERS / "diffusers-conversion-ms-ema")
    for d in ("diffusers-conversion", "diffusers-conversion-ms", "diffusers-conversion-ms-ema"):
        rel = f"{d}/diffusion_pytorch_model.safetensors"
        expected[rel] = st_expectation(READERS / rel)

    # Casts of the 512 transformer.
    sd512 = {k: v.detach().contiguous() for k, v in sorted(tr512.state_dict().items())}
    save_file({k: v.half() for k, v in sd512.items()}, str(READERS / "transformer-f16.safetensors"),
              metadata={"format": "pt"})
    save_file({k: v.bfloat16() for k, v in sd512.items()}, str(READERS / "transformer-bf16.safetensors"),
              metadata={"format": "pt"})
    torch.save(OrderedDict((k, v.half()) for k, v in sd512.items()), READERS / "transformer-f16.pt")
    expected["transformer-f16.safetensors"] = st_expectation(READERS / "transformer-f16.safetensors")
    expected["transformer-bf16.safetensors"] = st_expectation(READERS / "transformer-bf16.safetensors")
    expected["transformer-f16.pt"] = torch_expectation(READERS / "transformer-f16.pt", "torch-zip")

    # Views, legacy format, deflated records, prefixed archive.
    torch.save(views_dict(401), READERS / "views.pt")
    expected["views.pt"] = torch_expectation(READERS / "views.pt", "torch-zip")
    legacy_save(views_dict(402), READERS / "legacy.pt")
    expected["legacy.pt"] = torch_expectation(READERS / "legacy.pt", "torch-legacy")
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "deflated.pt"  # archive folder name "deflated"
        torch.save(views_dict(403), src)
        rewrite_deflated(src, READERS / "deflated.pt")
    with zipfile.ZipFile(READERS / "deflated.pt") as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    expected["deflated.pt"] = torch_expectation(READERS / "deflated.pt", "torch-zip")
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "prefixed.pt"
        torch.save(views_dict(404), src)
        prefix = random.Random(405).randbytes(100)
        (READERS / "prefixed.pt").write_bytes(prefix + src.read_bytes())
        # torch.load itself refuses a prefixed archive (it checks the magic at offset 0), so the
        # expected values come from the unprefixed source; Python's zipfile must see the same
        # records through the prefix.
        with zipfile.ZipFile(READERS / "prefixed.pt") as zp, zipfile.ZipFile(src) as zs:
            assert zp.infolist()[0].header_offset == 100
            assert [i.filename for i in zp.infolist()] == [i.filename for i in zs.infolist()]
            assert all(zp.read(n) == zs.read(n) for n in zs.namelist())
        expected["prefixed.pt"] = dict(torch_expectation(src, "torch-zip"), prefix_bytes=100)
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "big-endian.pt"
        gg = torch.Generator("cpu").manual_seed(406)
        torch.save({"a": torch.randn(3, 4, generator=gg), "b": torch.randn(5, generator=gg),
                    "c": torch.tensor(1.25)}, src)
        if make_big_endian(src, READERS / "big-endian.pt"):
            expected["big-endian.pt"] = torch_expectation(READERS / "big-endian.pt", "torch-zip")
        else:
            print("big-endian.pt: torch did not read it back identically; skipped")

    # Sharded safetensors (index + 2 shards).
    sh = READERS / "sharded"
    sh.mkdir()
    gg = torch.Generator("cpu").manual_seed(407)
    shards = {
        "model-00001-of-00002.safetensors": {
            "embed.weight": torch.randn(10, 4, generator=gg),
            "layers.0.weight": torch.randn(4, 4, generator=gg).half(),
            "layers.0.bias": torch.randn(4, generator=gg).bfloat16()},
        "model-00002-of-00002.safetensors": {
            "layers.1.weight": torch.randn(4, 4, generator=gg),
            "positions": torch.arange(6, dtype=torch.int64),
            "mask": torch.tensor([True, False, True])},
    }
    wm, total = {}, 0
    for fname, tensors in shards.items():
        save_file(tensors, str(sh / fname), metadata={"format": "pt"})
        for k, v in tensors.items():
            wm[k] = fname
            total += v.numel() * v.element_size()
    (sh / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))}, indent=2) + "\n")
    expected["sharded/model.safetensors.index.json"] = st_index_expectation(sh / "model.safetensors.index.json")

    # The tiny pipelines' own files (paths relative to fixtures/readers/).
    for name in PIPELINES:
        rel = f"../{name}/transformer/diffusion_pytorch_model.safetensors"
        expected[rel] = st_expectation(READERS / rel)
        rel = f"../{name}/text_encoder/model.safetensors.index.json"
        expected[rel] = st_index_expectation(READERS / rel)

    doc = {
        "generator": f"scripts/make_fixtures.py with torch {torch.__version__.split('+')[0]}, "
                     f"safetensors {__import__('safetensors').__version__}",
        "naming": "torch files: dict keys and list/tuple indices joined with '.'; safetensors: tensor names",
        "sha256": "of the tensor's contiguous row-major little-endian bytes",
        "files": expected,
    }
    # One line per tensor keeps the file small and diffable.
    lines = ["{", f' "generator": {json.dumps(doc["generator"])},', f' "naming": {json.dumps(doc["naming"])},',
             f' "sha256": {json.dumps(doc["sha256"])},', ' "files": {']
    for fi, (fname, entry) in enumerate(expected.items()):
        lines.append(f"  {json.dumps(fname)}: {{")
        head = {k: v for k, v in entry.items() if k != "tensors"}
        for k, v in head.items():
            lines.append(f"   {json.dumps(k)}: {json.dumps(v)},")
        lines.append('   "tensors": {')
        items = list(entry["tensors"].items())
        for ti, (tname, rec) in enumerate(items):
            lines.append(f"    {json.dumps(tname)}: {json.dumps(rec)}" + ("," if ti + 1 < len(items) else ""))
        lines.append("   }")
        lines.append("  }" + ("," if fi + 1 < len(expected) else ""))
    lines += [" }", "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(json.dumps(doc))
    (READERS / "expected.json").write_text(text)


# --------------------------------------------------------------------------------------------
# Whole-pipeline reference bundles (scripts/make_reference.py does the work)
# --------------------------------------------------------------------------------------------

REFERENCE_CASES = {
    "tiny-pixart-512": [
        {"name": "cactus-dpm", "prompt": "A small cactus with a happy face in the Sahara desert.",
         "seed": 0, "steps": 20, "guidance_scale": 4.5, "height": 16, "width": 16,
         "scheduler": "dpm++2m"},
        {"name": "castle-negative", "prompt": "A majestic castle at sunset, oil painting",
         "negative_prompt": "blurry, dark, low quality", "seed": 1, "steps": 20,
         "guidance_scale": 4.5, "height": 32, "width": 32, "scheduler": "dpm++2m"},
        {"name": "fox-ddim-nocfg", "prompt": "a red fox in a snowy forest", "seed": 2,
         "steps": 10, "guidance_scale": 1.0, "height": 16, "width": 16, "scheduler": "ddim"},
        {"name": "robot-euler", "prompt": "A cute robot drinking a cup of coffee, digital art",
         "seed": 3, "steps": 10, "guidance_scale": 3.0, "height": 32, "width": 32,
         "scheduler": "euler"},
    ],
    "tiny-pixart-1024ms": [
        {"name": "astronaut-square", "prompt": "an astronaut riding a horse on the moon",
         "seed": 0, "steps": 20, "guidance_scale": 4.5, "height": 32, "width": 32,
         "scheduler": "dpm++2m"},
        {"name": "lake-wide-negative", "prompt": "A peaceful mountain lake, watercolor, soft light",
         "negative_prompt": "ugly, text", "seed": 1, "steps": 20, "guidance_scale": 4.5,
         "height": 32, "width": 48, "scheduler": "dpm++2m"},
        {"name": "owl-tall-ddim-nocfg", "prompt": "a glowing owl under the stars", "seed": 2,
         "steps": 10, "guidance_scale": 1.0, "height": 48, "width": 32, "scheduler": "ddim"},
        {"name": "garden-euler", "prompt": "A colorful garden in the rain, 8k, highly detailed",
         "seed": 3, "steps": 10, "guidance_scale": 3.0, "height": 32, "width": 32,
         "scheduler": "euler"},
    ],
}


def stage_reference() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_reference
    for name, cases in REFERENCE_CASES.items():
        out = FIX / ("reference-" + name.replace("tiny-pixart-", ""))
        make_reference.make_bundle(FIX / name, cases, out, model_name=name)


# Fixture folders written by their own scripts, in the order they run (after the stages above).
SCRIPT_STAGES = {
    "dit": "make_dit_reference.py",        # reads tiny-pixart-512/, tiny-pixart-1024ms/
    "text": "make_text_reference.py",      # reads tiny-pixart-512/
    "captions": "make_caption_reference.py",  # reads tiny-pixart-512/tokenizer/
    "vae": "make_vae_reference.py",        # reads tiny-pixart-512/vae/
    "vaetiled": "make_vae_tiling_reference.py",  # reads tiny-pixart-512/vae/
    "foreign": "make_foreign_gguf.py",     # reads readers/
    "store": "make_store_fixture.py",
    "quant": "make_quant_vectors.py",
    "image": "make_metric_reference.py",
    "img2img": "make_img2img_reference.py",  # reads tiny-pixart-512/
    "vaetiledenc": "make_vae_tiled_encode_reference.py",  # reads tiny-pixart-512/; tiled encode, tiled img2img
    "fewstep": "make_fewstep_reference.py",  # reads tiny-pixart-512/; LCM and DDPM (DMD) references
    "sigma": "make_sigma_reference.py",    # reads tiny-pixart-512/tokenizer/; PixArt-Σ pipelines and bundles
    "demo": "make_demo_reference.py",      # reads demo-pixart/ (scripts/train_demo.py)
}


def script_stage(script: str):
    def run() -> None:
        subprocess.run([sys.executable, str(ROOT / "scripts" / script)], cwd=ROOT, check=True)
    return run


STAGES = {"pipelines": stage_pipelines, "readers": stage_readers, "reference": stage_reference,
          **{name: script_stage(script) for name, script in SCRIPT_STAGES.items()}}


def main(argv: list[str]) -> None:
    names = argv or list(STAGES)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        sys.exit(f"make_fixtures.py: unknown stage {', '.join(unknown)} (stages: {' '.join(STAGES)})")
    for n in names:
        t0 = time.time()
        STAGES[n]()
        print(f"stage {n}: {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
