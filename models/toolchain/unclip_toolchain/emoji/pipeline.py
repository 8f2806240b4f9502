"""EMA checkpoints -> a diffusers UnCLIPPipeline folder (with image encoder) -> a model pack via the toolchain exporter.

    python -m unclip_toolchain.emoji assemble     # models/work/emoji-run/pipeline (save_pretrained layout)
    python -m unclip_toolchain.emoji export       # models/emoji-tiny (python -m unclip_toolchain.export)

The pack gets, besides what the exporter writes (ONNX graphs, tokenizer.json, manifest.json, NOTICE.md,
MODEL_CARD.md from the pipeline's README.md), the dataset attribution and licence texts (ATTRIBUTION.md,
LICENSE-*.txt) and the evaluation contact sheet; they are added to manifest.json's `files` with their sha256.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .attribution import ATTRIBUTION_SHORT, LICENSE_ID, write_attribution
from .models import SR_PREDICTION_TYPE, build_clip, build_decoder, build_prior, build_super_res, build_text_proj
from .sources import RUN_DIR
from .train import STAGES, ckpt_path, run_sizes

PACK_NAME = "emoji-tiny"
PACK_TITLE = "Emoji tiny (unCLIP trained from scratch on open emoji, 64x64)"
PACK_DESCRIPTION = ("A tiny unCLIP (CLIP + prior + decoder 32x32 + super-resolution to 64x64) trained from scratch on "
                    "CPU on Noto, Twemoji and Fluent Emoji Flat images with CLDR captions. Small-model quality: "
                    "simplified emoji shapes in the right colours and layouts; the prompted concept is among CLIP's "
                    "top 5 for about half of prompts.")
# Pack defaults, also used by the evaluation: fewer steps than Karlo's 25/25/7 keep a CPU generation short; the
# decoder's learned variance is what makes 15 steps usable (improved DDPM). The x0 super-resolution is nearly a
# deterministic regression: on 200 clean 32 px downsamples the shipped one scored PSNR 29.56 / 29.54 / 29.52 /
# 29.49 dB and CLIP cosine 0.9966 / 0.9966 / 0.9966 / 0.9965 to the originals at 2 / 3 / 4 / 7 steps (bicubic:
# 26.01 dB), so 2 steps, the scheduler's minimum, at 2/7 of the cost.
DEFAULTS = {"prior_steps": 10, "decoder_steps": 15, "super_res_steps": 2, "prior_guidance": 4.0,
            "decoder_guidance": 8.0}
EXTRA_FILES = ("ATTRIBUTION.md", "LICENSE-Apache-2.0.txt", "LICENSE-CC-BY-4.0.txt", "LICENSE-MIT.txt",
               "contact-sheet.png", "eval.json")


def pipeline_dir(run_dir: Path = RUN_DIR) -> Path:
    return run_dir / "pipeline"


def _ema(run_dir: Path, stage: str) -> dict:
    p = ckpt_path(run_dir, stage)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: stage {stage} has no checkpoint; train it first")
    return torch.load(p, weights_only=False, map_location="cpu")["ema"]


def image_processor(size: int):
    """The image variation pipeline's feature extractor (CLIP preprocessing at the image encoder's size)."""
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def build_components(run_dir: Path = RUN_DIR) -> dict:
    """All modules with their EMA weights (sr_last falls back to sr's weights when it was never trained)."""
    from diffusers import UnCLIPScheduler

    from ..clip_tokenizer import build_fast_tokenizer

    s = run_sizes(run_dir)
    text, vision = build_clip(s, 0)
    clip = _ema(run_dir, "clip")
    text.load_state_dict(clip["text"]["shadow"])
    vision.load_state_dict(clip["vision"]["shadow"])
    prior = build_prior(s, 0)
    prior.load_state_dict(_ema(run_dir, "prior")["prior"]["shadow"])
    dec = _ema(run_dir, "decoder")
    decoder, text_proj = build_decoder(s, 0), build_text_proj(s, 0)
    decoder.load_state_dict(dec["decoder"]["shadow"])
    text_proj.load_state_dict(dec["text_proj"]["shadow"])
    sr_first, sr_last = build_super_res(s, 0), build_super_res(s, 0)
    sr_first.load_state_dict(_ema(run_dir, "sr")["sr"]["shadow"])
    last_stage = "sr_last" if ckpt_path(run_dir, "sr_last").is_file() else "sr"
    sr_last.load_state_dict(_ema(run_dir, last_stage)["sr"]["shadow"])
    comps = dict(
        prior=prior, decoder=decoder, text_encoder=text, tokenizer=build_fast_tokenizer(), text_proj=text_proj,
        super_res_first=sr_first, super_res_last=sr_last,
        prior_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample",
                                        num_train_timesteps=1000, clip_sample_range=5.0),
        decoder_scheduler=UnCLIPScheduler(variance_type="learned_range", prediction_type="epsilon",
                                          num_train_timesteps=1000),
        super_res_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type=SR_PREDICTION_TYPE,
                                            num_train_timesteps=1000),
        image_encoder=vision,
        feature_extractor=image_processor(s.image),
    )
    for k, v in comps.items():
        if isinstance(v, torch.nn.Module):
            v.eval().requires_grad_(False)
    return comps


