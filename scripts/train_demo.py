#!/usr/bin/env python3
"""Trains the bundled demo model: a tiny PixArt-α that draws coloured shapes on coloured backgrounds.

    venv/bin/python scripts/train_demo.py                       # writes fixtures/demo-pixart/
    nice -n 19 venv/bin/python scripts/train_demo.py --pause-file /tmp/lock   # pauses while it exists

Everything runs on the CPU with fixed seeds, torch.use_deterministic_algorithms(True) and one
torch thread by default (--threads; the results depend on it; on a 2-core machine shared with
other work, two torch threads were several times slower than one); the data set is drawn by numpy
in this thread:
  1. a synthetic data set of 64x64 images: one shape (circle, square, triangle) of one of six
     colours (COLOURS: red, green, blue, yellow, white, black) at 3 sizes and 9 positions on a
     background of another colour (90 combinations x 27 layouts = 2430 images), with captions
     such as "a red circle on a blue background" in five phrasings (PHRASINGS);
  2. a sentencepiece unigram tokenizer trained on the captions (T5 conventions: pad 0, eos 1,
     unk 2, no bos, nmt_nfkc), loaded as transformers' T5Tokenizer (legacy, extra_ids 0);
  3. a small random T5EncoderModel (2 layers, d_model 64), frozen (as T5 is in PixArt), whose
     relative attention bias is drawn with a large std (make_text_encoder says why);
  4. an AutoencoderKL with latent factor 8 (blocks 16/32/64/64, 4 latent channels, norm groups 8),
     trained on the images (L1 + MSE reconstruction, small KL; 32x32 crops, then whole images);
     its scaling_factor is 1 / std of the data set's latents;
  5. a PixArtTransformer2DModel (4 blocks, 4 heads x 32, sample_size 8, patch 2, ada_norm_single,
     out_channels 8 as PixArt's, caption projection from T5's width) trained with PixArt's
     objective: epsilon prediction (MSE on the first 4 output channels) on the DDPM schedule of
     PixArt's scheduler config (linear betas 0.0001 -> 0.02, 1000 steps), 10 % of captions
     replaced by the empty prompt (so classifier-free guidance works); the EMA of the weights
     (decay 0.999) is saved;
  6. a diffusers PixArtAlphaPipeline folder (DPMSolverMultistepScheduler configured as PixArt's,
     weights float16, 4.9 MB), reloaded with PixArtAlphaPipeline.from_pretrained and run on the
     36 prompts of SEMANTICS; with --check-dir their images are written there as check.png with
     the verdicts of score_image in check.json.

With the defaults the run took about 41 minutes of one core here (VAE 14, transformer 26, the
rest 1); a rerun gave the same bytes (fixtures/README.md). Settings were tuned on shorter runs:
see the options. --cache DIR keeps the trained VAE and latents for trials of the transformer.

The semantic score (border colour = background, foreground colour = shape colour, foreground mask
closest to the prompted shape's drawn mask) is the check Tests/PixconvCLITests/DemoSemanticTests
makes on pixconv's images; `score_image` here is the same rule.

Nothing here uses pixconv code.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

IMAGE = 64
COLOURS = {  # name: sRGB
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (240, 215, 40), "white": (240, 240, 240), "black": (25, 25, 25),
}
SHAPES = ("circle", "square", "triangle")
# "r" of a shape: circle radius; square and triangle have the circle's area.
RADII = (9.0, 11.5, 14.0)
OFFSETS = (-6.0, 0.0, 6.0)  # centre (of mass) x and y, relative to the image centre
LAYOUTS = [(r, dx, dy) for r in RADII for dy in OFFSETS for dx in OFFSETS]
PHRASINGS = (
    "a {c} {s} on a {b} background",
    "a {c} {s} against a {b} background",
    "{c} {s} on a {b} background",
    "a {b} background with a {c} {s}",
    "a {c} {s} on {b}",
)


def coverage(shape: str, cx: float, cy: float, r: float, size: int = IMAGE, ss: int = 4) -> np.ndarray:
    """Anti-aliased coverage (size, size) in [0, 1] of a shape centred (centroid) at (cx, cy):
    the fraction of ss x ss subsamples of each pixel inside it. Pixel (i, j) spans [j, j+1) x [i, i+1)."""
    t = (np.arange(size * ss, dtype=np.float64) + 0.5) / ss
    x = t[None, :]
    y = t[:, None]
    if shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif shape == "square":
        h = r * math.sqrt(math.pi) / 2
        inside = (np.abs(x - cx) <= h) & (np.abs(y - cy) <= h)
    elif shape == "triangle":  # equilateral, pointing up, centroid at (cx, cy)
        rr = r * math.sqrt(4 * math.pi / (3 * math.sqrt(3)))  # circumradius for the circle's area
        v = [(cx + rr * math.sin(a), cy - rr * math.cos(a)) for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)]
        inside = np.ones((size * ss, size * ss), dtype=bool)
        for k in range(3):
            (x0, y0), (x1, y1) = v[k], v[(k + 1) % 3]
            inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    else:
        raise ValueError(shape)
    return inside.reshape(size, ss, size, ss).mean(axis=(1, 3))


def draw(shape: str, colour: str, background: str, cx: float, cy: float, r: float) -> np.ndarray:
    a = coverage(shape, cx, cy, r)[..., None]
    fg = np.array(COLOURS[colour], dtype=np.float64)
    bg = np.array(COLOURS[background], dtype=np.float64)
    return np.round(bg * (1 - a) + fg * a).astype(np.uint8)


def combos() -> list[tuple[str, str, str]]:
    return [(s, c, b) for s in SHAPES for c in COLOURS for b in COLOURS if b != c]


def caption(shape: str, colour: str, background: str, phrasing: int) -> str:
    return PHRASINGS[phrasing].format(c=colour, s=shape, b=background)


def make_dataset():
    """Every combination in every layout: images (N, 64, 64, 3) uint8 and their combo indices,
    drawn by numpy in this thread (N = 90 combinations x 27 layouts = 2430)."""
    cs = combos()
    images = np.empty((len(cs) * len(LAYOUTS), IMAGE, IMAGE, 3), dtype=np.uint8)
    idx = np.repeat(np.arange(len(cs)), len(LAYOUTS))
    for i, k in enumerate(idx):
        s, c, b = cs[k]
        r, dx, dy = LAYOUTS[i % len(LAYOUTS)]
        images[i] = draw(s, c, b, IMAGE / 2 + dx, IMAGE / 2 + dy, r)
    return images, idx


# ----------------------------------------------------------------------------------------------
# Semantic score (the rule the Swift test applies to pixconv's images)
# ----------------------------------------------------------------------------------------------

def nearest_colour(rgb) -> str:
    rgb = np.asarray(rgb, dtype=np.float64)
    return min(COLOURS, key=lambda k: float(((np.array(COLOURS[k]) - rgb) ** 2).sum()))


def score_image(img: np.ndarray, shape: str, colour: str, background: str) -> dict:
    """img (H, W, 3) uint8. Border: the 2-pixel frame's per-channel median, nearest palette colour.
    Foreground: pixels farther than 80 (RGB distance) from the border colour; its colour is the
    per-channel median. Shape: the foreground mask is compared (IoU) with each shape drawn with the
    mask's area and centroid; the best one is the drawn shape."""
    img = img.astype(np.float64)
    h, w, _ = img.shape
    frame = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3),
                            img[2:-2, :2].reshape(-1, 3), img[2:-2, -2:].reshape(-1, 3)])
    border = np.median(frame, axis=0)
    dist = np.sqrt(((img - border) ** 2).sum(-1))
    mask = dist > 80
    out = {"background": nearest_colour(border), "colour": None, "shape": None, "iou": {}}
    area = int(mask.sum())
    if area >= 16:
        out["colour"] = nearest_colour(np.median(img[mask], axis=0))
        ys, xs = np.nonzero(mask)
        cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
        r = math.sqrt(area / math.pi)
        for s in SHAPES:
            m = coverage(s, cx, cy, r, size=h, ss=1) >= 0.5
            out["iou"][s] = float((m & mask).sum() / max((m | mask).sum(), 1))
        out["shape"] = max(SHAPES, key=lambda s: out["iou"][s])
    out["pass"] = (out["background"] == background and out["colour"] == colour and out["shape"] == shape)
    return out


