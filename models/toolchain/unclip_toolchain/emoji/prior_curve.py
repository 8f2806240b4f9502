"""Resume the diffusion prior from a pack's weights and train it in chunks, evaluating on the held-out captions
after each chunk, until the metrics stop improving (issue #17).

    python -m unclip_toolchain.emoji prior-curve init     # run dir from the pack's weights (from_pack.py)
    python -m unclip_toolchain.emoji prior-curve run --every 500 --patience 2 --minutes 70
    python -m unclip_toolchain.emoji prior-curve export --step N   # that snapshot's EMA prior -> the pack
    python -m unclip_toolchain.emoji prior-curve refresh-eval      # eval.json's prior-dependent figures

* init: the pack's CLIP text / image encoders and prior, rebuilt from its ONNX initializers (bit-identical), become
  the checkpoints of a run dir (default models/work/prior-curve): clip.pt (EMA weights only, frozen) and prior.pt
  with the pack's (EMA) prior as both the weights and the EMA, the step and minutes the pack records, a fresh
  AdamW state (the pack has none), the lr warm-up restarted at that step (`warmup_from`) and a fresh data order.
* run: trains the prior stage of train.py unchanged (recipe: lr 3e-4, AdamW, EMA 0.999, clipping, bf16 autocast)
  `--every` steps at a time. The lr is constant: `train --plan` has no known budget, so no cool-down, and the
  shipped prior's schedule had decayed to 0, which a resumed run cannot continue. After each chunk the EMA prior is
  evaluated with evaluate.eval_prior (200 held-out captions, pack default sampling: 10 steps, guidance 4) for
  sampling seeds 0 (the pack evaluation's) and 1; the curve goes to curve.json, the EMA weights to
  snapshots/prior-<step>.pt. Stops after `--patience` evaluations in a row without a new best beyond noise (see
  resume.py, which holds the code shared with decoder_curve.py), or when `--minutes` of wall time are spent.
* export: replaces only prior.onnx in the pack (export.export_component, the exporter's own path) and its sha256
  in manifest.json; every other graph stays byte-identical (re-exporting the shipped prior's weights this way
  reproduces its prior.onnx byte for byte). refresh-eval then re-measures eval.json's prior-dependent figures.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from . import resume
from .resume import PACK, best_row, chosen_row, log, update_hashes
from .sources import DATA_DIR

WORK = resume.ROOT / "models" / "work" / "prior-curve"
SEEDS = (0, 1)
CURVE_FILE = "prior_curve.json"   # the curve, as shipped in the pack (write_curve)
# noise floors of the stopping rule (resume.noise): top-5 over SEEDS, cosine of seed 0
NOISE_FLOOR = {"top5": 0.005, "cos": 0.001}


def init_from_pack(pack: Path = PACK, work: Path = WORK, data_dir: Path = DATA_DIR, seed: int = 0) -> dict:
    from .dataset import EmojiData
    from .train import PriorStage

    pipe, _, sizes, trained = resume.init_run_dir(pack, work, "prior")
    st = PriorStage(work, EmojiData(data_dir), sizes, seed, "bf16")
    st.build()
    prior = st.modules["prior"]
    prior.load_state_dict(pipe.prior.state_dict())          # weights and clip_mean / clip_std
    prior.clip_mean.requires_grad_(False)
    prior.clip_std.requires_grad_(False)
    resume.restart_stage(st, trained, seed)
    log(work, f"init from {pack}: prior step {st.step}, clip step {trained['clip']['steps']}")
    return {"pack": str(pack), "prior_step": st.step, "prior_minutes": trained["prior"]["minutes"]}


class Evaluator:
    """eval_prior on the pack's CLIP and scheduler with a given prior state dict."""

    def __init__(self, pack: Path, data) -> None:
        from .ar_prior import load_pack_models
        from .evaluate import Gallery

        self.data = data
        self.pipe, vision = load_pack_models(pack)
        self.comps = {"image_encoder": vision, "text_encoder": self.pipe.text_encoder}
        self.gallery = Gallery(data, vision)

    def __call__(self, prior_state: dict, seeds=SEEDS) -> dict:
        from .evaluate import eval_prior

        self.pipe.prior.load_state_dict(prior_state)
        out = {}
        for s in seeds:
            r = eval_prior(self.data, self.comps, self.pipe, self.gallery, seed=s)
            out[s] = {"top5": r["retrieval_top5"], "cos": r["cos_prior"], "cos_centred": r["cos_prior_centred"]}
        return out


