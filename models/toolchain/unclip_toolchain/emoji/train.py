"""Resumable, time-budgeted training of the emoji unCLIP, one stage at a time.

    python -m unclip_toolchain.emoji train --plan clip=12,prior=8,decoder=35,sr=8,sr_last=2

Stages, in dependency order: clip (text + image encoders, contrastive), then prior, decoder (+ text_proj), sr
(super_res_first) and sr_last (a copy of sr fine-tuned on the last, nearly noise-free steps), all on the frozen
CLIP. Each call trains a stage for the given minutes of wall time, then saves; the next call resumes from the
checkpoint in models/work/emoji-run/ckpt/ (weights, EMA, optimiser, step, sampler RNG). Once a downstream stage
has started, CLIP is frozen (its embedding space is what prior/decoder learned), see `clip_frozen`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .batches import Batches, TextEncoder
from .dataset import EmojiData
from .diffusion import EMA, Schedule
from .models import (Sizes, build_clip, build_decoder, build_prior, build_super_res, build_text_proj, clip_pixels,
                     prior_forward, sizes_from_json, sizes_to_json)
from .sources import DATA_DIR, RUN_DIR

STAGES = ("clip", "prior", "decoder", "sr", "sr_last")
SAVE_EVERY_S = 120.0
BATCH = {"clip": 128, "prior": 128, "decoder": 48, "sr": 32, "sr_last": 32}
LR = {"clip": 1e-3, "prior": 3e-4, "decoder": 3e-4, "sr": 3e-4, "sr_last": 1e-4}
WARMUP = 50
# When a stage's whole budget is known (`emoji all`), its learning rate falls linearly to 0 over the last fifth of
# that budget. Measured on the 3 h run's decoder (step 5,356), 8 more minutes at constant lr vs decaying to 0 (EMA
# weights): CLIP cosine of decode(z_i) to z_i 0.906 vs 0.908, pipeline top-5 48.0 vs 49.5 % (raw weights after the
# decay: 0.911, 50.5 %). Within the noise of 200 prompts, but not worse, and standard practice for short budgets.
COOLDOWN = 0.2
SR_LAST_MAX_T = 50
# Min-SNR-gamma weighting of the decoder's eps loss (see Schedule.min_snr_weight). Introduced after the first runs
# (decoder from step 2,588, eps super-resolution from step 844): their samples had colour casts.
MIN_SNR_GAMMA = 5.0
# Decoder: half of the t >= 700 samples are trained on first-step garbage (see
# Schedule.q_sample_first_step_garbage). Introduced with the min-SNR weighting, for the same colour casts.
FIRST_STEP_GARBAGE = (700, 0.5)
# Mixed precision: the trained networks' forward passes run under bfloat16 autocast where the CPU multiplies bf16
# natively (AVX512-BF16 / AMX); weights, optimiser state, EMA, losses and the frozen CLIP encodings stay float32.
# Measured on the 2-core AMD EPYC (Zen 5) dev VM, one full training step (fwd + bwd + AdamW + EMA): decoder 616 ->
# 430 ms, super-resolution 987 -> 592 ms, CLIP vision 277 -> 209 ms. Without native bf16 it would be emulated and
# slower, so "auto" falls back to float32 there.
PRECISIONS = ("auto", "bf16", "fp32")
# Where the trained networks, their EMA and optimiser state live (`--device`). "auto": CUDA when torch sees a GPU.
# Batches are composed on the CPU and every random draw of the recipe (timesteps, noise, caption / z_i dropout,
# degradations) comes from the CPU's global torch generator, as before, and is then moved to the device: a CPU run
# is bit-identical to the CPU-only code it replaces, and a CUDA run consumes the same random stream. Checkpoints are
# saved as CPU tensors, so they load anywhere.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "cpu") -> str:
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ValueError(f"--device: {device!r} is not one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device: {device!r} but torch {torch.__version__} sees no CUDA device")
    return device


def resolve_precision(precision: str, device: str = "cpu") -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if torch.device(device).type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported() else "fp32"
    return precision


def parse_batches(spec: str | None) -> dict[str, int]:
    """--batch "decoder=192,sr=128" -> {stage: batch size}: overrides of BATCH (a recipe change, see models/README)."""
    out: dict[str, int] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, n = part.partition("=")
        name = name.strip()
        if name not in BATCH:
            raise ValueError(f"--batch: unknown stage {name!r} (stages: {', '.join(STAGES)})")
        try:
            out[name] = int(n)
        except ValueError:
            raise ValueError(f"--batch: {part!r} needs a whole number, e.g. {name}={BATCH[name]}") from None
        if out[name] < 2:
            raise ValueError(f"--batch: {part!r}: at least 2")
    return out


def device_name(device) -> str:
    d = torch.device(device)
    return torch.cuda.get_device_name(d) if d.type == "cuda" else "cpu"


def to_cpu(obj):
    """Tensors (in dicts, lists, tuples) -> CPU tensors; everything else as it is."""
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def log(run_dir: Path, msg: str, **fields) -> None:
    line = time.strftime("%Y-%m-%dT%H:%M:%S ") + msg
    print(line, flush=True)
    with open(run_dir / "train.log", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    if fields:
        with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.time(), **fields}) + "\n")


def ckpt_path(run_dir: Path, stage: str) -> Path:
    return run_dir / "ckpt" / f"{stage}.pt"


def save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def run_sizes(run_dir: Path) -> Sizes:
    """Model sizes are fixed per run (run_dir/sizes.json) so resumed stages always agree."""
    p = run_dir / "sizes.json"
    if p.is_file():
        return sizes_from_json(json.loads(p.read_text()))
    s = Sizes()
    run_dir.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(sizes_to_json(s), indent=1) + "\n")
    return s


def load_ema_into(model: torch.nn.Module, ckpt: dict, key: str) -> torch.nn.Module:
    model.load_state_dict(ckpt["ema"][key]["shadow"])
    return model.eval()


def frozen_clip(run_dir: Path, sizes: Sizes):
    p = ckpt_path(run_dir, "clip")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: train the clip stage first")
    ck = torch.load(p, weights_only=False, map_location="cpu")
    text, vision = build_clip(sizes, 0)
    load_ema_into(text, ck, "text")
    load_ema_into(vision, ck, "vision")
    for m in (text, vision):
        m.requires_grad_(False)
    return text, vision


def lr_at(step: int, base: float, progress: float | None = None) -> float:
    """Warm-up over WARMUP steps; with `progress` (elapsed / stage budget), the cool-down to 0 (COOLDOWN)."""
    lr = base * min(1.0, (step + 1) / WARMUP)
    if progress is not None:
        lr *= min(1.0, max(0.0, (1.0 - progress) / COOLDOWN))
    return lr


class Stage:
    """Shared loop: resume, train until the time budget is spent, checkpoint periodically and at the end."""

    name = ""

    def __init__(self, run_dir: Path, data: EmojiData, sizes: Sizes, seed: int, precision: str = "fp32",
                 device: str = "cpu", batch: int | None = None) -> None:
        self.run_dir, self.data, self.sizes, self.seed = run_dir, data, sizes, seed
        self.precision = precision
        self.device = torch.device(device)
        self.batch = batch or BATCH[self.name]
        self.batches = Batches(data, seed + 1000 * (STAGES.index(self.name) + 1))
        self.step = 0
        # step at which the lr warm-up (re)starts: 0, or where a run resumed without its optimiser state (a
        # prior rebuilt from a pack, see prior_curve.py), so fresh AdamW moments are warmed up again
        self.warmup_from = 0
        self.elapsed = 0.0
        self.modules: dict[str, torch.nn.Module] = {}
        self.emas: dict[str, EMA] = {}
        self.extra_params: list[torch.nn.Parameter] = []

    def build(self) -> None:
        raise NotImplementedError

    def loss(self) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def autocast(self):
        """Scope of a trained network's forward pass (see PRECISIONS); losses are taken outside it, in float32."""
        if self.precision == "bf16":
            dev = getattr(self, "device", None)
            return torch.autocast(dev.type if dev is not None else "cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # Random draws: from the CPU's global generator (as the CPU-only recipe drew them), then onto the device.
    def dev(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.device.type == "cpu" else x.to(self.device, non_blocking=True)

    def rand(self, *shape) -> torch.Tensor:
        return self.dev(torch.rand(*shape))

    def randn(self, shape) -> torch.Tensor:
        return self.dev(torch.randn(shape))

    def randint(self, high: int, n: int) -> torch.Tensor:
        return self.dev(torch.randint(0, high, (n,)))

    def sample(self, batch: int):
        imgs, caps, keys = self.batches.sample(batch)
        return self.dev(imgs), caps, keys

    def params(self):
        ps = [p for m in self.modules.values() for p in m.parameters() if p.requires_grad]
        return ps + self.extra_params

    def state(self) -> dict:
        st = {"stage": self.name, "step": self.step, "elapsed": self.elapsed, "sizes": sizes_to_json(self.sizes),
              "warmup_from": self.warmup_from,
              "precision": self.precision,
              "model": {k: m.state_dict() for k, m in self.modules.items()},
              "ema": {k: e.state_dict() for k, e in self.emas.items()},
              "opt": self.opt.state_dict(), "batches": self.batches.state(),
              "extra": [p.detach().clone() for p in self.extra_params], "torch_rng": torch.get_rng_state()}
        if self.batch != BATCH[self.name]:
            st["batch"] = self.batch
        if self.device.type != "cpu":
            st["device"] = device_name(self.device)
            st = to_cpu(st)
        return st

    def resume_or_init(self) -> None:
        self.build()
        for m in self.modules.values():
            m.to(self.device)
        self.emas = {k: EMA(m) for k, m in self.modules.items()}
        self.opt = torch.optim.AdamW(self.params(), lr=LR[self.name], weight_decay=0.01, betas=(0.9, 0.99))
        p = ckpt_path(self.run_dir, self.name)
        if p.is_file():
            ck = torch.load(p, weights_only=False, map_location="cpu")
            for k, m in self.modules.items():
                m.load_state_dict(ck["model"][k])
                self.emas[k].load_state_dict(ck["ema"][k])
                self.emas[k].to(self.device)
            for dst, src in zip(self.extra_params, ck["extra"]):
                dst.data.copy_(src)
            self.step, self.elapsed = ck["step"], ck["elapsed"]
            self.warmup_from = ck.get("warmup_from", 0)
            if "opt" in ck:
                self.opt.load_state_dict(ck["opt"])       # AdamW moves its state onto the parameters' device
                self.batches.load_state(ck["batches"])
                torch.set_rng_state(ck["torch_rng"])
            else:
                # EMA weights only (brought back from a GPU run, see gpu.py): as resume.restart_stage, fresh AdamW
                # moments warmed up again from this step, a fresh data order and generator seeded by the step
                self.warmup_from = self.step
                self.batches = Batches(self.data, self.seed + 1000 * (STAGES.index(self.name) + 1) + self.step)
                torch.manual_seed(self.seed + self.step)
            log(self.run_dir, f"{self.name}: resumed at step {self.step} ({self.elapsed / 60:.1f} min trained, "
                              f"{self.precision}" + (f", {self.device}" if self.device.type != "cpu" else "") + ")")
        else:
            torch.manual_seed(self.seed + STAGES.index(self.name))
            self.on_fresh_start()

    def on_fresh_start(self) -> None:
        pass

    def save(self) -> None:
        save_atomic(self.state(), ckpt_path(self.run_dir, self.name))

    def train(self, minutes: float, max_steps: int | None = None, budget_minutes: float | None = None) -> None:
        """Train `minutes` more; `budget_minutes` (the stage's whole budget, when known) sets the lr cool-down."""
        self.resume_or_init()
        for m in self.modules.values():
            m.train()
        start = last_save = last_log = time.time()
        t_prev, acc, n, cnt = start, {}, 0, 0
        while time.time() - start < minutes * 60 and (max_steps is None or n < max_steps):
            lr = lr_at(self.step - self.warmup_from, LR[self.name],
                       self.elapsed / (budget_minutes * 60) if budget_minutes else None)
            for g in self.opt.param_groups:
                g["lr"] = lr
            loss, parts = self.loss()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params(), 1.0)
            self.opt.step()
            for k, e in self.emas.items():
                e.update(self.modules[k])
            self.step += 1
            n += 1
            now = time.time()
            self.elapsed += now - t_prev
            t_prev = now
            for k, v in parts.items():
                acc[k] = acc.get(k, 0.0) + float(v)
            cnt += 1
            if now - last_log > 30 or n == 1:
                mean = {k: v / cnt for k, v in acc.items()}
                msg = " ".join(f"{k}={v:.4f}" for k, v in mean.items())
                log(self.run_dir, f"{self.name} step {self.step} {msg} ({self.elapsed / 60:.1f} min)", stage=self.name,
                    step=self.step, elapsed=self.elapsed, **mean)
                acc, cnt, last_log = {}, 0, now
            if now - last_save > SAVE_EVERY_S:
                self.save()
                last_save = now
        self.save()
        log(self.run_dir, f"{self.name}: saved at step {self.step} ({self.elapsed / 60:.1f} min trained)")


class ClipStage(Stage):
    name = "clip"

    def build(self) -> None:
        if (self.run_dir / "clip_frozen").exists():
            raise RuntimeError(f"{self.run_dir / 'clip_frozen'}: downstream stages were trained on this CLIP; "
                               "delete their checkpoints and this file to retrain it")
        text, vision = build_clip(self.sizes, self.seed)
        self.modules = {"text": text, "vision": vision}
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07), device=self.device))
        self.extra_params = [self.logit_scale]
        self.text = TextEncoder(text)

    def loss(self):
        imgs, caps, keys = self.sample(self.batch)
        with self.autocast():
            t_emb, _, _ = self.text.encode(caps)
            i_emb = self.modules["vision"](pixel_values=clip_pixels(imgs)).image_embeds
        t_emb, i_emb = F.normalize(t_emb.float(), dim=-1), F.normalize(i_emb.float(), dim=-1)
        logits = self.logit_scale.clamp(max=math.log(100)).exp() * i_emb @ t_emb.T
        # Same concept twice in a batch (other style / composition) is not a negative: soft targets.
        same = self.dev(torch.tensor([[a == b for b in keys] for a in keys], dtype=torch.float32))
        target = same / same.sum(1, keepdim=True)
        loss = 0.5 * (torch.sum(-target * logits.log_softmax(1), 1).mean()
                      + torch.sum(-target.T * logits.T.log_softmax(1), 1).mean())
        acc = (logits.argmax(1) == torch.arange(len(keys), device=logits.device)).float().mean()
        return loss, {"loss": loss.item(), "acc": acc.item()}


