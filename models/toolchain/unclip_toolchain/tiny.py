"""Tiny reference pack + parity fixture.

    python -m unclip_toolchain.tiny --seed 0 --out-pack test/fixtures/tiny-pack --out-fixture test/fixtures/tiny-fixture
    python -m unclip_toolchain.tiny --from-fixture test/fixtures/tiny-fixture/fixture.json --out-pack ... --out-fixture ...
    python -m unclip_toolchain.tiny --pipeline DIR --stages text,prior,text_proj --out-pack PACK --out-fixture OUT
        (an existing pipeline folder, e.g. a full-size Karlo, exported to PACK: its text-to-image case up to text_proj)

1. builds a tiny random unCLIP (tiny_models.py) and saves it as two diffusers pipeline folders in a temp dir
   (UnCLIPPipeline + UnCLIPImageVariationPipeline, the layout of kakaobrain/karlo-v1-alpha[-image-variations]);
2. exports them with the exporter (export.py) to --out-pack;
3. runs diffusers' own UnCLIPPipeline / UnCLIPImageVariationPipeline, loaded back from those folders, with ALL noise
   injected (initial latents as pipeline arguments, per-step noise by replacing the scheduler's `randn_tensor` with
   a queue of pre-drawn tensors), and records inputs, noise and every stage output (fixture format: models/README.md);
4. runs both again with every network in float64 on the same noise and records, per case, the max abs difference
   of each compared stage from the float32 run ("float64_discrepancy"): the reference's own fidelity floor, which
   `unclip parity` accepts twice of where float32 rounding is amplified beyond its 2e-3 tolerance.

Every argument is stored in fixture.json so the fixture can be rebuilt byte-identically with --from-fixture.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import PackError, run_cli

FIXTURE_FORMAT = 1
DEFAULT_PROMPTS = ["a red rocket, twemoji style", "🚀 Café über ☕️ — 東京の夜 ✨ (emoji + unicode!)"]


# --------------------------------------------------------------------------------------------------------------------
# Noise injection and capture


class NoiseQueue:
    """Stands in for diffusers' `randn_tensor` inside the UnCLIPScheduler: hands out pre-drawn noise in order."""

    def __init__(self, tensors: list) -> None:
        self.tensors = list(tensors)

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        if not self.tensors:
            raise RuntimeError("scheduler asked for more noise than was injected")
        t = self.tensors.pop(0)
        if tuple(t.shape) != tuple(shape):
            raise RuntimeError(f"injected noise has shape {tuple(t.shape)}, scheduler wants {tuple(shape)}")
        return t.clone().to(dtype=dtype)


def _forbidden_randn(*_a, **_k):
    raise RuntimeError("pipeline drew its own latents: every latent must be injected")


@contextlib.contextmanager
def injected(noise: list, capture: dict):
    """Patch randn_tensor (scheduler: noise queue; pipelines: forbidden) and F.interpolate (capture in/out)."""
    import diffusers.pipelines.deprecated.unclip.pipeline_unclip as p_t2i
    import diffusers.pipelines.deprecated.unclip.pipeline_unclip_image_variation as p_iv
    import diffusers.schedulers.scheduling_unclip as sch
    import torch.nn.functional as F

    queue = NoiseQueue(noise)

    class _F:
        """The pipelines' `F` (torch.nn.functional) with interpolate recorded; the UNets' own F is untouched."""

        def __getattr__(self, name):
            return getattr(F, name)

        @staticmethod
        @functools.wraps(F.interpolate)  # keeps the signature: the pipeline inspects it for `antialias`
        def interpolate(x, *a, **k):
            y = F.interpolate(x, *a, **k)
            capture["decoder_image"] = x.detach().clone()
            capture["upscaled"] = y.detach().clone()
            return y

    saved = (sch.randn_tensor, p_t2i.randn_tensor, p_iv.randn_tensor, p_t2i.F, p_iv.F)
    sch.randn_tensor = queue
    p_t2i.randn_tensor = _forbidden_randn
    p_iv.randn_tensor = _forbidden_randn
    p_t2i.F = p_iv.F = _F()
    try:
        yield queue
    finally:
        sch.randn_tensor, p_t2i.randn_tensor, p_iv.randn_tensor, p_t2i.F, p_iv.F = saved
    if queue.tensors:
        raise RuntimeError(f"{len(queue.tensors)} injected noise tensors were not used")


