#!/usr/bin/env python3
"""Few-step samplers: diffusers' LCMScheduler and DDPMScheduler on the tiny PixArt-α pipeline.

    venv/bin/python scripts/make_fewstep_reference.py      # (make_fixtures.py stage "fewstep")

Writes, all from diffusers 0.42.1 / torch on the CPU (float32, one torch thread, fixed seeds):

  fixtures/tiny-pixart-lcm/scheduler/scheduler_config.json (+ model_index.json naming only it)
        LCMScheduler as PixArt-LCM-XL-2-1024-MS configures it (LCM_CONFIG below), saved by
        LCMScheduler.save_pretrained. A scheduler-only folder: `--model fixtures/tiny-pixart-512
        --model fixtures/tiny-pixart-lcm` swaps it in.
  fixtures/tiny-pixart-dmd/scheduler/scheduler_config.json (+ model_index.json)
        DDPMScheduler as PixArt-Alpha-DMD-XL-2-512x512 is run (DMD_CONFIG below).
  fixtures/reference-lcm/, fixtures/reference-dmd/
        reference bundles (cases.json in the format of scripts/make_reference.py, plus the optional
        "timesteps" list): per case NAME.png (the pipeline's PIL output) and NAME.safetensors with
        `image` (H, W, 3) f32 (output_type="np") and `final_latents` (output_type="latent"). The
        pipeline is fixtures/tiny-pixart-512 with its scheduler replaced by the folder above, called
        with generator=torch.Generator("cpu").manual_seed(seed), clean_caption=False,
        use_resolution_binning=False. reference-lcm/batch2.safetensors: `images` (2, H, W, 3) of one
        call with num_images_per_prompt=2 and a list of two generators (seeds 5 and 6).
  fixtures/fewstep/scheduler.safetensors, fixtures/fewstep/scheduler.json
        scheduler-level values on fixed inputs: per sampler and schedule, `timesteps` (set_timesteps),
        and a loop on a (2, 4, 4, 4) sample: `x0` (the start), per step i `model_out_i`,
        `prev_i` and `x0pred_i` (step(..., return_dict=False)[0] and [1]) with
        generator=[torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)] passed to
        every step (the generators are not reseeded between steps).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from make_reference import finite_config  # noqa: E402

# PixArt-LCM-XL-2-1024-MS's scheduler_config.json as far as it could be established here (no network):
# PixArt's training schedule (linear β 0.0001…0.02, 1000 steps, ε prediction) with LCMScheduler's own
# defaults for the LCM keys (original_inference_steps 50, timestep_scaling 10, clip_sample false,
# set_alpha_to_one true, timestep_spacing leading, steps_offset 0). formats/schedulers.md says what
# could not be checked against the published file.
LCM_CONFIG = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                  original_inference_steps=50, clip_sample=False, clip_sample_range=1.0,
                  set_alpha_to_one=True, steps_offset=0, prediction_type="epsilon", thresholding=False,
                  timestep_spacing="leading", timestep_scaling=10.0, rescale_betas_zero_snr=False)
# PixArt-Alpha-DMD-XL-2-512x512 is run with a DDPMScheduler (its card: timesteps=[400], one step,
# guidance 1). PixArt's schedule, variance fixed_small, and clip_sample false (an x0 in latent space
# clipped to [-1, 1] would be ruined; DDPM's class default is true) — unverified, see formats/schedulers.md.
DMD_CONFIG = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                  variance_type="fixed_small", clip_sample=False, prediction_type="epsilon",
                  thresholding=False, timestep_spacing="leading", steps_offset=0,
                  rescale_betas_zero_snr=False)

GENERATOR = "diffusers PixArtAlphaPipeline, float32, CPU"

LCM_CASES = [
    dict(name="lcm-4step", prompt="A small cactus with a happy face in the Sahara desert.", seed=3,
         steps=4, guidance_scale=0.0),
    dict(name="lcm-4step-cfg", prompt="an astronaut riding a horse", negative_prompt="blurry", seed=4,
         steps=4, guidance_scale=2.5),
    dict(name="lcm-custom", prompt="a red fox in the snow", seed=7, steps=4, guidance_scale=0.0,
         timesteps=[999, 759, 499, 259]),
    dict(name="lcm-1step", prompt="a lighthouse at dusk", seed=8, steps=1, guidance_scale=0.0),
]
DMD_CASES = [
    dict(name="dmd-1step", prompt="A small cactus with a happy face in the Sahara desert.", seed=3,
         steps=1, guidance_scale=1.0, timesteps=[400]),
    dict(name="ddpm-10step", prompt="an owl on a branch", negative_prompt="", seed=9, steps=10,
         guidance_scale=4.5),
    dict(name="ddpm-custom", prompt="a koi pond", seed=10, steps=3, guidance_scale=0.0,
         timesteps=[800, 500, 200]),
    # The one-step branch where it matters: Euler's prev_sample at σ = 0 is not its x0.
    dict(name="euler-1step", prompt="a koi pond", seed=11, steps=1, guidance_scale=1.0,
         timesteps=[400], scheduler="euler"),
]


def write_scheduler_folder(cls, config: dict, folder: Path):
    if folder.exists():
        shutil.rmtree(folder)
    sched = cls(**config)
    sched.save_pretrained(str(folder / "scheduler"))
    # A pipeline index naming only the scheduler, so the folder is a (partial) diffusers pipeline folder.
    import diffusers
    index = {"_class_name": "PixArtAlphaPipeline", "_diffusers_version": diffusers.__version__,
             "scheduler": ["diffusers", cls.__name__]}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return cls.from_pretrained(str(folder / "scheduler"))


def run_bundle(pipe, scheduler_dir: Path, cases: list[dict], out: Path, kind: str) -> None:
    from diffusers import LCMScheduler
    from safetensors.torch import save_file
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    vsf = pipe.vae_scale_factor
    size = pipe.transformer.config.sample_size * vsf
    records = []
    for case in cases:
        c = {"negative_prompt": "", **case}
        from diffusers import DDPMScheduler, EulerDiscreteScheduler
        base = {"lcm": LCMScheduler, "ddpm": DDPMScheduler}[kind].from_pretrained(str(scheduler_dir / "scheduler"))
        # A case's own "scheduler" (euler) is that class from the folder's config, as make_reference.py.
        pipe.scheduler = EulerDiscreteScheduler.from_config(base.config) if c.get("scheduler") == "euler" else base
        common = dict(prompt=c["prompt"], negative_prompt=c["negative_prompt"],
                      guidance_scale=float(c["guidance_scale"]), height=size, width=size,
                      clean_caption=False, use_resolution_binning=False)
        if "timesteps" in c:
            common["timesteps"] = list(c["timesteps"])
            assert c["steps"] == len(c["timesteps"])
        else:
            common["num_inference_steps"] = int(c["steps"])
        gen = lambda: torch.Generator("cpu").manual_seed(int(c["seed"]))  # noqa: E731
        img = pipe(generator=gen(), output_type="np", **common).images[0]
        pil = pipe(generator=gen(), output_type="pil", **common).images[0]
        assert np.array_equal(np.asarray(pil), (img * 255).round().astype(np.uint8))
        final = pipe(generator=gen(), output_type="latent", **common).images
        name = c["name"]
        pil.save(out / f"{name}.png", format="PNG")
        save_file({"image": torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)),
                   "final_latents": final.float().contiguous()},
                  str(out / f"{name}.safetensors"), metadata={"format": "pt"})
        rec = {k: c[k] for k in ("name", "prompt", "negative_prompt", "seed", "steps", "guidance_scale")}
        rec.update(height=size, width=size, scheduler=c.get("scheduler", kind))
        if "timesteps" in c:
            rec["timesteps"] = list(c["timesteps"])
        rec.update(image=f"{name}.png", tensors=f"{name}.safetensors",
                   scheduler_class=type(pipe.scheduler).__name__,
                   scheduler_config=finite_config(pipe.scheduler.config),
                   scheduler_timesteps=[int(t) for t in pipe.scheduler.timesteps])
        records.append(rec)
        print(f"  {out.name}/{name}: done")
    if kind == "lcm":
        pipe.scheduler = LCMScheduler.from_pretrained(str(scheduler_dir / "scheduler"))
        gens = [torch.Generator("cpu").manual_seed(5), torch.Generator("cpu").manual_seed(6)]
        imgs = pipe(prompt="a red fox in the snow", num_inference_steps=4, guidance_scale=0.0,
                    num_images_per_prompt=2, generator=gens, height=size, width=size, output_type="np",
                    clean_caption=False, use_resolution_binning=False).images
        save_file({"images": torch.from_numpy(np.ascontiguousarray(imgs, dtype=np.float32))},
                  str(out / "batch2.safetensors"), metadata={"format": "pt"})
    doc = {"generator": GENERATOR, "model": "tiny-pixart-512 + " + scheduler_dir.name,
           "vae_scale_factor": vsf, "cases": records,
           "batch2": {"prompt": "a red fox in the snow", "seeds": [5, 6], "steps": 4, "guidance_scale": 0.0,
                      "scheduler": "lcm", "height": size, "width": size,
                      "tensors": "batch2.safetensors"} if kind == "lcm" else None}
    if doc["batch2"] is None:
        del doc["batch2"]
    (out / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")


def scheduler_values(out: Path) -> None:
    """Scheduler-level fixtures: timesteps and step outputs on fixed inputs."""
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, LCMScheduler
    from safetensors.torch import save_file
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pixart = json.loads((ROOT / "fixtures/tiny-pixart-512/scheduler/scheduler_config.json").read_text(),
                        parse_constant=lambda s: float(s))
    pixart = {k: v for k, v in pixart.items() if not k.startswith("_")}
    # (key, class, config, schedule): schedule is an int (num_inference_steps) or a list (timesteps=).
    runs = []
    for steps in (1, 2, 4, 8, 50):
        runs.append((f"lcm_{steps}", LCMScheduler, LCM_CONFIG, steps))
    runs.append(("lcm_custom", LCMScheduler, LCM_CONFIG, [999, 759, 499, 259]))
    for steps in (1, 10, 25):
        runs.append((f"ddpm_{steps}", DDPMScheduler, DMD_CONFIG, steps))
    runs.append(("ddpm_custom", DDPMScheduler, DMD_CONFIG, [400]))
    runs.append(("ddpm_custom3", DDPMScheduler, DMD_CONFIG, [800, 500, 200]))
    clip = dict(DMD_CONFIG, clip_sample=True, timestep_spacing="linspace")
    runs.append(("ddpm_clip_linspace_6", DDPMScheduler, clip, 6))
    runs.append(("ddpm_smalllog_5", DDPMScheduler, dict(DMD_CONFIG, variance_type="fixed_small_log"), 5))
    runs.append(("ddpm_large_trailing_5", DDPMScheduler,
                 dict(DMD_CONFIG, variance_type="fixed_large", timestep_spacing="trailing"), 5))
    runs.append(("dpm_custom", DPMSolverMultistepScheduler, pixart, [999, 600, 300, 100]))
    runs.append(("euler_custom", EulerDiscreteScheduler, pixart, [999, 600, 300, 100]))
    tensors, info = {}, {}
    shape = (2, 4, 4, 4)
    for key, cls, config, schedule in runs:
        s = cls.from_config(config)
        if isinstance(schedule, list):
            s.set_timesteps(timesteps=schedule)
        else:
            s.set_timesteps(schedule)
        info[key] = {"class": cls.__name__, "config": finite_config(s.config),
                     "schedule": schedule, "timesteps": [float(t) for t in s.timesteps],
                     "init_noise_sigma": float(s.init_noise_sigma)}
        tensors[f"{key}_timesteps"] = s.timesteps.to(torch.float32).contiguous()
        data = torch.Generator().manual_seed(1000 + len(info))
        x = torch.randn(shape, generator=data, dtype=torch.float32)
        tensors[f"{key}_x0"] = x.clone()
        gens = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
        if hasattr(s, "set_begin_index"):
            s.set_begin_index(0)
        for i, t in enumerate(s.timesteps):
            out_ = torch.randn(shape, generator=data, dtype=torch.float32)
            xin = s.scale_model_input(x, t)
            kwargs = {"generator": gens} if cls in (LCMScheduler, DDPMScheduler) else {}
            res = s.step(out_, t, x, return_dict=False, **kwargs)
            if cls is EulerDiscreteScheduler:
                tensors[f"{key}_scaled_{i}"] = xin.contiguous()
            tensors[f"{key}_model_out_{i}"] = out_
            tensors[f"{key}_prev_{i}"] = res[0].contiguous()
            if len(res) > 1:
                tensors[f"{key}_x0pred_{i}"] = res[1].clone().contiguous()
            x = res[0]
    save_file(tensors, str(out / "scheduler.safetensors"), metadata={"format": "pt"})
    (out / "scheduler.json").write_text(json.dumps(
        {"generator": "diffusers 0.42.1 schedulers, float32, CPU", "shape": list(shape),
         "noise_generators": [11, 12], "runs": info}, indent=2) + "\n")


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from diffusers import DDPMScheduler, LCMScheduler, PixArtAlphaPipeline
    fixtures = ROOT / "fixtures"
    write_scheduler_folder(LCMScheduler, LCM_CONFIG, fixtures / "tiny-pixart-lcm")
    write_scheduler_folder(DDPMScheduler, DMD_CONFIG, fixtures / "tiny-pixart-dmd")
    scheduler_values(fixtures / "fewstep")
    pipe = PixArtAlphaPipeline.from_pretrained(str(fixtures / "tiny-pixart-512"), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = LCMScheduler.from_pretrained(str(fixtures / "tiny-pixart-lcm/scheduler"))
    run_bundle(pipe, fixtures / "tiny-pixart-lcm", LCM_CASES, fixtures / "reference-lcm", "lcm")
    pipe.scheduler = DDPMScheduler.from_pretrained(str(fixtures / "tiny-pixart-dmd/scheduler"))
    run_bundle(pipe, fixtures / "tiny-pixart-dmd", DMD_CASES, fixtures / "reference-dmd", "ddpm")


if __name__ == "__main__":
    main()