class DownstreamStage(Stage):
    """Stages trained on the frozen CLIP encoders."""

    def build_clip(self) -> None:
        (self.run_dir / "clip_frozen").touch()
        text, vision = frozen_clip(self.run_dir, self.sizes)
        text, vision = text.to(self.device), vision.to(self.device)
        self.text = TextEncoder(text)
        self.vision = vision
        with torch.no_grad():
            e, h, m = self.text.encode([""])
        self.empty = (e, h, m)

    @torch.no_grad()
    def encode(self, imgs, caps, drop_caption: float):
        z = self.vision(pixel_values=clip_pixels(imgs)).image_embeds
        caps = ["" if torch.rand(()) < drop_caption else c for c in caps]
        e, h, m = self.text.encode(caps)
        return z, e, h, m


class PriorStage(DownstreamStage):
    name = "prior"

    def build(self) -> None:
        self.build_clip()
        self.modules = {"prior": build_prior(self.sizes, self.seed)}
        self.sch = Schedule().to(self.device)

    @torch.no_grad()
    def on_fresh_start(self) -> None:
        # post_process_latents statistics: per-dimension mean/std of z_i over random training compositions.
        zs = []
        for _ in range(16):
            imgs, _, _ = self.sample(256)
            zs.append(self.vision(pixel_values=clip_pixels(imgs)).image_embeds)
        z = torch.cat(zs)
        prior = self.modules["prior"]
        prior.clip_mean.data.copy_(z.mean(0, keepdim=True))
        prior.clip_std.data.copy_(z.std(0, keepdim=True))
        prior.clip_mean.requires_grad_(False)
        prior.clip_std.requires_grad_(False)
        self.emas["prior"] = EMA(prior)
        self.opt = torch.optim.AdamW(self.params(), lr=LR[self.name], weight_decay=0.01, betas=(0.9, 0.99))
        log(self.run_dir, f"prior: clip stats from {len(z)} embeddings, mean|mean|={z.mean(0).abs().mean():.3f} "
                          f"mean std={z.std(0).mean():.3f}")

    def params(self):
        prior = self.modules["prior"]
        return [p for n, p in prior.named_parameters() if n not in ("clip_mean", "clip_std")]

    def loss(self):
        imgs, caps, _ = self.sample(self.batch)
        z, e, h, m = self.encode(imgs, caps, drop_caption=0.1)
        prior = self.modules["prior"]
        x0 = (z - prior.clip_mean) / prior.clip_std
        t = self.randint(self.sch.T, len(z))
        xt = self.sch.q_sample(x0, t, self.randn(x0.shape))
        with self.autocast():
            pred = prior_forward(prior, xt, t, e, h, m).float()
        loss = F.mse_loss(pred, x0)
        cos = F.cosine_similarity(pred * prior.clip_std + prior.clip_mean, z).mean()
        return loss, {"loss": loss.item(), "cos": cos.item()}


