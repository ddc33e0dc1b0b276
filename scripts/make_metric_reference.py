#!/usr/bin/env python3
"""Small PNGs written by PIL and image-metric values from scikit-image, for the PixconvImage tests.

Writes fixtures/image/ (deterministic):
  a.png        40×32 RGB (smooth gradients + seeded noise), with a tEXt chunk ("prompt") and an
               iTXt chunk ("title", UTF-8) written by PIL's PngInfo
  a.rgb        a.png's pixels, raw RGB bytes (row-major, HWC)
  b.png        a.png with seeded noise and a shifted block (no text)
  b.rgb        b.png's pixels
  gray.png     the luminance of a as an 8-bit grayscale PNG; gray.rgb = PIL convert("RGB")
  gray16.png   16-bit grayscale, samples = gray · 257 (so 8-bit scaling gives gray.rgb back)
  rgba.png     a.png with an opaque alpha channel (alpha 255 everywhere)
  expected.json
      psnr_uint8     skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)
      psnr_float     same on a/255, b/255 with data_range=1
      ssim           structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                     use_sample_covariance=False, data_range=255, channel_axis=2)
      ssim_channels  the same per channel (R, G, B) on 2-D slices
      max_abs_diff   max |a − b| over all values
      width, height, text (PIL's view of a.png's text chunks)

Run: venv/bin/python scripts/make_metric_reference.py   (needs scikit-image)
"""
import json
import os

import numpy as np
from PIL import Image, PngImagePlugin
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "image")
W, H = 40, 32
SSIM_ARGS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2024)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    base = np.stack([
        128 + 100 * np.sin(x / 6.0) * np.cos(y / 9.0),
        40 + 5 * x,
        255 * (y / (H - 1)) ** 1.5,
    ], axis=2)
    a = np.clip(np.round(base + rng.normal(0, 6, base.shape)), 0, 255).astype(np.uint8)
    b = a.astype(np.int32) + np.round(rng.normal(0, 9, a.shape)).astype(np.int32)
    b[8:20, 10:26] = a[6:18, 12:28]  # a shifted block: structure changes, not just noise
    b = np.clip(b, 0, 255).astype(np.uint8)

    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", "a red apple on a table")
    info.add_itxt("title", "naïve café ☃ 日本", lang="", tkey="")
    Image.fromarray(a, "RGB").save(os.path.join(OUT, "a.png"), pnginfo=info)
    Image.fromarray(b, "RGB").save(os.path.join(OUT, "b.png"))
    gray = Image.fromarray(a, "RGB").convert("L")
    gray.save(os.path.join(OUT, "gray.png"))
    # 16-bit grayscale with samples k·257, which any 16 → 8-bit scaling maps back to k.
    gray16 = np.asarray(gray).astype(np.uint16) * 257
    Image.fromarray(gray16).save(os.path.join(OUT, "gray16.png"))
    rgba = np.concatenate([a, np.full((H, W, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "rgba.png"))

    # What PIL reads back is what the tests compare against.
    a_read = np.asarray(Image.open(os.path.join(OUT, "a.png")).convert("RGB"))
    b_read = np.asarray(Image.open(os.path.join(OUT, "b.png")).convert("RGB"))
    assert (a_read == a).all() and (b_read == b).all()
    a_read.tofile(os.path.join(OUT, "a.rgb"))
    b_read.tofile(os.path.join(OUT, "b.rgb"))
    np.asarray(Image.open(os.path.join(OUT, "gray.png")).convert("RGB")).tofile(os.path.join(OUT, "gray.rgb"))

    expected = {
        "width": W,
        "height": H,
        "psnr_uint8": float(peak_signal_noise_ratio(a, b, data_range=255)),
        "psnr_float": float(peak_signal_noise_ratio(a / 255.0, b / 255.0, data_range=1)),
        "ssim": float(structural_similarity(a, b, channel_axis=2, **SSIM_ARGS)),
        "ssim_channels": [float(structural_similarity(a[..., c], b[..., c], **SSIM_ARGS)) for c in range(3)],
        "max_abs_diff": int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max()),
        "text": dict(Image.open(os.path.join(OUT, "a.png")).text),
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=2, ensure_ascii=False, sort_keys=True)
    print(json.dumps(expected, ensure_ascii=False))


if __name__ == "__main__":
    main()