def run(work: Path = WORK, pack: Path = PACK, data_dir: Path = DATA_DIR, every: int = 500, patience: int = 2,
        minutes: float = 60.0, seed: int = 0, threads: int = 1, precision: str = "bf16", device: str = "cpu",
        budget_minutes: float | None = None) -> list[dict]:
    from .dataset import EmojiData
    from .train import PriorStage

    torch.set_num_threads(threads)
    data = EmojiData(data_dir)
    ev = Evaluator(pack, data)
    return resume.run_chunks(work, PriorStage, data, lambda emas: ev(emas["prior"]), lambda emas: emas["prior"],
                             NOISE_FLOOR, every, patience, minutes, seed, precision, device=device,
                             budget_minutes=budget_minutes)


def curve_table(curve: list[dict]) -> str:
    lines = ["| prior steps | training min | top-5, seed 0 | top-5, seed 1 | cos(z_i, true z_i), seed 0 "
             "| same, mean removed |", "|---|---|---|---|---|---|"]
    for r in curve:
        e0, e1 = r["eval"]["0"], r["eval"]["1"]
        lines.append(f"| {r['step']} | {r['train_minutes']:.1f} | {e0['top5']:.1%} | {e1['top5']:.1%} | "
                     f"{e0['cos']:.4f} | {e0['cos_centred']:.4f} |")
    return "\n".join(lines)


def write_curve(pack: Path = PACK, work: Path = WORK, step: int | None = None, extra: dict | None = None) -> dict:
    """The curve (every evaluation) and which step the pack ships, as pack/prior_curve.json (hashed)."""
    head = {"issue": 17, "metric": "evaluate.eval_prior: 200 held-out captions, prior 10 steps, guidance 4"}
    return resume.write_curve(pack, work, CURVE_FILE, head, NOISE_FLOOR, step, extra)


def export_prior(step: int, work: Path = WORK, pack: Path = PACK) -> dict:
    """Snapshot `step`'s EMA prior -> the pack's prior.onnx (resume.export_modules), and its sha256 in
    manifest.json; the graph's interface and the prior statistics must be unchanged."""
    from ..from_pack import CONFIG_FILE, build_module

    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    cfg = json.loads((pack / CONFIG_FILE).read_text(encoding="utf-8"))
    prior = build_module(cfg["prior"])
    sd = torch.load(work / "snapshots" / f"prior-{step}.pt", weights_only=False)
    # clip_mean / clip_std are frozen data statistics, but the EMA averages them with themselves at every step,
    # which drifts them by float32 rounding (<= 2e-6 here): keep the manifest's exact values (prior_stats)
    for k in ("clip_mean", "clip_std"):
        ref = torch.tensor(manifest["prior_stats"][k], dtype=torch.float32).reshape(sd[k].shape)
        if (sd[k] - ref).abs().max() > 1e-5:
            raise ValueError(f"{k} differs from the manifest's prior_stats: not the pack's prior")
        sd[k] = ref
    prior.load_state_dict(sd)
    return resume.export_modules(pack, {"prior": prior})["prior"]