class DecoderStage(DownstreamStage):
    name = "decoder"

    def build(self) -> None:
        self.build_clip()
        self.modules = {"decoder": build_decoder(self.sizes, self.seed), "text_proj": build_text_proj(self.sizes, self.seed)}
        self.sch = Schedule().to(self.device)

    def loss(self):
        imgs, caps, _ = self.sample(self.batch)
        z, e, h, m = self.encode(imgs, caps, drop_caption=0.5)
        tp = self.modules["text_proj"]
        drop_z = self.rand(len(z)) < 0.1
        z = torch.where(drop_z[:, None], tp.learned_classifier_free_guidance_embeddings[None].expand_as(z), z)
        mask = F.pad(m, (tp.clip_extra_context_tokens, 0), value=True)
        x0 = F.interpolate(imgs * 2 - 1, size=self.sizes.decoder_size, mode="bilinear", antialias=True,
                           align_corners=False)
        t = self.randint(self.sch.T, len(z))
        xt, noise = self.sch.q_sample_first_step_garbage(x0, t, self.randn(x0.shape), *FIRST_STEP_GARBAGE)
        with self.autocast():
            enc, add = tp(image_embeddings=z, prompt_embeds=e, text_encoder_hidden_states=h,
                          do_classifier_free_guidance=False)
            out = self.modules["decoder"](xt, t, encoder_hidden_states=enc, class_labels=add,
                                          attention_mask=mask).sample.float()
        mse, vb = self.sch.hybrid_loss(out, x0, xt, t, noise, self.sch.min_snr_weight(t, MIN_SNR_GAMMA))
        return mse + vb, {"mse": mse.item(), "vb": vb.item()}