def _hooks(pipe, capture: dict) -> list:
    """Forward hooks recording the text encoder, image encoder and text_proj calls; scheduler step trajectories."""
    handles = []
    capture.setdefault("text_calls", [])

    def text_hook(_m, args, kwargs, out):
        ids = args[0] if args else kwargs["input_ids"]
        capture["text_calls"].append((ids.clone(), out.text_embeds.clone(), out.last_hidden_state.clone()))

    handles.append(pipe.text_encoder.register_forward_hook(text_hook, with_kwargs=True))

    def proj_hook(_m, _args, kwargs, out):
        capture["image_embeddings"] = kwargs["image_embeddings"].clone()
        capture["text_proj_encoder_hidden_states"] = out[0].clone()
        capture["text_proj_additive_time"] = out[1].clone()

    handles.append(pipe.text_proj.register_forward_hook(proj_hook, with_kwargs=True))

    if getattr(pipe, "image_encoder", None) is not None:
        def image_hook(_m, args, kwargs, out):
            capture["pixel_values"] = (args[0] if args else kwargs["pixel_values"]).clone()
            capture["image_encoder_embeds"] = out.image_embeds.clone()

        handles.append(pipe.image_encoder.register_forward_hook(image_hook, with_kwargs=True))

    for stage in ("prior", "decoder", "super_res"):
        sched = getattr(pipe, f"{stage}_scheduler", None)
        if sched is None:
            continue
        traj = capture.setdefault(f"{stage}_trajectory", [])
        orig = sched.step

        def step(*a, _orig=orig, _traj=traj, **k):
            out = _orig(*a, **k)
            _traj.append(out.prev_sample.clone())
            return out

        sched.step = step
    return handles


# --------------------------------------------------------------------------------------------------------------------
# Reference runs


def _timesteps(scheduler, n: int) -> list[int]:
    scheduler.set_timesteps(n)
    return [int(t) for t in scheduler.timesteps]


def _draw(gen, shape):
    import torch

    return torch.randn(shape, generator=gen, dtype=torch.float32)


def _tokenize(tok, texts):
    enc = tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def _noise(gen, given, stages, ts, shapes, dtype):
    """Initial latents and per-step noise of each stage, drawn in the pipeline's own generator order (dossier §2.6)
    or, with `given` (an earlier run's tensors), the same values again in `dtype`; the per-step noise also as the
    scheduler's queue."""
    tensors: dict = {}
    noise: list = []
    draw = (lambda key, shape: given[key].to(dtype)) if given is not None else (lambda key, shape: _draw(gen, shape))
    for stage in stages:
        tensors[f"{stage}_latents"] = draw(f"{stage}_latents", shapes[stage])
        for i, t in enumerate(ts[stage]):
            if t > 0:
                tensors[f"{stage}_noise/{i}"] = draw(f"{stage}_noise/{i}", shapes[stage])
                noise.append(tensors[f"{stage}_noise/{i}"])
    return tensors, noise


