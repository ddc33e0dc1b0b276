#!/usr/bin/env python3
"""Reference values for the DiT runtime helper (torch generator, schedulers, PixArt transformer).

Run with venv/bin/python from the repository root. Deterministic. Writes:
  fixtures/dit/generator.safetensors   torch.randn outputs for several seeds / sizes / draw sequences
  fixtures/dit/scheduler.safetensors   scheduler tables and full step loops (DPM-Solver++, DDIM, Euler)
  fixtures/dit/scheduler.json          timesteps per scheduler and step count, init_noise_sigma
  fixtures/dit/scheduler_config.json   the PixArt scheduler config the tables were built from
  fixtures/dit/forward.safetensors     PixArtTransformer2DModel forward inputs, intermediates and outputs
                                       for fixtures/tiny-pixart-512 and fixtures/tiny-pixart-1024ms
  fixtures/dit/loop.safetensors        whole denoising loops of PixArtAlphaPipeline (given prompt embeddings,
                                       CPU generator, classifier-free guidance, output_type="latent")
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file

from diffusers import (
    DDIMScheduler,
    PixArtAlphaPipeline,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    PixArtTransformer2DModel,
)
from diffusers.models.embeddings import get_2d_sincos_pos_embed, get_timestep_embedding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "dit")
torch.set_num_threads(1)


def generator_fixtures():
    t = {}
    for seed, n in [(0, 16), (42, 17), (1234, 1024), (7, 4 * 16 * 16), (2**32 - 1, 1000), (12345678901, 4 * 8 * 12),
                    (3, 5), (5, 1), (9, 15)]:
        g = torch.Generator("cpu").manual_seed(seed)
        t[f"randn_{seed}_{n}"] = torch.randn(n, generator=g, dtype=torch.float32)
    # several draws from one generator: big, partial block, small (cached double-normal path), big again
    g = torch.Generator("cpu").manual_seed(2024)
    for i, n in enumerate([20, 37, 3, 5, 16, 1]):
        t[f"seq_2024_{i}_{n}"] = torch.randn(n, generator=g, dtype=torch.float32)
    # the shape the pipeline draws (B, 4, H, W), as one contiguous tensor
    g = torch.Generator("cpu").manual_seed(0)
    t["latents_0_2x4x16x24"] = torch.randn((2, 4, 16, 24), generator=g, dtype=torch.float32).reshape(-1)
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(OUT, "generator.safetensors"))


def scheduler_fixtures():
    cfg_path = os.path.join(ROOT, "fixtures", "tiny-pixart-512", "scheduler", "scheduler_config.json")
    if os.path.exists(cfg_path):
        dpm = DPMSolverMultistepScheduler.from_pretrained(os.path.dirname(cfg_path))
    else:  # PixArt's scheduler is the DPMSolverMultistepScheduler defaults
        dpm = DPMSolverMultistepScheduler()
    dpm.save_config(OUT)  # writes scheduler_config.json
    config = dict(dpm.config)
    makers = {
        "dpm": lambda: DPMSolverMultistepScheduler.from_config(config),
        "ddim": lambda: DDIMScheduler.from_config(config),
        "euler": lambda: EulerDiscreteScheduler.from_config(config),
    }
    tensors = {}
    meta = {"steps": [2, 10, 14, 20, 25], "loops": [2, 5, 14, 20], "schedulers": {}}
    d0 = makers["dpm"]()
    tensors["betas"] = d0.betas.float()
    tensors["alphas_cumprod"] = d0.alphas_cumprod.float()
    tensors["train_sigmas"] = d0.sigmas.float()  # before set_timesteps: all 1000 sigmas
    for name, make in makers.items():
        info = {"class": None, "config": None, "timesteps": {}, "init_noise_sigma": {}}
        for steps in meta["steps"]:
            s = make()
            info["class"] = type(s).__name__
            info["config"] = {k: s.config[k] for k in ["timestep_spacing", "clip_sample", "set_alpha_to_one",
                                                       "steps_offset", "final_sigmas_type", "interpolation_type",
                                                       "solver_order", "lower_order_final"] if k in s.config}
            s.set_timesteps(steps)
            info["timesteps"][str(steps)] = [float(x) for x in s.timesteps.tolist()]
            info["init_noise_sigma"][str(steps)] = float(s.init_noise_sigma)
            tensors[f"{name}_{steps}_timesteps"] = s.timesteps.to(torch.float32)
            if hasattr(s, "sigmas") and name != "ddim":
                tensors[f"{name}_{steps}_sigmas"] = s.sigmas.to(torch.float32)
        meta["schedulers"][name] = info
        # full loops: random noise and random (fixed) model outputs, shape (2, 4, 4, 4)
        for steps in meta["loops"]:
            s = make()
            s.set_timesteps(steps)
            if hasattr(s, "set_begin_index"):
                s.set_begin_index(0)
            gen = torch.Generator("cpu").manual_seed(1000 + steps)
            noise = torch.randn((2, 4, 4, 4), generator=gen, dtype=torch.float32)
            outs = torch.randn((steps, 2, 4, 4, 4), generator=gen, dtype=torch.float32)
            x = noise * s.init_noise_sigma
            scaled, samples = [], []
            for i, t in enumerate(s.timesteps):
                xin = s.scale_model_input(x, t)
                scaled.append(xin.clone())
                x = s.step(outs[i], t, x, return_dict=False)[0]
                samples.append(x.clone())
            tensors[f"{name}_loop{steps}_noise"] = noise.reshape(-1)
            tensors[f"{name}_loop{steps}_model_out"] = outs.reshape(steps, -1)
            tensors[f"{name}_loop{steps}_scaled"] = torch.stack(scaled).reshape(steps, -1)
            tensors[f"{name}_loop{steps}_samples"] = torch.stack(samples).reshape(steps, -1)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "scheduler.safetensors"))
    with open(os.path.join(OUT, "scheduler.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def embedding_fixtures(t):
    # 2-D sin-cos position embeddings: (dim, (h, w), base_size, interpolation_scale)
    for dim, (h, w), base, scale in [(24, (4, 4), 4, 1.0), (24, (4, 6), 4, 1.0), (24, (8, 8), 64, 2.0),
                                     (24, (8, 12), 64, 2.0), (1152, (6, 10), 64, 2.0), (1152, (5, 7), 32, 1.0),
                                     (1152, (4, 4), 16, 0.5)]:
        pe = get_2d_sincos_pos_embed(dim, (h, w), base_size=base, interpolation_scale=scale, output_type="pt")
        t[f"posembed_{dim}_{h}x{w}_b{base}_s{scale}"] = pe.float()
    ts = torch.tensor([0.0, 1.0, 50.0, 500.0, 999.0, 946.4210815429688, 1024.0, 0.5625])
    t["temb_t"] = ts
    t["temb_256"] = get_timestep_embedding(ts, 256, flip_sin_to_cos=True, downscale_freq_shift=0)


def forward_fixtures():
    t = {}
    embedding_fixtures(t)
    cases = {
        "512": ("tiny-pixart-512", [(8, 8), (8, 12)]),
        "1024ms": ("tiny-pixart-1024ms", [(16, 16), (16, 24)]),
    }
    L = 7
    for key, (folder, sizes) in cases.items():
        model = PixArtTransformer2DModel.from_pretrained(os.path.join(ROOT, "fixtures", folder, "transformer"),
                                                         torch_dtype=torch.float32).eval()
        cfg = model.config
        captured = {}

        def hook(name):
            def f(mod, args, out):
                captured[name] = out
            return f

        model.adaln_single.register_forward_hook(hook("adaln"))
        model.caption_projection.register_forward_hook(hook("caption"))
        model.transformer_blocks[0].register_forward_hook(hook("block0"))
        model.pos_embed.register_forward_hook(hook("patch"))
        for ci, (H, W) in enumerate(sizes):
            gen = torch.Generator("cpu").manual_seed(100 * ci + (1 if key == "512" else 2))
            B = 2
            latents = torch.randn((B, cfg.in_channels, H, W), generator=gen)
            enc = torch.randn((B, L, cfg.caption_channels), generator=gen)
            mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 0]], dtype=torch.float32)
            timesteps = torch.tensor([999.0, 500.0]) if ci == 0 else torch.tensor([946.4210815429688, 1.0])
            if model.use_additional_conditions:
                px = 8 * H, 8 * W
                resolution = torch.tensor([[float(px[0]), float(px[1])], [768.0, 1344.0]])
                aspect = torch.tensor([[px[0] / px[1]], [768.0 / 1344.0]], dtype=torch.float32)
                added = {"resolution": resolution, "aspect_ratio": aspect}
            else:
                resolution = aspect = None
                added = {"resolution": None, "aspect_ratio": None}
            with torch.no_grad():
                out = model(latents, encoder_hidden_states=enc, timestep=timesteps, added_cond_kwargs=added,
                            encoder_attention_mask=mask, return_dict=False)[0]
            p = f"{key}_{H}x{W}_"
            t[p + "latents"] = latents
            t[p + "encoder"] = enc
            t[p + "mask"] = mask
            t[p + "timesteps"] = timesteps
            if resolution is not None:
                t[p + "resolution"] = resolution
                t[p + "aspect_ratio"] = aspect.reshape(-1)
            t[p + "patch"] = captured["patch"]  # patch embedding + pos embed (B, N, D)
            t[p + "t6"] = captured["adaln"][0]  # adaln_single.linear(SiLU(cond)) (B, 6D)
            t[p + "cond"] = captured["adaln"][1]  # embedded_timestep (B, D)
            t[p + "caption"] = captured["caption"]  # (B, L, D)
            t[p + "block0"] = captured["block0"]  # after the first block (B, N, D)
            t[p + "output"] = out
    save_file({k: v.detach().contiguous() for k, v in t.items()}, os.path.join(OUT, "forward.safetensors"))


def loop_fixtures():
    """PixArtAlphaPipeline from given T5 embeddings to final latents; no resolution binning (the tiny
    sample sizes have no bins). Each case: seed, steps, guidance, pixel size, scheduler."""
    t = {}
    cases = [
        ("512_dpm", "tiny-pixart-512", "dpm", 5, 16, 16, 4.5, 11),
        ("512_ddim", "tiny-pixart-512", "ddim", 5, 16, 24, 4.5, 12),
        ("512_euler", "tiny-pixart-512", "euler", 5, 16, 16, 3.0, 13),
        ("1024ms_dpm", "tiny-pixart-1024ms", "dpm", 4, 32, 48, 4.5, 14),
    ]
    L = 7
    for name, folder, sched, steps, height, width, guidance, seed in cases:
        pipe = PixArtAlphaPipeline.from_pretrained(os.path.join(ROOT, "fixtures", folder), torch_dtype=torch.float32)
        if sched == "ddim":
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        elif sched == "euler":
            pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        g = torch.Generator("cpu").manual_seed(500 + seed)
        cap = pipe.transformer.config.caption_channels
        emb = torch.randn((1, L, cap), generator=g)
        neg = torch.randn((1, L, cap), generator=g)
        mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]], dtype=torch.int64)
        neg_mask = torch.tensor([[1, 0, 0, 0, 0, 0, 0]], dtype=torch.int64)
        with torch.no_grad():
            out = pipe(prompt=None, negative_prompt=None, prompt_embeds=emb, prompt_attention_mask=mask, negative_prompt_embeds=neg,
                       negative_prompt_attention_mask=neg_mask, num_inference_steps=steps, guidance_scale=guidance,
                       height=height, width=width, generator=torch.Generator("cpu").manual_seed(seed),
                       output_type="latent", use_resolution_binning=False, return_dict=False)[0]
        p = f"{name}_"
        t[p + "prompt_embeds"] = emb
        t[p + "prompt_mask"] = mask.float()
        t[p + "negative_embeds"] = neg
        t[p + "negative_mask"] = neg_mask.float()
        # seed, steps, guidance, height px, width px
        t[p + "params"] = torch.tensor([seed, steps, guidance, height, width], dtype=torch.float64)
        t[p + "latents"] = out
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(OUT, "loop.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    what = sys.argv[1:] or ["generator", "scheduler", "forward", "loop"]
    if "generator" in what:
        generator_fixtures()
    if "scheduler" in what:
        scheduler_fixtures()
    if "forward" in what:
        forward_fixtures()
    if "loop" in what:
        loop_fixtures()


if __name__ == "__main__":
    main()