def degrade(low: torch.Tensor) -> torch.Tensor:
    """Random Gaussian blur + noise on the 32x32 conditioning image, so SR tolerates imperfect decoder output."""
    B = low.shape[0]
    out = low.clone()
    sig = torch.rand(B) * 1.0           # draws on the CPU's generator whatever the device (see DEVICES)
    for i in range(B):
        if sig[i] > 0.3:
            r = torch.arange(-2, 3, dtype=torch.float32)
            k1 = torch.exp(-r ** 2 / (2 * sig[i] ** 2))
            k1 = k1 / k1.sum()
            k = (k1[:, None] * k1[None, :]).expand(3, 1, 5, 5).to(low.device)
            out[i] = F.conv2d(F.pad(low[i:i + 1], (2, 2, 2, 2), mode="replicate"), k, groups=3)[0]
    noise = torch.randn(out.shape)
    scale = torch.rand(B, 1, 1, 1) * 0.04
    if low.device.type != "cpu":
        noise, scale = noise.to(low.device), scale.to(low.device)
    out = out + noise * scale
    return out.clamp(-1, 1)


class SuperResStage(Stage):
    name = "sr"
    max_t = None

    def build(self) -> None:
        self.modules = {"sr": build_super_res(self.sizes, self.seed + (1 if self.name == "sr_last" else 0))}
        self.sch = Schedule().to(self.device)

    def loss(self):
        imgs, _, _ = self.sample(self.batch)
        y = imgs * 2 - 1
        low = F.interpolate(y, size=self.sizes.decoder_size, mode="bilinear", antialias=True, align_corners=False)
        up = F.interpolate(degrade(low), size=self.sizes.sr_size, mode="bicubic", antialias=True, align_corners=False)
        t = self.randint(self.max_t or self.sch.T, len(y))
        noise = self.randn(y.shape)
        # x0 target (models.SR_PREDICTION_TYPE) with uniform weight: the high-noise steps, which fix colours and
        # layout, keep their share of the gradient, and the first step's estimate is the network's output, not
        # amplified noise. (Until step 2,916 the shipped SR was an eps model with the decoder's weighting.)
        with self.autocast():
            out = self.modules["sr"](torch.cat([self.sch.q_sample(y, t, noise), up], 1), t).sample.float()
        loss = (out - y).pow(2).mean()
        return loss, {"loss": loss.item()}