def run_text2img(pipe, a, gen, given: dict | None = None) -> tuple[dict, dict]:
    """diffusers' UnCLIPPipeline with all noise injected: drawn from `gen`, or `given` (a float64 re-run)."""
    import torch

    P, n = len(a.prompts), a.n
    B = P * n
    E = pipe.prior.config.embedding_dim
    D = pipe.decoder.config.sample_size
    O = pipe.super_res_first.config.sample_size
    ts = {s: _timesteps(getattr(pipe, f"{s}_scheduler"), k) for s, k in
          (("prior", a.steps_prior), ("decoder", a.steps_decoder), ("super_res", a.steps_sr))}
    tensors, noise = _noise(gen, given, ("prior", "decoder", "super_res"), ts,
                            {"prior": (B, E), "decoder": (B, 3, D, D), "super_res": (B, 3, O, O)}, pipe.prior.dtype)

    cap: dict = {}
    handles = _hooks(pipe, cap)
    try:
        with injected(noise, cap), torch.no_grad():
            out = pipe(prompt=list(a.prompts), num_images_per_prompt=n, prior_num_inference_steps=a.steps_prior,
                       decoder_num_inference_steps=a.steps_decoder, super_res_num_inference_steps=a.steps_sr,
                       prior_latents=tensors["prior_latents"].clone(),
                       decoder_latents=tensors["decoder_latents"].clone(),
                       super_res_latents=tensors["super_res_latents"].clone(),
                       prior_guidance_scale=a.guidance_prior, decoder_guidance_scale=a.guidance_decoder,
                       output_type="np")
    finally:
        for h in handles:
            h.remove()
    do_cfg = a.guidance_prior > 1.0 or a.guidance_decoder > 1.0
    ids, mask = _tokenize(pipe.tokenizer, list(a.prompts))
    uids, umask = _tokenize(pipe.tokenizer, [""])
    calls = cap["text_calls"]
    if not torch.equal(calls[0][0], ids):
        raise RuntimeError("pipeline tokenized the prompts differently from the recorded ids")
    tensors["text_embeds"] = calls[0][1].repeat_interleave(n, dim=0)
    tensors["last_hidden_state"] = calls[0][2].repeat_interleave(n, dim=0)
    if do_cfg:
        if not torch.equal(calls[1][0][0], uids[0]):
            raise RuntimeError("pipeline tokenized the empty prompt differently")
        tensors["uncond_text_embeds"] = calls[1][1][:1]
        tensors["uncond_last_hidden_state"] = calls[1][2][:1]
    for key in ("image_embeddings", "text_proj_encoder_hidden_states", "text_proj_additive_time", "decoder_image",
                "upscaled"):
        tensors[key] = cap[key]
    for stage in ("prior", "decoder", "super_res"):
        for i, x in enumerate(cap[f"{stage}_trajectory"]):
            tensors[f"{stage}_trajectory/{i}"] = x
    tensors["image"] = cap["super_res_trajectory"][-1]
    if given is None:
        _check_final(out.images, tensors["image"])
    case = {
        "name": "text2img", "kind": "text_to_image", "prompts": list(a.prompts), "num_images_per_prompt": n,
        "do_classifier_free_guidance": do_cfg,
        "input_ids": ids.tolist(), "attention_mask": mask.tolist(),
        "uncond_input_ids": uids[0].tolist(), "uncond_attention_mask": umask[0].tolist(),
        "prior_steps": a.steps_prior, "decoder_steps": a.steps_decoder, "super_res_steps": a.steps_sr,
        "prior_guidance": a.guidance_prior, "decoder_guidance": a.guidance_decoder,
        "prior_timesteps": ts["prior"], "decoder_timesteps": ts["decoder"], "super_res_timesteps": ts["super_res"],
    }
    return case, tensors


class _StopAfterTextProj(Exception):
    """Raised right after text_proj's capture hook: ends a prefix run (--stages text,prior,text_proj)."""


def run_text2img_prefix(pipe, a, gen, given: dict | None = None) -> tuple[dict, dict]:
    """run_text2img's text encoder, prior and text_proj stages only (prior noise injected, guidance as given): the
    pipeline is stopped right after text_proj, so no decoder/super-resolution noise is drawn and those networks are
    neither run nor needed (they may be None). The roles recorded equal run_text2img's for the same `gen`."""
    import torch

    P, n = len(a.prompts), a.n
    B = P * n
    E = pipe.prior.config.embedding_dim
    ts = {"prior": _timesteps(pipe.prior_scheduler, a.steps_prior)}
    tensors, noise = _noise(gen, given, ("prior",), ts, {"prior": (B, E)}, pipe.prior.dtype)

    def stop(*_a, **_k):
        raise _StopAfterTextProj

    cap: dict = {}
    handles = _hooks(pipe, cap)
    handles.append(pipe.text_proj.register_forward_hook(stop))  # hooks run in order: after the capture
    try:
        with injected(noise, cap), torch.no_grad():
            try:
                pipe(prompt=list(a.prompts), num_images_per_prompt=n, prior_num_inference_steps=a.steps_prior,
                     prior_latents=tensors["prior_latents"].clone(), prior_guidance_scale=a.guidance_prior,
                     decoder_guidance_scale=a.guidance_decoder, output_type="np")
            except _StopAfterTextProj:
                pass
            else:
                raise RuntimeError("pipeline returned without calling text_proj")
    finally:
        for h in handles:
            h.remove()
    do_cfg = a.guidance_prior > 1.0 or a.guidance_decoder > 1.0
    ids, mask = _tokenize(pipe.tokenizer, list(a.prompts))
    uids, umask = _tokenize(pipe.tokenizer, [""])
    calls = cap["text_calls"]
    if not torch.equal(calls[0][0], ids):
        raise RuntimeError("pipeline tokenized the prompts differently from the recorded ids")
    tensors["text_embeds"] = calls[0][1].repeat_interleave(n, dim=0)
    tensors["last_hidden_state"] = calls[0][2].repeat_interleave(n, dim=0)
    if do_cfg:
        if not torch.equal(calls[1][0][0], uids[0]):
            raise RuntimeError("pipeline tokenized the empty prompt differently")
        tensors["uncond_text_embeds"] = calls[1][1][:1]
        tensors["uncond_last_hidden_state"] = calls[1][2][:1]
    for key in ("image_embeddings", "text_proj_encoder_hidden_states", "text_proj_additive_time"):
        tensors[key] = cap[key]
    for i, x in enumerate(cap["prior_trajectory"]):
        tensors[f"prior_trajectory/{i}"] = x
    case = {
        "name": "text2img", "kind": "text_to_image", "stages": PREFIX_STAGES.split(","),
        "prompts": list(a.prompts), "num_images_per_prompt": n, "do_classifier_free_guidance": do_cfg,
        "input_ids": ids.tolist(), "attention_mask": mask.tolist(),
        "uncond_input_ids": uids[0].tolist(), "uncond_attention_mask": umask[0].tolist(),
        "prior_steps": a.steps_prior, "prior_guidance": a.guidance_prior, "decoder_guidance": a.guidance_decoder,
        "prior_timesteps": ts["prior"],
    }
    return case, tensors


