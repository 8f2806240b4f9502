"""Karlo-shaped diffusers folders with seeded random weights (issue 18): the real configurations of
kakaobrain/karlo-v1-alpha and kakaobrain/karlo-v1-alpha-image-variations (dossier §1.2), no downloaded weights.

    python -m unclip_toolchain.karlo build --out DIR [--width-scale S] [--seed N] [--force]

writes DIR/karlo-v1-alpha (an UnCLIPPipeline folder as `save_pretrained` leaves it: model_index.json, one subfolder
per component with config.json + diffusion_pytorch_model.safetensors / model.safetensors, scheduler configs,
tokenizer, a model card) and DIR/karlo-v1-alpha-image-variations (UnCLIPImageVariationPipeline: its own
image_encoder and feature_extractor; the components it shares with the text-to-image pipeline are symbolic links
into the first folder instead of 6 GB of copies). Then convert them with the steps of models/README.md
("Exporting Karlo"), verbatim.

Every component is built, saved and freed before the next, so the peak memory is about the largest component
(the 1.0 B-parameter prior, ~4.1 GB in float32) instead of the 15 GB of the whole pipeline. Component k is seeded
with `seed + k` and does not depend on the others, so any one can be rebuilt alone.

`--width-scale S` (0 < S <= 1) keeps the real layer structure (CLIP 12 / 24 layers, prior 20 layers, decoder and
super-resolution 4 levels x 3 resnets, the same block types, sample sizes 64 and 256, 77 tokens) and scales every
width by S: CLIP and prior heads keep their count with head width round(64 S); UNet channels are
(320, 640, 960, 1280)·S rounded to the group size (32, or 8 below S = 0.1), decoder heads base/5 (or base/4) wide;
CI uses S = 0.1.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from .errors import PackError, run_cli

PIPELINE = "karlo-v1-alpha"
VARIATION = "karlo-v1-alpha-image-variations"
DIFFUSERS_VERSION_NOTE = "random weights with Karlo's configurations, built by unclip_toolchain.karlo"

# What save_pretrained writes into model_index.json, and in the hub's own folders: text_proj is resolved through the
# "unclip" pipeline module (the exporter and tiny.py's reference loader load it by class, see models/README.md).
T2I_INDEX = {
    "decoder": ["diffusers", "UNet2DConditionModel"],
    "decoder_scheduler": ["diffusers", "UnCLIPScheduler"],
    "prior": ["diffusers", "PriorTransformer"],
    "prior_scheduler": ["diffusers", "UnCLIPScheduler"],
    "super_res_first": ["diffusers", "UNet2DModel"],
    "super_res_last": ["diffusers", "UNet2DModel"],
    "super_res_scheduler": ["diffusers", "UnCLIPScheduler"],
    "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
    "text_proj": ["unclip", "UnCLIPTextProjModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
}
IV_INDEX = {
    "decoder": ["diffusers", "UNet2DConditionModel"],
    "decoder_scheduler": ["diffusers", "UnCLIPScheduler"],
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "super_res_first": ["diffusers", "UNet2DModel"],
    "super_res_last": ["diffusers", "UNet2DModel"],
    "super_res_scheduler": ["diffusers", "UnCLIPScheduler"],
    "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
    "text_proj": ["unclip", "UnCLIPTextProjModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
}
SHARED = ("decoder", "decoder_scheduler", "super_res_first", "super_res_last", "super_res_scheduler", "text_encoder",
          "text_proj", "tokenizer")
# build order = seed offset; the largest (prior) first so a machine that cannot hold it fails early
NETWORKS = ("prior", "decoder", "super_res_first", "super_res_last", "text_encoder", "text_proj", "image_encoder")

MODEL_CARD = """---
license: creativeml-openrail-m
tags:
- karlo
- unclip
- random-weights
---
# Karlo-shaped unCLIP with random weights