class SuperResLastStage(SuperResStage):
    name = "sr_last"
    max_t = SR_LAST_MAX_T

    def on_fresh_start(self) -> None:
        # Start from super_res_first's EMA weights; fine-tune on the last (t < 50) steps only.
        p = ckpt_path(self.run_dir, "sr")
        if p.is_file():
            ck = torch.load(p, weights_only=False, map_location="cpu")
            self.modules["sr"].load_state_dict(ck["ema"]["sr"]["shadow"])
            self.emas["sr"] = EMA(self.modules["sr"])
            self.opt = torch.optim.AdamW(self.params(), lr=LR[self.name], weight_decay=0.01, betas=(0.9, 0.99))
            log(self.run_dir, "sr_last: initialised from sr EMA")


STAGE_CLASSES = {c.name: c for c in (ClipStage, PriorStage, DecoderStage, SuperResStage, SuperResLastStage)}


def parse_plan(plan: str) -> list[tuple[str, float]]:
    out = []
    for part in plan.split(","):
        name, _, minutes = part.partition("=")
        name = name.strip()
        if name not in STAGE_CLASSES:
            raise ValueError(f"--plan: unknown stage {name!r} (stages: {', '.join(STAGES)})")
        try:
            out.append((name, float(minutes)))
        except ValueError:
            raise ValueError(f"--plan: {part!r} needs minutes, e.g. {name}=10") from None
    return out