def make_input_image(seed: int, width: int = 48, height: int = 40):
    """A deterministic non-square RGB test picture (gradients + a disc), so resize and centre crop both matter."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / (width - 1)
    g = 255 * y / (height - 1)
    b = np.where((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (height * 0.3) ** 2, 230.0, 40.0)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")


def run_variation(pipe, a, gen, image, given: dict | None = None) -> tuple[dict, dict]:
    """diffusers' UnCLIPImageVariationPipeline with all noise injected (as run_text2img)."""
    import torch

    n = a.n
    B = n
    D = pipe.decoder.config.sample_size
    O = pipe.super_res_first.config.sample_size
    ts = {s: _timesteps(getattr(pipe, f"{s}_scheduler"), k) for s, k in
          (("decoder", a.steps_decoder), ("super_res", a.steps_sr))}
    tensors, noise = _noise(gen, given, ("decoder", "super_res"), ts,
                            {"decoder": (B, 3, D, D), "super_res": (B, 3, O, O)}, pipe.decoder.dtype)
    cap: dict = {}
    handles = _hooks(pipe, cap)
    try:
        with injected(noise, cap), torch.no_grad():
            out = pipe(image=image, num_images_per_prompt=n, decoder_num_inference_steps=a.steps_decoder,
                       super_res_num_inference_steps=a.steps_sr, decoder_latents=tensors["decoder_latents"].clone(),
                       super_res_latents=tensors["super_res_latents"].clone(),
                       decoder_guidance_scale=a.guidance_decoder, output_type="np")
    finally:
        for h in handles:
            h.remove()
    do_cfg = a.guidance_decoder > 1.0
    uids, umask = _tokenize(pipe.tokenizer, [""])
    calls = cap["text_calls"]
    tensors["pixel_values"] = cap["pixel_values"]
    tensors["text_embeds"] = calls[0][1].repeat_interleave(n, dim=0)
    tensors["last_hidden_state"] = calls[0][2].repeat_interleave(n, dim=0)
    for key in ("image_embeddings", "text_proj_encoder_hidden_states", "text_proj_additive_time", "decoder_image",
                "upscaled"):
        tensors[key] = cap[key]
    for stage in ("decoder", "super_res"):
        for i, x in enumerate(cap[f"{stage}_trajectory"]):
            tensors[f"{stage}_trajectory/{i}"] = x
    tensors["image"] = cap["super_res_trajectory"][-1]
    if given is None:
        _check_final(out.images, tensors["image"])
    case = {
        "name": "variation", "kind": "image_variation", "input_image": "variation_input.png",
        "num_images_per_prompt": n, "do_classifier_free_guidance": do_cfg,
        "prompts": [""], "input_ids": uids.tolist(), "attention_mask": umask.tolist(),
        "uncond_input_ids": uids[0].tolist(), "uncond_attention_mask": umask[0].tolist(),
        "decoder_steps": a.steps_decoder, "super_res_steps": a.steps_sr, "decoder_guidance": a.guidance_decoder,
        "decoder_timesteps": ts["decoder"], "super_res_timesteps": ts["super_res"],
    }
    return case, tensors