@torch.no_grad()
def refresh_eval(pack: Path = PACK, work: Path = WORK, data_dir: Path = DATA_DIR, step: int | None = None,
                 threads: int = 1, sheet: bool = True) -> dict:
    """After `export`: the pack's eval.json figures that depend on the diffusion prior, re-measured on the pack as
    it now is (diffusers on its ONNX weights, from_pack.py): training.prior, prior, pipeline (the 200 prompts, seed
    0), the table, priors_comparison's diffusion rows (8 draws per caption, seed 0, as ar_prior.evaluate) and its
    table; the contact sheet; their sha256 in manifest.json. The CLIP and decoder rows and the AR rows do not use
    the prior and are kept."""
    from ..manifest import verify_pack
    from .ar_prior import best_of, comparison_table, diffusion_samples, heldout_set, load_pack_models, prior_metrics
    from .batches import TextEncoder
    from .dataset import EmojiData
    from .evaluate import Gallery, contact_sheet, eval_pipeline, eval_prior, eval_prompts, format_table
    from .train import BATCH

    torch.set_num_threads(threads)
    t0 = time.time()
    curve = json.loads((work / "curve.json").read_text())
    row = chosen_row(curve, step)
    res = json.loads((pack / "eval.json").read_text())
    data = EmojiData(data_dir)
    pipe, vision = load_pack_models(pack)
    comps = {"image_encoder": vision, "text_encoder": pipe.text_encoder}
    gallery = Gallery(data, vision)
    res["training"]["prior"] = {"steps": row["step"], "minutes": round(row["train_minutes"], 1),
                                "batch": BATCH["prior"], "precision": res["training"]["prior"]["precision"],
                                "resumed_from_step": curve[0]["step"], "curve": "prior_curve.json"}
    res["prior"] = eval_prior(data, comps, pipe, gallery)
    print("prior", res["prior"], flush=True)
    prompts = eval_prompts(data, res["pipeline"]["prompts"])
    res["pipeline"], _ = eval_pipeline(data, comps, pipe, gallery, prompts)
    print("pipeline", res["pipeline"], flush=True)
    res["table"] = format_table(res)
    pc = res["priors_comparison"]
    te = TextEncoder(pipe.text_encoder)
    keys, caps, z_true, (z_t, _, _) = heldout_set(data, vision, te, pc["heldout_captions"])
    samples = pc["priors"]["diffusion"]["samples_per_caption"]
    zd = diffusion_samples(pipe, caps, 2 * samples, seed=0)
    mean = pipe.prior.clip_mean[0]
    for k, z in (("diffusion", zd[:, :samples]), ("diffusion_2", best_of(zd, z_t, 2))):
        pc["priors"][k] = prior_metrics(data, gallery, keys, z, z_true, mean)
        print(k, pc["priors"][k], flush=True)
    pc["table"] = comparison_table(pc)
    if sheet:
        contact_sheet(pipe, prompts[:64], pack / "contact-sheet.png")
    res["seconds_refresh"] = round(time.time() - t0, 1)
    (pack / "eval.json").write_text(json.dumps(res, indent=1) + "\n")
    update_hashes(pack)
    verify_pack(pack)
    print(res["table"])
    print(pc["table"])
    return res


def main(a) -> None:
    work = a.work or WORK
    if a.action == "init":
        print(init_from_pack(a.pack, work, a.data, a.seed))
    elif a.action == "run":
        os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
        curve = run(work, a.pack, a.data, every=a.every, patience=a.patience, minutes=a.minutes, seed=a.seed,
                    threads=a.threads, device=a.device, budget_minutes=a.budget_minutes)
        print(curve_table(curve))
    elif a.action == "refresh-eval":
        refresh_eval(a.pack, work, a.data, a.step, a.threads)
    elif a.action == "hashes":
        update_hashes(a.pack)
    elif a.action == "table":
        print(curve_table(json.loads((work / "curve.json").read_text())))
    elif a.action == "write-curve":
        print(json.dumps(write_curve(a.pack, work, a.step), indent=1))
    else:
        curve = json.loads((work / "curve.json").read_text())
        step = a.step if a.step is not None else best_row(curve)["step"]
        print(export_prior(step, work, a.pack))