def train_plan(plan: list[tuple[str, float]], run_dir: Path = RUN_DIR, data_dir: Path = DATA_DIR, seed: int = 0,
               max_steps: int | None = None, budgets: dict[str, float] | None = None,
               precision: str = "auto", device: str = "cpu", batches: dict[str, int] | None = None,
               data: EmojiData | None = None) -> None:
    """Train each (stage, minutes) in order; `budgets` (whole minutes per stage) turn on the lr cool-down;
    `batches` overrides BATCH per stage (a recipe change)."""
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    if torch.device(device).type == "cpu":
        torch.set_num_threads(int(os.environ.get("EMOJI_THREADS", "2")))
    run_dir.mkdir(parents=True, exist_ok=True)
    data = data if data is not None else EmojiData(data_dir)
    sizes = run_sizes(run_dir)
    for name, minutes in plan:
        if minutes <= 0:
            continue
        if name == "clip" and (run_dir / "clip_frozen").exists():
            log(run_dir, "clip: frozen (downstream stages were trained on it), skipped")
            continue
        batch = (batches or {}).get(name)
        where = "" if device == "cpu" else f", {device_name(device)}"
        log(run_dir, f"{name}: training for {minutes:.1f} min (seed {seed}, {precision}{where}"
                     + (f", batch {batch}" if batch else "") + ")")
        STAGE_CLASSES[name](run_dir, data, sizes, seed, precision, device, batch).train(
            minutes, max_steps=max_steps, budget_minutes=(budgets or {}).get(name))


def remaining_plan(budget: dict[str, float], run_dir: Path = RUN_DIR) -> list[tuple[str, float]]:
    """Per stage, its budget in minutes less what its checkpoint has already trained (never negative)."""
    done = stage_summary(run_dir)
    return [(k, max(0.0, m - (done[k]["minutes"] if k in done else 0.0))) for k, m in budget.items()]


def stage_summary(run_dir: Path = RUN_DIR) -> dict:
    out = {}
    for s in STAGES:
        p = ckpt_path(run_dir, s)
        if p.is_file():
            ck = torch.load(p, weights_only=False, map_location="cpu")
            out[s] = {"steps": ck["step"], "minutes": round(ck["elapsed"] / 60, 1), "batch": ck.get("batch", BATCH[s]),
                      # of the last chunk trained; checkpoints older than this field were all fp32
                      "precision": ck.get("precision", "fp32")}
            if "device" in ck:       # the last chunk's device, when not the CPU (e.g. "NVIDIA H200")
                out[s]["device"] = ck["device"]
    return out
