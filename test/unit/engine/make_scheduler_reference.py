"""Writes scheduler-reference.json: diffusers' UnCLIPScheduler / DDIMScheduler / DDIMInverseScheduler outputs on
small random inputs, for the TS scheduler unit tests.  Run: models/.venv/bin/python test/unit/engine/make_scheduler_reference.py"""
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler, UnCLIPScheduler

torch.set_num_threads(2)
rng = np.random.default_rng(1234)
N_EL = 24


def arr(x):
    # shortest decimal that rounds back to the same float32 (JS: Math.fround(value) recovers it exactly)
    return [float(str(v)) for v in np.asarray(x, dtype=np.float32).ravel()]


def rand(scale=1.0):
    return (rng.standard_normal(N_EL) * scale).astype(np.float32)


configs = {
    "prior": dict(variance_type="fixed_small_log", prediction_type="sample", clip_sample_range=5.0),
    "decoder": dict(variance_type="learned_range", prediction_type="epsilon", clip_sample_range=1.0),
    "super_res": dict(variance_type="fixed_small_log", prediction_type="epsilon", clip_sample_range=1.0),
}
out = {"unclip": [], "ddim": [], "ddim_inverse": []}
for name, cfg in configs.items():
    s = UnCLIPScheduler(num_train_timesteps=1000, clip_sample=True, **cfg)
    for n in (2, 7, 25):
        s.set_timesteps(n)
        ts = [int(t) for t in s.timesteps]
        for i, t in enumerate(ts):
            prev = ts[i + 1] if i + 1 < len(ts) else None
            sample = rand(1.5)
            model = rand(2.0) if cfg["prediction_type"] == "sample" else rand(1.0)
            var = np.tanh(rand(1.0)).astype(np.float32)
            noise = rand(1.0)
            mo = torch.from_numpy(model).reshape(1, N_EL // 4, 2, 2)
            if cfg["variance_type"] == "learned_range":
                mo = torch.cat([mo, torch.from_numpy(var).reshape(1, N_EL // 4, 2, 2)], dim=1)
            x = torch.from_numpy(sample).reshape(1, N_EL // 4, 2, 2)
            import diffusers.schedulers.scheduling_unclip as su

            su.randn_tensor = lambda shape, **kw: torch.from_numpy(noise).reshape(shape)
            res = s.step(mo, t, x, prev_timestep=None if prev is None else torch.tensor(prev))
            out["unclip"].append(dict(config=name, steps=n, i=i, t=t, prev=prev, sample=arr(sample), model=arr(model),
                                      variance=arr(var), noise=arr(noise), prev_sample=arr(res.prev_sample),
                                      pred_original=arr(res.pred_original_sample)))
    out.setdefault("timesteps", {})
for n in (2, 7, 25, 50):
    s = UnCLIPScheduler()
    s.set_timesteps(n)
    out["timesteps"][str(n)] = [int(t) for t in s.timesteps]
s = UnCLIPScheduler()
out["alphas_cumprod"] = arr(s.alphas_cumprod)
out["betas"] = arr(s.betas)

for spacing in ("leading", "trailing"):
    for eta in (0.0, 0.5):
        d = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                          set_alpha_to_one=True, steps_offset=0, timestep_spacing=spacing)
        d.set_timesteps(10)
        for t in [int(t) for t in d.timesteps]:
            sample, model, noise = rand(1.2), rand(1.0), rand(1.0)
            res = d.step(torch.from_numpy(model), t, torch.from_numpy(sample), eta=eta,
                         variance_noise=torch.from_numpy(noise) if eta > 0 else None)
            out["ddim"].append(dict(spacing=spacing, eta=eta, steps=10, timesteps=[int(v) for v in d.timesteps], t=t,
                                    sample=arr(sample), model=arr(model), noise=arr(noise),
                                    prev_sample=arr(res.prev_sample), pred_original=arr(res.pred_original_sample)))
inv = DDIMInverseScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                           set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
inv.set_timesteps(10)
for t in [int(t) for t in inv.timesteps]:
    sample, model = rand(1.2), rand(1.0)
    res = inv.step(torch.from_numpy(model), t, torch.from_numpy(sample))
    out["ddim_inverse"].append(dict(steps=10, timesteps=[int(v) for v in inv.timesteps], t=t, sample=arr(sample),
                                    model=arr(model), prev_sample=arr(res.prev_sample)))

text = json.dumps(out, separators=(",", ":"))
Path(__file__).with_name("scheduler-reference.json").write_text(text)
print("wrote", len(out["unclip"]), "unclip steps,", len(out["ddim"]), "ddim steps")