def text_to_image_pipeline(comps: dict):
    from diffusers.pipelines.deprecated.unclip import UnCLIPPipeline

    keys = ("prior", "decoder", "text_encoder", "tokenizer", "text_proj", "super_res_first", "super_res_last",
            "prior_scheduler", "decoder_scheduler", "super_res_scheduler")
    pipe = UnCLIPPipeline(**{k: comps[k] for k in keys})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def assemble(run_dir: Path = RUN_DIR, card: str | None = None) -> Path:
    """save_pretrained the text-to-image pipeline, plus image_encoder/ and feature_extractor/ beside it."""
    comps = build_components(run_dir)
    out = pipeline_dir(run_dir)
    if out.exists():
        shutil.rmtree(out)
    pipe = text_to_image_pipeline(comps)
    pipe.save_pretrained(str(out))
    comps["image_encoder"].save_pretrained(str(out / "image_encoder"))
    comps["feature_extractor"].save_pretrained(str(out / "feature_extractor"))
    index = json.loads((out / "model_index.json").read_text())
    index["image_encoder"] = ["transformers", "CLIPVisionModelWithProjection"]
    index["feature_extractor"] = ["transformers", type(comps["feature_extractor"]).__name__]
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    readme = card if card is not None else _default_card(run_dir)
    (out / "README.md").write_text(readme, encoding="utf-8")
    return out


def _default_card(run_dir: Path) -> str:
    card = run_dir / "MODEL_CARD.md"
    if card.is_file():
        return card.read_text(encoding="utf-8")
    from .card import model_card

    return model_card(run_dir)


def export_pack(run_dir: Path = RUN_DIR, out: Path | None = None, check: bool = True) -> dict:
    """Run the toolchain exporter on the assembled pipeline, then add attribution / licences / eval artefacts."""
    from .. import export as exporter
    from ..manifest import sha256_file, verify_pack

    out = Path(out) if out is not None else Path(__file__).resolve().parents[4] / "models" / PACK_NAME
    src = assemble(run_dir)   # fresh, so README.md (-> MODEL_CARD.md) is the run's current card
    argv = ["--pipeline", str(src), "--out", str(out), "--name", out.name, "--force",
            "--title", PACK_TITLE, "--description", PACK_DESCRIPTION, "--license", LICENSE_ID,
            "--attribution", ATTRIBUTION_SHORT, "--source-pipeline", "unclip-studio/emoji-tiny (trained here)",
            "--prior-steps", str(DEFAULTS["prior_steps"]), "--decoder-steps", str(DEFAULTS["decoder_steps"]),
            "--super-res-steps", str(DEFAULTS["super_res_steps"]),
            "--prior-guidance", str(DEFAULTS["prior_guidance"]), "--decoder-guidance", str(DEFAULTS["decoder_guidance"])]
    if not check:
        argv.append("--no-check")
    args = exporter.build_parser().parse_args(argv)
    lp = exporter.load_pipeline(args.pipeline, args.image_variation)
    report = exporter.write_pack(lp, args.out, args)
    add_extra_files(out, run_dir)
    verify_pack(out)
    report["bytes"] = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    (run_dir / "export_report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"pack {out}: {report['bytes'] / 1e6:.2f} MB")
    return report


def add_extra_files(pack: Path, run_dir: Path) -> None:
    """Attribution/licence texts and eval artefacts (when present) into the pack, listed with sha256 in the manifest."""
    from ..manifest import sha256_file

    write_attribution(pack)
    for name in ("contact-sheet.png", "eval.json", "MODEL_CARD.md"):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, pack / name)
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    for name in (*EXTRA_FILES, "MODEL_CARD.md"):
        if (pack / name).is_file():
            manifest["files"][name] = sha256_file(pack / name)
    manifest["files"] = dict(sorted(manifest["files"].items()))
    (pack / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


__all__ = ["assemble", "export_pack", "build_components", "text_to_image_pipeline", "STAGES"]