SEMANTICS = [  # (shape, colour, background): 36 prompts, every shape x colour twice
    (s, c, b) for s in SHAPES for i, c in enumerate(COLOURS)
    for b in (list(COLOURS)[(i + 1) % 6], list(COLOURS)[(i + 3) % 6])
]


# ----------------------------------------------------------------------------------------------
# Pause while a file exists (shared machine)
# ----------------------------------------------------------------------------------------------

class Clock:
    def __init__(self, pause_file: str | None):
        self.pause_file = pause_file
        self.start = time.time()
        self.cpu_start = time.process_time()
        self.paused = 0.0

    def check(self) -> None:
        if not self.pause_file or not os.path.exists(self.pause_file):
            return
        t = time.time()
        print(f"  paused: {self.pause_file} exists", flush=True)
        while os.path.exists(self.pause_file):
            time.sleep(10)
        self.paused += time.time() - t
        print(f"  resumed after {time.time() - t:.0f} s", flush=True)

    def elapsed(self) -> float:
        return time.time() - self.start - self.paused

    def cpu(self) -> float:
        """CPU seconds of this process (all threads): / threads ≈ wall time on idle cores."""
        return time.process_time() - self.cpu_start


# ----------------------------------------------------------------------------------------------
# Tokenizer and text encoder
# ----------------------------------------------------------------------------------------------