# Roles the parity tool compares (main/engine/parity.ts), each with the reference's float32-vs-float64 discrepancy.
FLOOR_ROLES = ("text_embeds", "last_hidden_state", "uncond_text_embeds", "pixel_values", "image_embeddings",
               "text_proj_encoder_hidden_states", "text_proj_additive_time", "decoder_image", "upscaled", "image")


def _to_float64(pipes) -> None:
    import torch

    for pipe in pipes:
        for comp in pipe.components.values():
            if isinstance(comp, torch.nn.Module):
                comp.to(torch.float64)


def float64_discrepancy(f32: dict, f64: dict) -> dict:
    """Max abs difference per role between the float32 reference and the same run in float64: how far the reference
    itself is from its own exact result, the floor below which no float32 port can be judged (at t = 999, x0 multiplies
    ε's rounding by 1/√ᾱ ≈ 2e4 wherever it is not clamped)."""
    return {role: float((f32[role].double() - f64[role].double()).abs().max()) for role in FLOOR_ROLES
            if role in f32 and role in f64}


def _check_final(np_images, image):
    import numpy as np

    expect = np.clip(image.numpy() * 0.5 + 0.5, 0, 1).transpose(0, 2, 3, 1)
    if not np.array_equal(expect, np_images):
        raise RuntimeError("captured final latents do not match the pipeline's output image")


# --------------------------------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m unclip_toolchain.tiny", description=__doc__.split("\n")[0])
    p.add_argument("--out-pack", required=True, type=Path)
    p.add_argument("--out-fixture", required=True, type=Path)
    p.add_argument("--from-fixture", type=Path, help="rebuild with the arguments recorded in this fixture.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=16,
                   help="CLIP width = embedding dim (diffusers tests: 32; 16 keeps the 49408-token embedding table < 5 MB)")
    p.add_argument("--layers", type=int, default=5, help="CLIP text/vision encoder layers (diffusers tests: 5)")
    p.add_argument("--prior-layers", type=int, default=1, help="prior transformer layers (diffusers tests: 1)")
    p.add_argument("--prompts", nargs="+", default=DEFAULT_PROMPTS)
    p.add_argument("--n", type=int, default=2, help="num_images_per_prompt")
    p.add_argument("--steps-prior", type=int, default=3)
    p.add_argument("--steps-decoder", type=int, default=3)
    p.add_argument("--steps-sr", type=int, default=3)
    p.add_argument("--guidance-prior", type=float, default=4.0)
    p.add_argument("--guidance-decoder", type=float, default=8.0)
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the exporter's onnx-vs-torch check")
    p.add_argument("--pipeline", type=Path,
                   help="record the fixture on this diffusers UnCLIPPipeline folder (e.g. a full-size Karlo) instead "
                        "of a tiny random one; nothing is built or exported: --out-pack names the pack already "
                        "exported from it. Needs --stages " + PREFIX_STAGES)
    p.add_argument("--stages", choices=("all", PREFIX_STAGES), default="all",
                   help="'all' (default): both cases, every stage; '" + PREFIX_STAGES + "' (with --pipeline): the "
                        "text-to-image case up to text_proj only (no decoder or super-resolution is loaded or run)")
    return p


PREFIX_STAGES = "text,prior,text_proj"
# Recorded in fixture.json's args only when given (so fixtures built without them stay byte-identical).
EXTRA_ARG_KEYS = ("pipeline", "stages")

ARG_KEYS = ("seed", "width", "layers", "prior_layers", "prompts", "n", "steps_prior", "steps_decoder", "steps_sr",
            "guidance_prior", "guidance_decoder")


def _apply_fixture_args(a) -> None:
    path = a.from_fixture
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PackError(path, f"cannot read ({e})") from e
    if data.get("format") != FIXTURE_FORMAT:
        raise PackError(path, f"fixture format is {data.get('format')!r}, expected {FIXTURE_FORMAT}")
    recorded = data.get("args", {})
    missing = [k for k in ARG_KEYS if k not in recorded]
    if missing:
        raise PackError(path, f"args lacks {', '.join(missing)}")
    for k in ARG_KEYS:
        setattr(a, k, recorded[k])
    a.pipeline = Path(recorded["pipeline"]) if recorded.get("pipeline") else None
    a.stages = recorded.get("stages", "all")