**Not Karlo.** The diffusers folders of kakaobrain/karlo-v1-alpha{variation} with the same classes and
configurations (widths x{scale}) and seeded random weights (seed {seed}), made by
`python -m unclip_toolchain.karlo build` (unCLIP Studio, models/toolchain) to exercise the large-model path without
the real weights. It generates noise, not pictures. The licence line above mirrors the real model card's front
matter so that the documented conversion steps run unchanged.
"""


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def _rss_gb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    except OSError:
        return float("nan")


def _round_to(x: float, k: int) -> int:
    return max(k, int(round(x / k)) * k)


def configs(scale: float = 1.0) -> dict:
    """Keyword arguments of each component's constructor: Karlo's real ones at scale 1 (dossier §1.2)."""
    if not 0 < scale <= 1:
        raise PackError("--width-scale", f"{scale} must be in (0, 1]")
    real = scale == 1.0
    head = 64 if real else max(2, int(round(64 * scale)))  # per-head width of CLIP, the prior and the decoder
    text_w = 12 * head  # CLIP-L text: 12 heads x 64 = 768 (also the CLIP embedding width E)
    vision_w = 16 * head  # CLIP-L vision: 16 heads x 64 = 1024
    groups = 32 if real or _round_to(320 * scale, 32) == round(320 * scale) else 8
    base = 320 if real else _round_to(320 * scale, groups)
    blocks = tuple(base * m for m in (1, 2, 3, 4))  # (320, 640, 960, 1280)
    cross = 1536 if real else _round_to(1536 * scale, 8)
    # decoder heads: channels / 64 (10, 15, 20) at real size = base / 5 per head; base / 4 when 5 does not divide it
    dec_head = base // 5 if base % 5 == 0 else base // 4
    text = dict(vocab_size=49408, hidden_size=text_w, intermediate_size=4 * text_w, num_hidden_layers=12,
                num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                projection_dim=text_w, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    vision = dict(hidden_size=vision_w, intermediate_size=4 * vision_w, num_hidden_layers=24,
                  num_attention_heads=16, image_size=224, patch_size=14, num_channels=3, hidden_act="quick_gelu",
                  layer_norm_eps=1e-5, projection_dim=text_w)
    # PriorTransformer's defaults are Karlo's prior (hub prior/config.json; convert script PRIOR_CONFIG = {})
    prior = dict(num_attention_heads=32, attention_head_dim=head, num_layers=20, embedding_dim=text_w,
                 num_embeddings=77, additional_embeddings=4, dropout=0.0)
    text_proj = dict(clip_extra_context_tokens=4, clip_embeddings_dim=text_w, time_embed_dim=4 * base,
                     cross_attention_dim=cross)
    decoder = dict(sample_size=64, in_channels=3, out_channels=6, layers_per_block=3,
                   down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                                     "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"),
                   up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                                   "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
                   mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=blocks,
                   cross_attention_dim=cross, attention_head_dim=dec_head, resnet_time_scale_shift="scale_shift",
                   class_embed_type="identity", norm_num_groups=groups)
    super_res = dict(sample_size=256, in_channels=6, out_channels=3, layers_per_block=3,
                     down_block_types=("ResnetDownsampleBlock2D",) * 4, up_block_types=("ResnetUpsampleBlock2D",) * 4,
                     block_out_channels=blocks, add_attention=False, norm_num_groups=groups)
    return dict(text_encoder=text, image_encoder=vision, prior=prior, text_proj=text_proj, decoder=decoder,
                super_res_first=super_res, super_res_last=super_res)


def build_component(name: str, cfg: dict, seed: int):
    """One component in float32 eval mode, deterministic in (name's build order, seed)."""
    import torch

    torch.manual_seed(seed + NETWORKS.index(name))
    gen = torch.Generator().manual_seed(seed + 1000 + NETWORKS.index(name))
    if name == "text_encoder":
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection

        return CLIPTextModelWithProjection(CLIPTextConfig(**cfg)).eval()
    if name == "image_encoder":
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg)).eval()
    if name == "prior":
        from diffusers import PriorTransformer

        m = PriorTransformer(**cfg).eval()
        with torch.no_grad():  # zeros at init would make the prior's output irrelevant (x·0 + 0)
            m.clip_std.copy_(1.0 + 0.1 * torch.rand(m.clip_std.shape, generator=gen))
            m.clip_mean.copy_(0.1 * torch.randn(m.clip_mean.shape, generator=gen))
        return m
    if name == "text_proj":
        from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel

        m = UnCLIPTextProjModel(**cfg).eval()
        with torch.no_grad():  # zeros at init: CFG rows would be indistinguishable
            e = m.learned_classifier_free_guidance_embeddings
            e.copy_(torch.randn(e.shape, generator=gen))
        return m
    if name == "decoder":
        from diffusers import UNet2DConditionModel

        return UNet2DConditionModel(**cfg).eval()
    from diffusers import UNet2DModel

    return UNet2DModel(**cfg).eval()


def schedulers() -> dict:
    from diffusers import UnCLIPScheduler

    return {
        "prior_scheduler": UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample",
                                           num_train_timesteps=1000, clip_sample_range=5.0),
        "decoder_scheduler": UnCLIPScheduler(variance_type="learned_range", prediction_type="epsilon",
                                             num_train_timesteps=1000),
        "super_res_scheduler": UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="epsilon",
                                               num_train_timesteps=1000),
    }