def tokenizer_corpus() -> list[str]:
    lines = [caption(s, c, b, p) for (s, c, b) in combos() for p in range(len(PHRASINGS))]
    lines.append("abcdefghijklmnopqrstuvwxyz 0123456789 , .")  # every lowercase letter has a piece
    return lines


def train_spiece(vocab_size: int) -> bytes:
    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tokenizer_corpus()), model_writer=buf, model_type="unigram",
        vocab_size=vocab_size, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        normalization_rule_name="nmt_nfkc", character_coverage=1.0, num_threads=1,
        input_sentence_size=0, shuffle_input_sentence=False, hard_vocab_limit=False, minloglevel=2)
    return buf.getvalue()


def load_tokenizer(folder: Path, spiece: bytes):
    import sentencepiece as spm
    from transformers import T5Tokenizer
    tok = T5Tokenizer.from_pretrained(str(folder), extra_ids=0, legacy=True)
    sp = spm.SentencePieceProcessor(model_proto=spiece)
    assert len(tok) == sp.get_piece_size(), (len(tok), sp.get_piece_size())
    for text in tokenizer_corpus()[:20] + ["a purple hexagon on a grey background", ""]:
        assert tok(text).input_ids == sp.encode(text) + [1], text
    return tok


def make_text_encoder(vocab_size: int, seed: int, d_model: int, layers: int, bias_std: float):
    """A random T5 encoder, frozen. Its relative attention bias (layer 0's, shared by every layer)
    is drawn with std `bias_std` instead of T5's d_model^-0.5: with T5's own initialisation the
    attention of a random encoder is nearly uniform, so a colour word's state hardly depends on
    its neighbours and "a red circle on a blue background" encodes like "a blue circle on a red
    background" (1 - cos of the colour word's states 0.003); peaked attention at random offsets
    makes the states depend on the words around them (1 - cos 0.3-0.7)."""
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=vocab_size, d_model=d_model, d_kv=d_model // 4, num_heads=4, num_layers=layers,
        d_ff=2 * d_model, feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
        relative_attention_max_distance=128, layer_norm_epsilon=1e-6, dropout_rate=0.0,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False)
    m = T5EncoderModel(cfg).eval()
    w = m.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
    with torch.no_grad():
        w.copy_(torch.randn(w.shape, generator=torch.Generator("cpu").manual_seed(seed + 1)) * bias_std)
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def encode_texts(tok, te, texts: list[str], max_length: int):
    """Prompt embeddings as PixArtAlphaPipeline.encode_prompt computes them (lower/strip, padding
    to max_length, attention mask), for a shorter max_length: T5 masks the pads, so the first
    tokens' states do not depend on it."""
    t = tok([x.lower().strip() for x in texts], padding="max_length", max_length=max_length,
            truncation=True, add_special_tokens=True, return_tensors="pt")
    with torch.no_grad():
        emb = te(t.input_ids, attention_mask=t.attention_mask)[0]
    return emb, t.attention_mask


# ----------------------------------------------------------------------------------------------
# VAE
# ----------------------------------------------------------------------------------------------

def make_vae(seed: int, channels: tuple[int, ...], groups: int):
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    n = len(channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=1, latent_channels=4, norm_num_groups=groups, sample_size=IMAGE,
        scaling_factor=1.0)