def _validate(a) -> None:
    for k in ("steps_prior", "steps_decoder", "steps_sr"):
        if getattr(a, k) < 2:
            raise PackError(f"--{k.replace('_', '-')}", "must be at least 2 (UnCLIPScheduler divides by steps-1)")
    if a.n < 1 or a.width < 4 or a.width % 4 or a.layers < 1 or a.prior_layers < 1:
        raise PackError("arguments", "n, layers, prior-layers must be >= 1 and width a multiple of 4")
    if (getattr(a, "pipeline", None) is not None) != (getattr(a, "stages", "all") == PREFIX_STAGES):
        raise PackError("--pipeline", f"goes with --stages {PREFIX_STAGES} (and that stage subset with --pipeline)")


def build(a, log=print, keep_pipelines: Path | None = None) -> dict:
    """Build pack + fixture for the arguments `a`; `keep_pipelines` copies the diffusers folders there (tests)."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from . import export as exporter
    from .tiny_models import build_pipelines, build_tiny_components

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    out_pack, out_fix = Path(a.out_pack).resolve(), Path(a.out_fixture).resolve()
    work = Path(tempfile.mkdtemp(prefix="unclip-tiny-"))
    fix_tmp = None
    try:
        comps = build_tiny_components(a.seed, a.width, a.layers, a.prior_layers)
        t2i, iv = build_pipelines(comps)
        t2i.save_pretrained(work / "pipeline", safe_serialization=True)
        iv.save_pretrained(work / "image_variation", safe_serialization=True)
        del t2i, iv, comps
        for folder in ("pipeline", "image_variation"):
            _hub_model_index(work / folder / "model_index.json")

        eargs = exporter.build_parser().parse_args([
            "--pipeline", str(work / "pipeline"), "--image-variation", str(work / "image_variation"),
            "--out", str(out_pack), "--name", "tiny-reference", "--force",
            "--title", "Tiny random unCLIP (parity tests only)",
            "--description", "Random weights with the dimensions of diffusers' unCLIP tests; makes noise, not pictures."
                              " Built by `python -m unclip_toolchain.tiny`.",
            "--license", "Apache-2.0",
            "--attribution", "Random weights made by unCLIP Studio's toolchain; architecture from diffusers' unCLIP "
                             "tests (Apache-2.0); CLIP BPE vocabulary by OpenAI (MIT).",
            "--source-pipeline", "tiny-random", "--source-image-variation", "tiny-random",
            "--prior-steps", str(a.steps_prior), "--decoder-steps", str(a.steps_decoder),
            "--super-res-steps", str(a.steps_sr), "--prior-guidance", str(a.guidance_prior),
            "--decoder-guidance", str(a.guidance_decoder),
        ] + ([] if a.check else ["--no-check"]))
        log(f"exporting tiny pack -> {out_pack}")
        lp = exporter.load_pipeline(eargs.pipeline, eargs.image_variation)
        report = exporter.write_pack(lp, out_pack, eargs, log=log)
        del lp

        t2i, iv = load_reference_pipelines(work / "pipeline", work / "image_variation")
        for p in (t2i, iv):
            p.set_progress_bar_config(disable=True)
        gen = torch.Generator().manual_seed(a.seed + 1)
        case1, t1 = run_text2img(t2i, a, gen)
        image = make_input_image(a.seed)
        case2, t2 = run_variation(iv, a, gen, image)
        # the reference's own fidelity floor: the same runs, same noise, every network in float64
        _to_float64((t2i, iv))
        case1["float64_discrepancy"] = float64_discrepancy(t1, run_text2img(t2i, a, None, given=t1)[1])
        case2["float64_discrepancy"] = float64_discrepancy(t2, run_variation(iv, a, None, image, given=t2)[1])

        tensors = {}
        for case, ts in ((case1, t1), (case2, t2)):
            case["tensors"] = {role: f"{case['name']}/{role}" for role in ts}
            for role, t in ts.items():
                tensors[f"{case['name']}/{role}"] = t.detach().to(torch.float32).clone().contiguous()
        out_fix.parent.mkdir(parents=True, exist_ok=True)
        fix_tmp = Path(tempfile.mkdtemp(prefix=f".{out_fix.name}.partial-", dir=out_fix.parent))
        fix_tmp.chmod(0o755)
        save_file(tensors, str(fix_tmp / "fixture.safetensors"), metadata={"format": str(FIXTURE_FORMAT)})
        image.save(fix_tmp / "variation_input.png", optimize=False)
        fixture = {
            "format": FIXTURE_FORMAT,
            "pack": os.path.relpath(out_pack, out_fix),
            "description": "Reference outputs of diffusers' UnCLIPPipeline / UnCLIPImageVariationPipeline on the tiny "
                           "pack's weights with all noise injected. Built by `python -m unclip_toolchain.tiny`.",
            "args": {k: getattr(a, k) for k in ARG_KEYS},
            "environment": _versions(),
            "cases": [case1, case2],
        }
        (fix_tmp / "fixture.json").write_text(compact_json(fixture), encoding="utf-8")
        (fix_tmp / "fixture.safetensors").chmod(0o644)
        if out_fix.exists():
            shutil.rmtree(out_fix)
        fix_tmp.rename(out_fix)
        fix_tmp = None
        log(f"wrote {out_fix} ({sum(p.stat().st_size for p in out_fix.iterdir()) / 1e6:.2f} MB), "
            f"pack {report['bytes'] / 1e6:.2f} MB")
        report["fixture_tensors"] = {k: list(v.shape) for k, v in tensors.items()}
        report["image_range"] = [float(np.min(t1["image"].numpy())), float(np.max(t1["image"].numpy()))]
        return report
    finally:
        if keep_pipelines is not None and work.exists():
            shutil.copytree(work, keep_pipelines, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        if fix_tmp is not None:
            shutil.rmtree(fix_tmp, ignore_errors=True)


def build_prefix(a, log=print) -> dict:
    """--pipeline DIR --stages text,prior,text_proj: the text-to-image case up to text_proj, on DIR's own weights
    (only the text encoder, tokenizer, text_proj, prior and its scheduler are loaded), then the same run in float64
    for the floor; the fixture points at the already exported --out-pack."""
    import time

    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    out_pack, out_fix = Path(a.out_pack).resolve(), Path(a.out_fixture).resolve()
    if not (out_pack / "manifest.json").is_file():
        raise PackError(out_pack, "no manifest.json: --out-pack must be the pack exported from --pipeline")
    t0 = time.perf_counter()
    pipe = load_prefix_pipeline(Path(a.pipeline))
    log(f"loaded {a.pipeline} (text encoder, text_proj, prior) in {time.perf_counter() - t0:.0f} s")
    gen = torch.Generator().manual_seed(a.seed + 1)
    t0 = time.perf_counter()
    case, t1 = run_text2img_prefix(pipe, a, gen)
    log(f"float32 run: {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    _to_float64((pipe,))
    case["float64_discrepancy"] = float64_discrepancy(t1, run_text2img_prefix(pipe, a, None, given=t1)[1])
    log(f"float64 run: {time.perf_counter() - t0:.0f} s; floor {case['float64_discrepancy']}")
    del pipe
    case["tensors"] = {role: f"{case['name']}/{role}" for role in t1}
    tensors = {f"{case['name']}/{r}": t.detach().to(torch.float32).clone().contiguous() for r, t in t1.items()}
    out_fix.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_fix / "fixture.safetensors"), metadata={"format": str(FIXTURE_FORMAT)})
    args = {k: getattr(a, k) for k in ARG_KEYS}
    args.update(pipeline=str(Path(a.pipeline).resolve()), stages=a.stages)
    fixture = {
        "format": FIXTURE_FORMAT,
        "pack": os.path.relpath(out_pack, out_fix),
        "description": f"Reference outputs of diffusers' UnCLIPPipeline on {Path(a.pipeline).name}'s weights, stages "
                       f"{a.stages} only, all noise injected. Built by `python -m unclip_toolchain.tiny --pipeline`.",
        "args": args,
        "environment": _versions(),
        "cases": [case],
    }
    (out_fix / "fixture.json").write_text(compact_json(fixture), encoding="utf-8")
    log(f"wrote {out_fix}")
    return {"fixture_tensors": {k: list(v.shape) for k, v in tensors.items()}, "case": case}


def load_prefix_pipeline(pipeline_dir: Path):
    """An UnCLIPPipeline with only the components up to text_proj loaded from `pipeline_dir` (decoder and
    super-resolution None)."""
    import torch
    from diffusers import PriorTransformer, UnCLIPScheduler
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    from .tiny_models import _import_unclip

    *_, UnCLIPPipeline, _, _ = _import_unclip()
    f32 = dict(torch_dtype=torch.float32)
    p = str(pipeline_dir)
    pipe = UnCLIPPipeline(
        prior=PriorTransformer.from_pretrained(p, subfolder="prior", **f32).eval(),
        text_encoder=CLIPTextModelWithProjection.from_pretrained(f"{p}/text_encoder", **f32).eval(),
        tokenizer=CLIPTokenizer.from_pretrained(f"{p}/tokenizer"),
        text_proj=UnCLIPTextProjModel.from_pretrained(p, subfolder="text_proj", **f32).eval(),
        prior_scheduler=UnCLIPScheduler.from_pretrained(p, subfolder="prior_scheduler"),
        decoder=None, super_res_first=None, super_res_last=None, decoder_scheduler=None, super_res_scheduler=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_reference_pipelines(pipeline_dir: Path, variation_dir: Path):
    """Both diffusers pipelines, every component loaded back from the saved folders with from_pretrained.

    DiffusionPipeline.from_pretrained cannot resolve the hub's ["unclip", "UnCLIPTextProjModel"] model_index entry
    in diffusers 0.42, so the components are loaded one by one and handed to the pipeline constructors.
    """
    import torch
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPScheduler
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
    from transformers import (CLIPImageProcessorPil, CLIPTextModelWithProjection, CLIPTokenizer,
                              CLIPVisionModelWithProjection)

    from .tiny_models import build_pipelines

    f32 = dict(torch_dtype=torch.float32)
    p, v = str(pipeline_dir), str(variation_dir)
    comps = dict(
        prior=PriorTransformer.from_pretrained(p, subfolder="prior", **f32).eval(),
        decoder=UNet2DConditionModel.from_pretrained(p, subfolder="decoder", **f32).eval(),
        text_encoder=CLIPTextModelWithProjection.from_pretrained(f"{p}/text_encoder", **f32).eval(),
        tokenizer=CLIPTokenizer.from_pretrained(f"{p}/tokenizer"),
        text_proj=UnCLIPTextProjModel.from_pretrained(p, subfolder="text_proj", **f32).eval(),
        super_res_first=UNet2DModel.from_pretrained(p, subfolder="super_res_first", **f32).eval(),
        super_res_last=UNet2DModel.from_pretrained(p, subfolder="super_res_last", **f32).eval(),
        prior_scheduler=UnCLIPScheduler.from_pretrained(p, subfolder="prior_scheduler"),
        decoder_scheduler=UnCLIPScheduler.from_pretrained(p, subfolder="decoder_scheduler"),
        super_res_scheduler=UnCLIPScheduler.from_pretrained(p, subfolder="super_res_scheduler"),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(f"{v}/image_encoder", **f32).eval(),
        feature_extractor=CLIPImageProcessorPil.from_pretrained(f"{v}/feature_extractor"),
    )
    # The variation folder's decoder/text_proj/super-res are copies of the same modules (saved from one object), so
    # both pipelines share the text-to-image folder's; only the image encoder and its processor come from `v`.
    return build_pipelines(comps)


def compact_json(data) -> str:
    """Indented JSON with arrays of numbers kept on one line (token ids stay readable)."""
    import re

    text = json.dumps(data, indent=1, ensure_ascii=False)
    text = re.sub(r"\[\s*([-+0-9.eE,\s]+?)\s*\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(","))
                  + "]", text)
    return text + "\n"


def _hub_model_index(path: Path) -> None:
    """Write text_proj as the hub's Karlo folders do (["unclip", "UnCLIPTextProjModel"]), so the exporter is
    exercised on the real layout."""
    index = json.loads(path.read_text(encoding="utf-8"))
    index["text_proj"] = ["unclip", "UnCLIPTextProjModel"]
    path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _versions() -> dict:
    import diffusers
    import onnx
    import torch
    import transformers

    return {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "onnx": onnx.__version__,
            "python": ".".join(map(str, sys.version_info[:2]))}


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.from_fixture:
        _apply_fixture_args(a)
    _validate(a)
    if a.pipeline is not None:
        build_prefix(a)
    else:
        build(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
