"""Resume the decoder (with its text_proj) from a pack's weights and train it in chunks, evaluating decode(true z_i)
after each chunk, until the metrics stop improving (issue #19: "more decoder steps remain the lever").

    python -m unclip_toolchain.emoji decoder-curve init     # run dir from the pack's weights (from_pack.py)
    python -m unclip_toolchain.emoji decoder-curve run --every 1000 --patience 3 --minutes 90
    python -m unclip_toolchain.emoji decoder-curve export --step N    # decoder.onnx + text_proj.onnx -> the pack
    python -m unclip_toolchain.emoji decoder-curve refresh-eval       # eval.json's decoder-dependent figures

The same design as prior_curve.py, with the code they share in resume.py:
* init: the pack's CLIP encoders (frozen), decoder and text_proj rebuilt from its ONNX initializers (bit-identical)
  become the run dir's checkpoints (default models/work/decoder-curve), at the pack's step and minutes, with a fresh
  AdamW state, the lr warm-up restarted and a fresh data order.
* run: trains train.py's decoder stage unchanged (lr 3e-4 after the warm-up, AdamW, EMA 0.999, clipping, min-SNR
  hybrid loss, bf16 autocast) `--every` steps at a time; the lr is constant, or with `--budget-minutes` (the
  decoder's whole training minutes) cools down to 0 over that budget's last fifth as under `emoji all`. After each
  chunk the EMA weights are evaluated with evaluate.eval_decoder on `--images` images (the first 50 are eval.json's
  decoder set; pack default sampling: decoder 15 steps, guidance 8, super-resolution 2) for sampling seeds 0 and 1;
  the first evaluation also runs evaluate.eval_pipeline (the 200 prompts, seed 0). The stage trains decoder and
  text_proj together (text_proj maps z_i to the decoder's conditioning), so both are snapshotted and both shipped.
* export: replaces decoder.onnx and text_proj.onnx in the pack (resume.export_modules) and their sha256; every other
  file stays byte-identical (re-exporting the shipped weights this way reproduces both graphs byte for byte).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from . import resume
from .resume import PACK, chosen_row, log
from .sources import DATA_DIR

WORK = resume.ROOT / "models" / "work" / "decoder-curve"
MODULES = ("decoder", "text_proj")   # trained together by train.DecoderStage, shipped together
SEEDS = (0, 1)
N_IMAGES = 300
CURVE_FILE = "decoder_curve.json"
NOISE_FLOOR = {"top5": 0.005, "cos": 0.001}


def init_from_pack(pack: Path = PACK, work: Path = WORK, data_dir: Path = DATA_DIR, seed: int = 0) -> dict:
    from .dataset import EmojiData
    from .train import DecoderStage

    pipe, _, sizes, trained = resume.init_run_dir(pack, work, "decoder")
    st = DecoderStage(work, EmojiData(data_dir), sizes, seed, "bf16")
    st.build()
    for k in MODULES:
        st.modules[k].load_state_dict(getattr(pipe, k).state_dict())   # strict
    resume.restart_stage(st, trained, seed)
    log(work, f"init from {pack}: decoder step {st.step}, clip step {trained['clip']['steps']}")
    return {"pack": str(pack), "decoder_step": st.step, "decoder_minutes": trained["decoder"]["minutes"]}


class Evaluator:
    """eval_decoder (and eval_pipeline) on the pack's CLIP, prior, super-resolution and schedulers, with given
    decoder and text_proj state dicts."""

    def __init__(self, pack: Path, data, n_images: int = N_IMAGES) -> None:
        from .ar_prior import load_pack_models
        from .evaluate import Gallery
        from .pipeline import image_processor

        self.data, self.n = data, n_images
        self.pipe, vision = load_pack_models(pack)
        p = self.pipe
        self.comps = dict(decoder=p.decoder, text_encoder=p.text_encoder, tokenizer=p.tokenizer,
                          text_proj=p.text_proj, feature_extractor=image_processor(vision.config.image_size),
                          image_encoder=vision, super_res_first=p.super_res_first, super_res_last=p.super_res_last,
                          decoder_scheduler=p.decoder_scheduler, super_res_scheduler=p.super_res_scheduler,
                          prior=p.prior)
        self.gallery = Gallery(data, vision)

    def load(self, states: dict) -> None:
        for k in MODULES:
            getattr(self.pipe, k).load_state_dict(states[k])

    def __call__(self, states: dict, seeds=SEEDS) -> dict:
        from .evaluate import eval_decoder

        self.load(states)
        out = {}
        for s in seeds:
            r = eval_decoder(self.data, self.comps, self.gallery, self.n, seed=s)[0]
            out[s] = {"top5": r["retrieval_top5"], "cos": r["cos_decoded"], "cos_centred": r["cos_decoded_centred"]}
        return out

    def pipeline(self, states: dict, n_prompts: int = 200) -> dict:
        from .evaluate import eval_pipeline, eval_prompts

        self.load(states)
        r = eval_pipeline(self.data, self.comps, self.pipe, self.gallery, eval_prompts(self.data, n_prompts))[0]
        return {"top1": r["top1"], "top5": r["top5"], "prompts": r["prompts"]}


def run(work: Path = WORK, pack: Path = PACK, data_dir: Path = DATA_DIR, every: int = 1000, patience: int = 3,
        minutes: float = 60.0, seed: int = 0, threads: int = 1, precision: str = "bf16", device: str = "cpu",
        n_images: int = N_IMAGES, budget_minutes: float | None = None) -> list[dict]:
    from .dataset import EmojiData
    from .train import DecoderStage

    torch.set_num_threads(threads)
    data = EmojiData(data_dir)
    ev = Evaluator(pack, data, n_images)
    keep = lambda emas: {k: emas[k] for k in MODULES}   # noqa: E731
    return resume.run_chunks(work, DecoderStage, data, lambda emas: ev(keep(emas)), keep, NOISE_FLOOR, every,
                             patience, minutes, seed, precision,
                             first_extra=lambda emas: {"images": n_images, "pipeline": ev.pipeline(keep(emas))},
                             device=device, budget_minutes=budget_minutes)


def curve_table(curve: list[dict]) -> str:
    lines = ["| decoder steps | training min | top-5, seed 0 | top-5, seed 1 | cos, seed 0 | cos, seed 1 "
             "| cos mean removed, seed 0 |", "|---|---|---|---|---|---|---|"]
    for r in curve:
        e0, e1 = r["eval"]["0"], r["eval"]["1"]
        lines.append(f"| {r['step']:,} | {r['train_minutes']:.1f} | {e0['top5']:.1%} | {e1['top5']:.1%} | "
                     f"{e0['cos']:.4f} | {e1['cos']:.4f} | {e0['cos_centred']:.4f} |")
    return "\n".join(lines)


def write_curve(pack: Path = PACK, work: Path = WORK, step: int | None = None, extra: dict | None = None) -> dict:
    """The curve (every evaluation) and which step the pack ships, as pack/decoder_curve.json (hashed)."""
    n = json.loads((work / "curve.json").read_text())[0]["images"]
    head = {"issue": 19, "metric": f"evaluate.eval_decoder: decode(true z_i) of {n} images (the first 50 are "
                                   "eval.json's), decoder 15 steps, guidance 8, super-resolution 2"}
    return resume.write_curve(pack, work, CURVE_FILE, head, NOISE_FLOOR, step, extra)


def modules_from_states(pack: Path, states: dict) -> dict:
    from ..from_pack import CONFIG_FILE, build_module

    cfg = json.loads((pack / CONFIG_FILE).read_text(encoding="utf-8"))
    out = {}
    for k in MODULES:
        out[k] = build_module(cfg[k])
        out[k].load_state_dict(states[k])
    return out


def export_decoder(step: int, work: Path = WORK, pack: Path = PACK) -> dict:
    """Snapshot `step`'s EMA decoder and text_proj -> the pack's decoder.onnx and text_proj.onnx."""
    states = torch.load(work / "snapshots" / f"decoder-{step}.pt", weights_only=False)
    return resume.export_modules(pack, modules_from_states(pack, states))


@torch.no_grad()
def refresh_eval(pack: Path = PACK, work: Path = WORK, data_dir: Path = DATA_DIR, step: int | None = None,
                 threads: int = 1, sheet: bool = True) -> dict:
    """After `export`: eval.json's figures that depend on the decoder, re-measured on the pack as it now is
    (diffusers on its ONNX weights): training.decoder, decoder (50 images, seed 0), pipeline (the 200 prompts,
    seed 0), the table; the contact sheet; the manifest's sha256. The CLIP and prior rows do not use the decoder
    and are kept."""
    from ..manifest import verify_pack
    from .dataset import EmojiData
    from .evaluate import contact_sheet, eval_decoder, eval_pipeline, eval_prompts, format_table
    from .train import BATCH

    torch.set_num_threads(threads)
    t0 = time.time()
    curve = json.loads((work / "curve.json").read_text())
    row = chosen_row(curve, step)
    res = json.loads((pack / "eval.json").read_text())
    data = EmojiData(data_dir)
    ev = Evaluator(pack, data)
    res["training"]["decoder"] = {"steps": row["step"], "minutes": round(row["train_minutes"], 1),
                                  "batch": BATCH["decoder"], "precision": res["training"]["decoder"]["precision"],
                                  "resumed_from_step": curve[0]["step"], "curve": CURVE_FILE}
    res["decoder"] = eval_decoder(data, ev.comps, ev.gallery, res["decoder"]["examples"])[0]
    print("decoder", res["decoder"], flush=True)
    prompts = eval_prompts(data, res["pipeline"]["prompts"])
    res["pipeline"], _ = eval_pipeline(data, ev.comps, ev.pipe, ev.gallery, prompts)
    print("pipeline", res["pipeline"], flush=True)
    res["table"] = format_table(res)
    if sheet:
        contact_sheet(ev.pipe, prompts[:64], pack / "contact-sheet.png")
    res["seconds_refresh"] = round(time.time() - t0, 1)
    (pack / "eval.json").write_text(json.dumps(res, indent=1) + "\n")
    resume.update_hashes(pack)
    verify_pack(pack)
    print(res["table"])
    return res


def main(a) -> None:
    work = a.work or WORK
    if a.action == "init":
        print(init_from_pack(a.pack, work, a.data, a.seed))
    elif a.action == "run":
        os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
        curve = run(work, a.pack, a.data, every=a.every, patience=a.patience, minutes=a.minutes, seed=a.seed,
                    threads=a.threads, device=a.device, n_images=a.images, budget_minutes=a.budget_minutes)
        print(curve_table(curve))
    elif a.action == "refresh-eval":
        refresh_eval(a.pack, work, a.data, a.step, a.threads)
    elif a.action == "hashes":
        resume.update_hashes(a.pack)
    elif a.action == "table":
        print(curve_table(json.loads((work / "curve.json").read_text())))
    elif a.action == "write-curve":
        print(json.dumps(write_curve(a.pack, work, a.step), indent=1))
    else:
        curve = json.loads((work / "curve.json").read_text())
        print(export_decoder(chosen_row(curve, a.step)["step"], work, a.pack))