def to_pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_vae(vae, images: np.ndarray, steps: int, full_steps: int, crop: int, batch: int, lr: float, kl: float,
              seed: int, clock: Clock):
    """steps - full_steps steps on crop x crop windows (at multiples of 8 px, so the latent grid
    is the full image's), then full_steps on whole images: the convolutions see the same local
    content for a quarter of the work."""
    g = torch.Generator("cpu").manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps))))
    vae.train()
    n = len(images)
    t0 = clock.elapsed()
    for step in range(steps):
        clock.check()
        idx = torch.randint(0, n, (batch,), generator=g)
        x = to_pixels(images[idx.numpy()])
        if step < steps - full_steps and crop < IMAGE:
            oy, ox = (torch.randint(0, (IMAGE - crop) // 8 + 1, (2,), generator=g) * 8).tolist()
            x = x[:, :, oy:oy + crop, ox:ox + crop].contiguous()
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        y = vae.decode(z).sample
        rec = (y - x).abs().mean() + ((y - x) ** 2).mean()
        kld = post.kl().mean() / (x[0].numel())
        loss = rec + kl * kld
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"  vae {step:5d}/{steps} rec {rec.item():.4f} kl {kld.item():.3f} "
                  f"({clock.elapsed() - t0:.0f} s, {clock.cpu():.0f} CPU s)", flush=True)
    vae.eval()
    return vae


def encode_latents(vae, images: np.ndarray, clock: Clock, batch: int = 256) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            clock.check()
            out.append(vae.encode(to_pixels(images[i:i + batch])).latent_dist.mean)
    return torch.cat(out)


# ----------------------------------------------------------------------------------------------
# Transformer
# ----------------------------------------------------------------------------------------------

def make_transformer(seed: int, caption_channels: int, heads: int, head_dim: int, layers: int):
    from diffusers import PixArtTransformer2DModel
    torch.manual_seed(seed)
    return PixArtTransformer2DModel(
        sample_size=IMAGE // 8, num_layers=layers, patch_size=2, attention_head_dim=head_dim,
        num_attention_heads=heads, caption_channels=caption_channels, in_channels=4,
        cross_attention_dim=heads * head_dim, out_channels=8, attention_bias=True,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6)


def pixart_scheduler():
    from diffusers import DPMSolverMultistepScheduler
    return DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        prediction_type="epsilon", algorithm_type="dpmsolver++", solver_order=2,
        solver_type="midpoint", lower_order_final=True, timestep_spacing="linspace", steps_offset=0)