def _model_index(components: dict) -> dict:
    import diffusers

    return {"_class_name": None, "_diffusers_version": diffusers.__version__, **components}


def build(out: Path, scale: float = 1.0, seed: int = 0, force: bool = False, log=print) -> dict:
    """Write DIR/karlo-v1-alpha and DIR/karlo-v1-alpha-image-variations; returns a report (params, bytes, seconds,
    peak RSS per component)."""
    import torch
    from transformers import CLIPImageProcessor

    from .clip_tokenizer import build_fast_tokenizer
    from .errors import quiet_libraries

    torch.set_num_threads(2)
    quiet_libraries()
    out = Path(out).resolve()
    t2i, iv = out / PIPELINE, out / VARIATION
    for d in (t2i, iv):
        if d.exists() and not force:
            raise PackError(d, "already exists (pass --force to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".karlo.partial-", dir=out))
    tmp.chmod(0o755)
    report: dict = {"scale": scale, "seed": seed, "components": {}}
    cfgs = configs(scale)
    try:
        a, b = tmp / PIPELINE, tmp / VARIATION
        a.mkdir()
        b.mkdir()
        for name in NETWORKS:
            t0 = time.perf_counter()
            model = build_component(name, cfgs[name], seed)
            params = sum(p.numel() for p in model.parameters())
            t1 = time.perf_counter()
            target = (b if name == "image_encoder" else a) / name
            model.save_pretrained(str(target), safe_serialization=True)
            rss = _rss_gb()
            del model
            gc.collect()
            size = sum(p.stat().st_size for p in target.iterdir())
            rep = {"params": params, "bytes": size, "build_s": round(t1 - t0, 1),
                   "save_s": round(time.perf_counter() - t1, 1), "rss_gb": round(rss, 2),
                   "peak_rss_gb": round(_peak_rss_gb(), 2)}
            report["components"][name] = rep
            log(f"  {name}: {params / 1e6:.1f} M parameters, {size / 1e9:.3f} GB, built {rep['build_s']} s, "
                f"saved {rep['save_s']} s, RSS {rep['rss_gb']} GB (peak so far {rep['peak_rss_gb']} GB)")
        for key, sched in schedulers().items():
            sched.save_pretrained(str(a / key))
        build_fast_tokenizer().save_pretrained(str(a / "tokenizer"))
        CLIPImageProcessor().save_pretrained(str(b / "feature_extractor"))
        for name in SHARED:  # the variation folder's shared components: links, as a hub snapshot's blobs are
            os.symlink(Path("..") / PIPELINE / name, b / name, target_is_directory=True)
        index = _model_index(T2I_INDEX)
        index["_class_name"] = "UnCLIPPipeline"
        (a / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        index = _model_index(IV_INDEX)
        index["_class_name"] = "UnCLIPImageVariationPipeline"
        (b / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        card = dict(seed=seed, scale="1 (real sizes)" if scale == 1 else f"{scale:g}")
        (a / "README.md").write_text(MODEL_CARD.format(variation="", **card), encoding="utf-8")
        (b / "README.md").write_text(MODEL_CARD.format(variation="-image-variations", **card), encoding="utf-8")
        for d, name in ((t2i, PIPELINE), (iv, VARIATION)):
            if d.is_symlink() or d.is_file():
                d.unlink()
            elif d.exists():
                shutil.rmtree(d)
            (tmp / name).rename(d)
        tmp.rmdir()
        report["params"] = sum(c["params"] for c in report["components"].values())
        report["bytes"] = sum(c["bytes"] for c in report["components"].values())
        report["peak_rss_gb"] = round(_peak_rss_gb(), 2)
        return report
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m unclip_toolchain.karlo", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write Karlo-shaped pipeline folders with random weights")
    b.add_argument("--out", required=True, type=Path, help=f"folder that receives {PIPELINE}/ and {VARIATION}/")
    b.add_argument("--width-scale", type=float, default=1.0, help="scale every width (real layer structure); 1 = real")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true", help="replace existing folders")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if not math.isfinite(a.width_scale):
        raise PackError("--width-scale", "must be a number")
    cfgs = configs(a.width_scale)  # validates the scale before anything is written
    del cfgs
    print(f"building Karlo-shaped folders (width x{a.width_scale:g}, seed {a.seed}) -> {a.out}")
    t0 = time.perf_counter()
    r = build(a.out, a.width_scale, a.seed, a.force)
    print(f"wrote {a.out / PIPELINE} and {a.out / VARIATION}: {r['params'] / 1e9:.3f} B parameters, "
          f"{r['bytes'] / 1e9:.2f} GB, {time.perf_counter() - t0:.0f} s, peak RSS {r['peak_rss_gb']} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
