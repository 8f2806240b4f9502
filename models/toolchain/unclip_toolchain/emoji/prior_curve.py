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
  `improved`), or when `--minutes` of wall time are spent.
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

from .sources import DATA_DIR

WORK = Path(__file__).resolve().parents[4] / "models" / "work" / "prior-curve"
PACK = Path(__file__).resolve().parents[4] / "models" / "emoji-tiny"
SEEDS = (0, 1)
CURVE_FILE = "prior_curve.json"   # the curve, as shipped in the pack (write_curve)
# An evaluation improves on the best so far when its top-5 (mean over SEEDS) or its cosine (seed 0) beats the
# best by more than the noise: the larger of these floors and the spread between the two seeds at the start.
NOISE_FLOOR = {"top5": 0.005, "cos": 0.001}


def _log(work: Path, msg: str) -> None:
    line = time.strftime("%Y-%m-%dT%H:%M:%S ") + msg
    print(line, flush=True)
    with open(work / "curve.log", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def init_from_pack(pack: Path = PACK, work: Path = WORK, data_dir: Path = DATA_DIR, seed: int = 0) -> dict:
    from .ar_prior import load_pack_models
    from .batches import Batches
    from .dataset import EmojiData
    from .diffusion import EMA
    from .models import Sizes, build_clip, sizes_to_json
    from .train import STAGES, PriorStage, ckpt_path, save_atomic

    if ckpt_path(work, "prior").is_file():
        raise FileExistsError(f"{ckpt_path(work, 'prior')}: already initialised (delete {work} to start over)")
    work.mkdir(parents=True, exist_ok=True)
    trained = json.loads((pack / "eval.json").read_text())["training"]
    pipe, vision = load_pack_models(pack)
    sizes = Sizes()
    (work / "sizes.json").write_text(json.dumps(sizes_to_json(sizes), indent=1) + "\n")
    text, vis = build_clip(sizes, 0)
    text.load_state_dict(pipe.text_encoder.state_dict())   # strict: the pack has this run's sizes
    vis.load_state_dict(vision.state_dict())
    clip = {"stage": "clip", "step": trained["clip"]["steps"], "elapsed": trained["clip"]["minutes"] * 60,
            "precision": trained["clip"]["precision"], "sizes": sizes_to_json(sizes), "from_pack": str(pack),
            "ema": {k: {"decay": 0.999, "n": trained["clip"]["steps"], "shadow": m.state_dict()}
                    for k, m in (("text", text), ("vision", vis))}}
    save_atomic(clip, ckpt_path(work, "clip"))
    (work / "clip_frozen").touch()

    data = EmojiData(data_dir)
    st = PriorStage(work, data, sizes, seed, "bf16")
    st.build()
    prior = st.modules["prior"]
    prior.load_state_dict(pipe.prior.state_dict())          # weights and clip_mean / clip_std
    prior.clip_mean.requires_grad_(False)
    prior.clip_std.requires_grad_(False)
    st.step = trained["prior"]["steps"]
    st.warmup_from = st.step
    st.elapsed = trained["prior"]["minutes"] * 60
    st.emas = {"prior": EMA(prior)}
    st.emas["prior"].n = st.step                           # EMA at its full decay, as at the end of the recipe
    st.opt = torch.optim.AdamW(st.params(), lr=0.0, weight_decay=0.01, betas=(0.9, 0.99))
    # the original sampler state is not in the pack: a data order of its own, not a replay of the first steps
    st.batches = Batches(data, seed + 1000 * (STAGES.index("prior") + 1) + st.step)
    torch.manual_seed(seed + st.step)
    st.save()
    info = {"pack": str(pack), "prior_step": st.step, "prior_minutes": trained["prior"]["minutes"]}
    _log(work, f"init from {pack}: prior step {st.step}, clip step {clip['step']}")
    return info


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


def score(row: dict) -> dict:
    """The curve's two metrics for the stopping rule: top-5 averaged over the seeds, cosine of seed 0."""
    ev = row["eval"]
    return {"top5": sum(v["top5"] for v in ev.values()) / len(ev), "cos": ev[str(SEEDS[0])]["cos"]}


def noise(first: dict) -> dict:
    ev = list(first["eval"].values())
    spread = {k: max(v[k] for v in ev) - min(v[k] for v in ev) for k in NOISE_FLOOR}
    return {k: max(NOISE_FLOOR[k], spread[k]) for k in NOISE_FLOOR}


def improved(row: dict, best: dict, tol: dict) -> bool:
    s = score(row)
    return any(s[k] > best[k] + tol[k] for k in tol)


def stale_evals(curve: list[dict]) -> int:
    """Evaluations since the last one that improved on the best before it (beyond noise)."""
    tol = noise(curve[0])
    best, stale = score(curve[0]), 0
    for row in curve[1:]:
        if improved(row, best, tol):
            stale = 0
        else:
            stale += 1
        best = {k: max(best[k], score(row)[k]) for k in best}
    return stale


def best_row(curve: list[dict]) -> dict:
    """Highest top-5 (mean over seeds), ties broken by cosine."""
    return max(curve, key=lambda r: (round(score(r)["top5"], 6), score(r)["cos"]))


def run(work: Path = WORK, pack: Path = PACK, data_dir: Path = DATA_DIR, every: int = 500, patience: int = 2,
        minutes: float = 60.0, seed: int = 0, threads: int = 1, precision: str = "bf16") -> list[dict]:
    from .dataset import EmojiData
    from .train import PriorStage, ckpt_path, resolve_precision, run_sizes

    torch.set_num_threads(threads)
    t_start = time.time()
    data = EmojiData(data_dir)
    ev = Evaluator(pack, data)
    sizes = run_sizes(work)
    curve_path = work / "curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.is_file() else []
    snaps = work / "snapshots"
    snaps.mkdir(exist_ok=True)

    def record(step: int, minutes_trained: float, ema: dict, chunk_s: float) -> None:
        t = time.time()
        res = ev(ema)
        row = {"step": step, "train_minutes": round(minutes_trained, 2), "chunk_wall_s": round(chunk_s, 1),
               "eval": {str(k): v for k, v in res.items()}, "eval_s": round(time.time() - t, 1)}
        curve.append(row)
        torch.save(ema, snaps / f"prior-{step}.pt")
        curve_path.write_text(json.dumps(curve, indent=1) + "\n")
        s = score(row)
        top5 = " / ".join(f"{v['top5']:.3f}" for v in res.values())
        _log(work, f"step {step}: top5 {top5} "
                   f"(mean {s['top5']:.4f}), cos {s['cos']:.4f}, {row['eval_s']:.0f} s")

    if not curve:
        ck = torch.load(ckpt_path(work, "prior"), weights_only=False)
        record(ck["step"], ck["elapsed"] / 60, ck["ema"]["prior"]["shadow"], 0.0)
        _log(work, f"noise (seed spread, floored): {noise(curve[0])}")
    while True:
        if stale_evals(curve) >= patience:
            _log(work, f"stop: {patience} evaluations without improvement beyond noise {noise(curve[0])}")
            break
        if (time.time() - t_start) / 60 >= minutes:
            _log(work, f"stop: {minutes} min of wall time spent")
            break
        t = time.time()
        st = PriorStage(work, data, sizes, seed, resolve_precision(precision))
        st.train(1e9, max_steps=every)
        record(st.step, st.elapsed / 60, st.emas["prior"].shadow, time.time() - t)
    b = best_row(curve)
    _log(work, f"best: step {b['step']} {score(b)}")
    return curve


def curve_table(curve: list[dict]) -> str:
    lines = ["| prior steps | training min | top-5, seed 0 | top-5, seed 1 | cos(z_i, true z_i), seed 0 "
             "| same, mean removed |", "|---|---|---|---|---|---|"]
    for r in curve:
        e0, e1 = r["eval"]["0"], r["eval"]["1"]
        lines.append(f"| {r['step']} | {r['train_minutes']:.1f} | {e0['top5']:.1%} | {e1['top5']:.1%} | "
                     f"{e0['cos']:.4f} | {e0['cos_centred']:.4f} |")
    return "\n".join(lines)


def write_curve(pack: Path = PACK, work: Path = WORK, step: int | None = None, extra: dict | None = None) -> dict:
    """The curve (every evaluation) and which step the pack ships, as pack/prior_curve.json."""
    curve = json.loads((work / "curve.json").read_text())
    out = {"issue": 17, "metric": "evaluate.eval_prior: 200 held-out captions, prior 10 steps, guidance 4",
           "seeds": list(SEEDS), "noise": noise(curve[0]),
           "rule": "stop after `patience` evaluations without a new best beyond noise (top-5 mean over seeds, or "
                   "cosine of seed 0)",
           "shipped_step": step if step is not None else best_row(curve)["step"],
           "curve": [{"step": r["step"], "train_minutes": r["train_minutes"],
                      **{f"top5_seed{k}": v["top5"] for k, v in r["eval"].items()},
                      **{f"cos_seed{k}": round(v["cos"], 5) for k, v in r["eval"].items()},
                      "cos_centred_seed0": round(r["eval"]["0"]["cos_centred"], 5)} for r in curve]}
    out.update(extra or {})
    (pack / CURVE_FILE).write_text(json.dumps(out, indent=1) + "\n")
    return out


def export_prior(step: int, work: Path = WORK, pack: Path = PACK) -> dict:
    """Snapshot `step`'s EMA prior -> the pack's prior.onnx (the exporter's own export + onnxruntime check), and
    its sha256 in manifest.json; the graph's interface and the prior statistics must be unchanged."""
    import shutil
    import tempfile

    import onnx

    from .. import export as exporter
    from ..flops import count_flops
    from ..from_pack import CONFIG_FILE, build_module
    from ..manifest import sha256_file, verify_pack

    man_path = pack / "manifest.json"
    manifest = json.loads(man_path.read_text(encoding="utf-8"))
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
    prior = prior.float().eval().requires_grad_(False)
    entry_old = manifest["components"]["prior"]
    inputs = [(i["name"], i["dtype"], i["shape"]) for i in entry_old["inputs"]]
    outputs = [(o["name"], o["dtype"], o["shape"]) for o in entry_old["outputs"]]
    from .. import components as W

    spec = (getattr(W, exporter.WRAPPERS["prior"])(prior), inputs, outputs)
    tmp, scratch = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    try:
        entry = exporter.export_component("prior", spec, tmp, scratch, False, False)
        entry["flops"] = count_flops(onnx.load(str(tmp / entry["file"]), load_external_data=False))
        err = exporter.check_component("prior", spec, tmp / entry["file"], batch=3)
        if err > exporter.CHECK_TOL_FP32:
            raise ValueError(f"onnxruntime differs from PyTorch by {err:.3g}")
        for k in ("file", "inputs", "outputs", "flops"):
            if entry[k] != entry_old[k]:
                raise ValueError(f"prior graph's {k} changed: {entry_old[k]} -> {entry[k]}")
        shutil.copyfile(tmp / entry["file"], pack / entry["file"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    manifest["files"][entry["file"]] = sha256_file(pack / entry["file"])
    man_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    verify_pack(pack)
    return {"file": entry["file"], "max_abs_err": err, "sha256": manifest["files"][entry["file"]]}


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
    row = next(r for r in curve if r["step"] == step) if step is not None else best_row(curve)
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


def update_hashes(pack: Path = PACK) -> None:
    """manifest.json's sha256 of every listed file, as the files now are."""
    from ..manifest import sha256_file

    man_path = pack / "manifest.json"
    manifest = json.loads(man_path.read_text(encoding="utf-8"))
    names = sorted(set(manifest["files"]) | ({CURVE_FILE} if (pack / CURVE_FILE).is_file() else set()))
    manifest["files"] = {k: sha256_file(pack / k) for k in names}
    man_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(a) -> None:
    work = a.work or WORK
    if a.action == "init":
        print(init_from_pack(a.pack, work, a.data, a.seed))
    elif a.action == "run":
        os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
        curve = run(work, a.pack, a.data, every=a.every, patience=a.patience, minutes=a.minutes, seed=a.seed,
                    threads=a.threads)
        print(curve_table(curve))
    elif a.action == "refresh-eval":
        refresh_eval(a.pack, work, a.data, a.step, a.threads)
    elif a.action == "hashes":
        update_hashes(a.pack)
    elif a.action == "table":
        print(curve_table(json.loads((work / "curve.json").read_text())))
    else:
        curve = json.loads((work / "curve.json").read_text())
        step = a.step if a.step is not None else best_row(curve)["step"]
        print(export_prior(step, work, a.pack))
