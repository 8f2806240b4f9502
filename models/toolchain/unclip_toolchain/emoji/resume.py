"""Shared by prior_curve.py and decoder_curve.py: one train.py stage resumed from a pack's own weights (from_pack.py)
and trained in chunks, evaluated after each, until its held-out metrics stop improving; then only that stage's
graphs are re-exported into the pack.

* Run dir: clip.pt holds the pack's CLIP encoders (EMA weights only, frozen: the downstream stages were trained on
  them); the stage's checkpoint holds the pack's (EMA) weights as both the weights and the EMA, the step and
  minutes the pack records, a fresh AdamW state (the pack has none), the lr warm-up restarted at that step
  (`warmup_from`) and a fresh data order (the original sampler state is not in the pack).
* Stopping rule: a curve row carries, per sampling seed, "top5" and "cos". An evaluation improves on the best so
  far when its top-5 (mean over the seeds) or its cosine (first seed) beats the best by more than the noise: the
  larger of a floor and the spread between the seeds at the start.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[4]
PACK = ROOT / "models" / "emoji-tiny"
CURVE_FILES = ("prior_curve.json", "decoder_curve.json")   # the curves as shipped in the pack, when present


def log(work: Path, msg: str) -> None:
    line = time.strftime("%Y-%m-%dT%H:%M:%S ") + msg
    print(line, flush=True)
    with open(work / "curve.log", "a", encoding="utf-8") as f:
        f.write(line + "\n")


# ── run dir from the pack ───────────────────────────────────────────────────────────────────────────────

def init_run_dir(pack: Path, work: Path, stage: str):
    """The pack's pipeline and image encoder (from_pack.py), the run's sizes.json and frozen clip.pt in `work`.
    Returns (pipe, vision, sizes, the pack's eval.json "training" record)."""
    from .ar_prior import load_pack_models
    from .models import Sizes, build_clip, sizes_to_json
    from .train import ckpt_path, save_atomic

    if ckpt_path(work, stage).is_file():
        raise FileExistsError(f"{ckpt_path(work, stage)}: already initialised (delete {work} to start over)")
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
    return pipe, vision, sizes, trained


def restart_stage(st, trained: dict, seed: int) -> None:
    """A built stage whose modules hold the pack's weights -> its checkpoint at the pack's step and minutes (see
    the module docstring), saved."""
    from .batches import Batches
    from .diffusion import EMA
    from .train import STAGES

    st.step = trained[st.name]["steps"]
    st.warmup_from = st.step
    st.elapsed = trained[st.name]["minutes"] * 60
    st.emas = {k: EMA(m) for k, m in st.modules.items()}
    for e in st.emas.values():
        e.n = st.step                                      # EMA at its full decay, as at the end of the recipe
    st.opt = torch.optim.AdamW(st.params(), lr=0.0, weight_decay=0.01, betas=(0.9, 0.99))
    st.batches = Batches(st.data, seed + 1000 * (STAGES.index(st.name) + 1) + st.step)
    torch.manual_seed(seed + st.step)
    st.save()


# ── stopping rule ───────────────────────────────────────────────────────────────────────────────────────

def score(row: dict) -> dict:
    """The curve's two metrics for the stopping rule: top-5 averaged over the seeds, cosine of the first seed."""
    ev = row["eval"]
    return {"top5": sum(v["top5"] for v in ev.values()) / len(ev), "cos": next(iter(ev.values()))["cos"]}


def noise(first: dict, floor: dict) -> dict:
    ev = list(first["eval"].values())
    spread = {k: max(v[k] for v in ev) - min(v[k] for v in ev) for k in floor}
    return {k: max(floor[k], spread[k]) for k in floor}


def improved(row: dict, best: dict, tol: dict) -> bool:
    s = score(row)
    return any(s[k] > best[k] + tol[k] for k in tol)


def stale_evals(curve: list[dict], floor: dict) -> int:
    """Evaluations since the last one that improved on the best before it (beyond noise)."""
    tol = noise(curve[0], floor)
    best, stale = score(curve[0]), 0
    for row in curve[1:]:
        stale = 0 if improved(row, best, tol) else stale + 1
        best = {k: max(best[k], score(row)[k]) for k in best}
    return stale


def best_row(curve: list[dict]) -> dict:
    """Highest top-5 (mean over seeds), ties broken by cosine."""
    return max(curve, key=lambda r: (round(score(r)["top5"], 6), score(r)["cos"]))


# ── chunked training ────────────────────────────────────────────────────────────────────────────────────

def run_chunks(work: Path, stage_cls, data, evaluate, snapshot, floor: dict, every: int, patience: int,
               minutes: float, seed: int, precision: str, first_extra=None, device: str = "cpu",
               budget_minutes: float | None = None) -> list[dict]:
    """Train `stage_cls` from its checkpoint in `work` `every` steps at a time; after each chunk (and once at the
    start) `evaluate(emas)` -> {seed: metrics} on the EMA state dicts ({module: state dict}), appended to
    curve.json, and `snapshot(emas)` saved as snapshots/<stage>-<step>.pt. `first_extra(emas)` adds figures to the
    first row only (costlier ones, measured again at the shipped step). Stops after `patience` evaluations without
    a new best beyond noise, or when `minutes` of wall time are spent (a chunk is cut short to fit).
    Without `budget_minutes` the lr stays constant after the warm-up; with it (the stage's whole training minutes,
    the pack's included) it follows train.py's cool-down, linearly to 0 over the last fifth of that budget, and the
    run stops when the budget is trained."""
    from .train import ckpt_path, resolve_device, resolve_precision, run_sizes, to_cpu

    t_start = time.time()
    device = resolve_device(device)
    sizes = run_sizes(work)
    name = stage_cls.name
    curve_path = work / "curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.is_file() else []
    snaps = work / "snapshots"
    snaps.mkdir(exist_ok=True)

    def record(step: int, minutes_trained: float, emas: dict, chunk_s: float) -> None:
        t = time.time()
        res = evaluate(emas)
        row = {"step": step, "train_minutes": round(minutes_trained, 2), "chunk_wall_s": round(chunk_s, 1),
               "eval": {str(k): v for k, v in res.items()}}
        if first_extra is not None and not curve:
            row.update(first_extra(emas))
        row["eval_s"] = round(time.time() - t, 1)
        curve.append(row)
        torch.save(snapshot(emas), snaps / f"{name}-{step}.pt")
        curve_path.write_text(json.dumps(curve, indent=1) + "\n")
        s = score(row)
        top5 = " / ".join(f"{v['top5']:.3f}" for v in res.values())
        log(work, f"step {step}: top5 {top5} (mean {s['top5']:.4f}), cos {s['cos']:.4f}, {row['eval_s']:.0f} s")

    if not curve:
        ck = torch.load(ckpt_path(work, name), weights_only=False, map_location="cpu")
        record(ck["step"], ck["elapsed"] / 60, {k: e["shadow"] for k, e in ck["ema"].items()}, 0.0)
        log(work, f"noise (seed spread, floored): {noise(curve[0], floor)}")
    while True:
        if stale_evals(curve, floor) >= patience:
            log(work, f"stop: {patience} evaluations without improvement beyond noise {noise(curve[0], floor)}")
            break
        left = minutes - (time.time() - t_start) / 60
        if left <= 0:
            log(work, f"stop: {minutes} min of wall time spent")
            break
        if budget_minutes is not None:
            if curve[-1]["train_minutes"] >= budget_minutes:
                log(work, f"stop: the {budget_minutes} min budget is trained (lr 0)")
                break
            left = min(left, budget_minutes - curve[-1]["train_minutes"])
        t = time.time()
        prec = resolve_precision(precision, device)
        st = stage_cls(work, data, sizes, seed, prec) if device == "cpu" else stage_cls(work, data, sizes, seed, prec,
                                                                                        device)
        st.train(left, max_steps=every, budget_minutes=budget_minutes)
        emas = {k: e.shadow for k, e in st.emas.items()}
        record(st.step, st.elapsed / 60, emas if device == "cpu" else to_cpu(emas), time.time() - t)
    b = best_row(curve)
    log(work, f"best: step {b['step']} {score(b)}")
    return curve


def chosen_row(curve: list[dict], step: int | None) -> dict:
    return next(r for r in curve if r["step"] == step) if step is not None else best_row(curve)


# ── the curve, as shipped in the pack ──────────────────────────────────────────────────────────────────

def write_curve(pack: Path, work: Path, file: str, head: dict, floor: dict, step: int | None = None,
                extra: dict | None = None) -> dict:
    """`work`'s curve (every evaluation) and the step the pack ships (default: the best), as pack/`file`, its
    sha256 in the manifest. `head`: the file's first fields (issue, metric)."""
    curve = json.loads((work / "curve.json").read_text())
    out = {**head, "seeds": [int(k) for k in curve[0]["eval"]], "noise": noise(curve[0], floor),
           "rule": "stop after `patience` evaluations without a new best beyond noise (top-5 mean over seeds, or "
                   "cosine of seed 0)",
           "shipped_step": chosen_row(curve, step)["step"],
           "curve": [{"step": r["step"], "train_minutes": r["train_minutes"],
                      **{f"top5_seed{k}": v["top5"] for k, v in r["eval"].items()},
                      **{f"cos_seed{k}": round(v["cos"], 5) for k, v in r["eval"].items()},
                      "cos_centred_seed0": round(r["eval"]["0"]["cos_centred"], 5),
                      **({"pipeline_top5": r["pipeline"]["top5"]} if "pipeline" in r else {})} for r in curve]}
    out.update(extra or {})
    (pack / file).write_text(json.dumps(out, indent=1) + "\n")
    update_hashes(pack)
    return out


# ── export into the pack ────────────────────────────────────────────────────────────────────────────────

def export_modules(pack: Path, modules: dict) -> dict:
    """{component name: torch module with new weights} -> the pack's <name>.onnx (the exporter's own export and
    onnxruntime check), and their sha256 in manifest.json. Each graph's file, interface and FLOPs must be
    unchanged; every other file stays byte-identical."""
    import onnx

    from .. import components as W
    from .. import export as exporter
    from ..flops import count_flops
    from ..manifest import sha256_file, verify_pack

    man_path = pack / "manifest.json"
    manifest = json.loads(man_path.read_text(encoding="utf-8"))
    out = {}
    tmp, scratch = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    try:
        for name, module in modules.items():
            module = module.float().eval().requires_grad_(False)
            old = manifest["components"][name]
            spec = (getattr(W, exporter.WRAPPERS[name])(module),
                    [(i["name"], i["dtype"], i["shape"]) for i in old["inputs"]],
                    [(o["name"], o["dtype"], o["shape"]) for o in old["outputs"]])
            entry = exporter.export_component(name, spec, tmp, scratch, False, False)
            entry["flops"] = count_flops(onnx.load(str(tmp / entry["file"]), load_external_data=False))
            err = exporter.check_component(name, spec, tmp / entry["file"], batch=3)
            if err > exporter.CHECK_TOL_FP32:
                raise ValueError(f"{name}: onnxruntime differs from PyTorch by {err:.3g}")
            for k in ("file", "inputs", "outputs", "flops"):
                if entry[k] != old[k]:
                    raise ValueError(f"{name} graph's {k} changed: {old[k]} -> {entry[k]}")
            out[name] = {"file": entry["file"], "max_abs_err": err}
        for name, r in out.items():      # all graphs exported and checked before the pack is touched
            shutil.copyfile(tmp / r["file"], pack / r["file"])
            manifest["files"][r["file"]] = r["sha256"] = sha256_file(pack / r["file"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    man_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    verify_pack(pack)
    return out


def update_hashes(pack: Path = PACK) -> None:
    """manifest.json's sha256 of every listed file (and of the CURVE_FILES present), as the files now are."""
    from ..manifest import sha256_file

    man_path = pack / "manifest.json"
    manifest = json.loads(man_path.read_text(encoding="utf-8"))
    names = sorted(set(manifest["files"]) | {f for f in CURVE_FILES if (pack / f).is_file()})
    manifest["files"] = {k: sha256_file(pack / k) for k in names}
    man_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