def train_transformer(model, latents, combo_idx, cap_emb, cap_mask, null_emb, null_mask, steps: int,
                      batch: int, lr: float, drop: float, ema_decay: float, seed: int, clock: Clock):
    """latents (N, 4, 8, 8) already scaled; cap_emb (C, P, L, D): combo x phrasing."""
    import copy
    from diffusers import DDPMScheduler
    ddpm = DDPMScheduler(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear")
    abar = ddpm.alphas_cumprod.float()
    g = torch.Generator("cpu").manual_seed(seed)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 200) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / steps))))
    n = len(latents)
    n_phr = cap_emb.shape[1]
    cond = {"resolution": None, "aspect_ratio": None}
    model.train()
    t0 = clock.elapsed()
    avg = None
    for step in range(steps):
        clock.check()
        idx = torch.randint(0, n, (batch,), generator=g)
        phr = torch.randint(0, n_phr, (batch,), generator=g)
        x0 = latents[idx]
        emb = cap_emb[combo_idx[idx], phr]
        mask = cap_mask[combo_idx[idx], phr]
        dropped = torch.rand(batch, generator=g) < drop
        emb = torch.where(dropped[:, None, None], null_emb.expand_as(emb), emb)
        mask = torch.where(dropped[:, None], null_mask.expand_as(mask), mask)
        t = torch.randint(0, 1000, (batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        out = model(xt, encoder_hidden_states=emb, encoder_attention_mask=mask, timestep=t,
                    added_cond_kwargs=cond).sample
        loss = F.mse_loss(out[:, :4], eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            print(f"  dit {step:5d}/{steps} loss {avg:.4f} ({clock.elapsed() - t0:.0f} s, {clock.cpu():.0f} CPU s)", flush=True)
    return ema


# ----------------------------------------------------------------------------------------------
# Save and check
# ----------------------------------------------------------------------------------------------

def save_pipeline(out: Path, tok_dir: Path, spiece: bytes, tok, te, vae, tr, dtype: torch.dtype) -> None:
    from diffusers import PixArtAlphaPipeline
    if out.exists():
        shutil.rmtree(out)
    pipe = PixArtAlphaPipeline(tokenizer=tok, text_encoder=te, vae=vae, transformer=tr,
                               scheduler=pixart_scheduler())
    pipe.to(dtype)
    pipe.save_pretrained(str(out), safe_serialization=True)
    # As the real PixArt repositories (and fixtures/tiny-pixart-512): spiece.model, no tokenizer.json.
    (out / "tokenizer" / "spiece.model").write_bytes(spiece)
    tj = out / "tokenizer" / "tokenizer.json"
    if tj.exists():
        tj.unlink()
    for cfg in out.rglob("*.json"):  # no machine path in the committed configs
        text = cfg.read_text()
        for p in (str(tok_dir) + "/", str(tok_dir), str(ROOT) + "/"):
            text = text.replace(p, "")
        text = re.sub(r'\n  "_name_or_path": "/[^"]*",', "", text)  # a model reloaded from --cache
        cfg.write_text(text)


def generate(pipe, prompts: list[str], seed: int, steps: int = 20, guidance: float = 4.5) -> list[np.ndarray]:
    images = []
    for i, p in enumerate(prompts):
        img = pipe(p, num_inference_steps=steps, guidance_scale=guidance, height=IMAGE, width=IMAGE,
                   generator=torch.Generator("cpu").manual_seed(seed + i), clean_caption=False,
                   use_resolution_binning=False, output_type="np").images[0]
        images.append((img * 255).round().astype(np.uint8))
    return images


def tile(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    rows = (len(images) + cols - 1) // cols
    h, w, _ = images[0].shape
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        sheet[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im
    return sheet


def check(out: Path, check_dir: Path | None, seed: int) -> float:
    from diffusers import PixArtAlphaPipeline
    pipe = PixArtAlphaPipeline.from_pretrained(str(out), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    prompts = [caption(s, c, b, 0) for s, c, b in SEMANTICS]
    images = generate(pipe, prompts, seed)
    results = [score_image(im, s, c, b) for im, (s, c, b) in zip(images, SEMANTICS)]
    rate = sum(r["pass"] for r in results) / len(results)
    for (s, c, b), r in zip(SEMANTICS, results):
        if not r["pass"]:
            print(f"  miss: {c} {s} on {b}: got {r['colour']} {r['shape']} on {r['background']}")
    print(f"semantic pass rate (diffusers, f32, 20 steps, guidance 4.5): "
          f"{sum(r['pass'] for r in results)}/{len(results)} = {rate:.0%}")
    if check_dir:
        from PIL import Image
        check_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tile(images, 6)).resize((6 * 66 * 2 + 4, 6 * 66 * 2 + 4), Image.NEAREST).save(check_dir / "check.png")
        (check_dir / "check.json").write_text(json.dumps(
            [dict(prompt=p, **r) for p, r in zip(prompts, results)], indent=1))
    return rate


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "fixtures" / "demo-pixart")
    ap.add_argument("--pause-file", default=None, help="sleep (checking every 10 s) while this file exists")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-steps", type=int, default=4000)
    ap.add_argument("--vae-full-steps", type=int, default=300, help="last VAE steps on whole images")
    ap.add_argument("--vae-crop", type=int, default=32, help="crop size of the other VAE steps")
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-channels", default="16,32,64,64")
    ap.add_argument("--vae-groups", type=int, default=8)
    ap.add_argument("--kl", type=float, default=1e-4)
    ap.add_argument("--t5-dim", type=int, default=64)
    ap.add_argument("--t5-layers", type=int, default=2)
    ap.add_argument("--t5-bias-std", type=float, default=8.0, help="std of T5's random relative attention bias")
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--dit-layers", type=int, default=4)
    ap.add_argument("--dit-heads", type=int, default=4)
    ap.add_argument("--dit-head-dim", type=int, default=32)
    ap.add_argument("--dit-steps", type=int, default=10000)
    ap.add_argument("--dit-batch", type=int, default=64)
    ap.add_argument("--dit-lr", type=float, default=2e-3)
    ap.add_argument("--drop", type=float, default=0.1, help="caption dropout (empty prompt)")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f16", help="weights saved as")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep/reuse the trained VAE and latents here (trials of the transformer)")
    ap.add_argument("--check-dir", type=Path, default=None, help="write the check images here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    clock = Clock(args.pause_file)
    seed = args.seed

    print("1. data set", flush=True)
    images, combo_idx = make_dataset()
    combo_idx = torch.from_numpy(combo_idx)
    print(f"   {len(images)} images, {len(combos())} combinations ({clock.elapsed():.0f} s)")

    print("2. tokenizer, 3. text encoder", flush=True)
    from diffusers import AutoencoderKL
    spiece = train_spiece(args.vocab)
    with tempfile.TemporaryDirectory() as td:
        tok_dir = Path(td)
        (tok_dir / "spiece.model").write_bytes(spiece)
        tok = load_tokenizer(tok_dir, spiece)
        te = make_text_encoder(len(tok), seed + 1, args.t5_dim, args.t5_layers, args.t5_bias_std)
        cs = combos()
        texts = [caption(s, c, b, p) for (s, c, b) in cs for p in range(len(PHRASINGS))]
        max_len = max(len(tok(t).input_ids) for t in texts)
        emb, mask = encode_texts(tok, te, texts, max_len)
        cap_emb = emb.view(len(cs), len(PHRASINGS), max_len, -1)
        cap_mask = mask.view(len(cs), len(PHRASINGS), max_len)
        null_emb, null_mask = encode_texts(tok, te, [""], max_len)
        print(f"   {len(tok)} pieces, captions up to {max_len} tokens ({clock.elapsed():.0f} s)")

        print("4. VAE", flush=True)
        channels = tuple(int(c) for c in args.vae_channels.split(","))
        key = f"vae-{seed}-{args.vae_steps}-{args.vae_full_steps}-{args.vae_crop}-{args.vae_batch}-{args.vae_lr}-{args.vae_channels}-{args.vae_groups}-{args.kl}-{args.threads}"
        cached = args.cache / key if args.cache else None
        if cached and (cached / "latents.pt").exists():
            vae = AutoencoderKL.from_pretrained(str(cached / "vae")).eval()
            latents = torch.load(cached / "latents.pt")
            print(f"   reused {cached}")
        else:
            vae = make_vae(seed + 2, channels, args.vae_groups)
            vae = train_vae(vae, images, args.vae_steps, args.vae_full_steps, args.vae_crop, args.vae_batch, args.vae_lr, args.kl, seed + 3, clock)
            latents = encode_latents(vae, images, clock)
            if cached:
                cached.mkdir(parents=True, exist_ok=True)
                vae.save_pretrained(str(cached / "vae"))
                torch.save(latents, cached / "latents.pt")
        scale = float(1.0 / latents.std())
        vae.register_to_config(scaling_factor=round(scale, 5))
        with torch.no_grad():
            rec = vae.decode(latents[:256]).sample
        err = (rec - to_pixels(images[:256])).abs().mean().item() * 127.5
        print(f"   latents mean {latents.mean():.3f} std {latents.std():.3f}; scaling_factor "
              f"{vae.config.scaling_factor}; reconstruction mean |error| {err:.2f}/255 ({clock.elapsed():.0f} s)")

        print("5. transformer", flush=True)
        tr = make_transformer(seed + 4, args.t5_dim, args.dit_heads, args.dit_head_dim, args.dit_layers)
        nparam = sum(p.numel() for p in tr.parameters())
        print(f"   {nparam / 1e6:.2f} M parameters")
        tr = train_transformer(tr, latents * vae.config.scaling_factor, combo_idx, cap_emb, cap_mask,
                               null_emb, null_mask, args.dit_steps, args.dit_batch, args.dit_lr,
                               args.drop, args.ema, seed + 5, clock)
        train_s = clock.elapsed()
        print(f"   trained in {train_s:.0f} s (excluding {clock.paused:.0f} s paused), {clock.cpu():.0f} CPU s", flush=True)

        print("6. save and check", flush=True)
        dtype = torch.float16 if args.dtype == "f16" else torch.float32
        save_pipeline(args.out, tok_dir, spiece, tok, te, vae, tr, dtype)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"   {args.out}: {size / 1e6:.2f} MB")
    check(args.out, args.check_dir, 1000)
    print(f"total {clock.elapsed():.0f} s wall ({clock.paused:.0f} s paused excluded), {clock.cpu():.0f} CPU s, "
          f"{args.threads} threads")


if __name__ == "__main__":
    main(sys.argv[1:])
