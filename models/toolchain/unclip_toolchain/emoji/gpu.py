"""Training the emoji unCLIP on a GPU lent through the device tool (issue #19), and bringing the weights back.

On the device machine (models/toolchain/gpu/train-on-device.sh runs this, see models/README.md "Training on a GPU"):

    python -m unclip_toolchain.emoji gpu-train --out $OUT --budget-minutes 6 --deadline-minutes 8.5

runs the from-scratch recipe of `emoji all` (BUDGET_SHARES of the budget per stage, the lr cool-down over each
stage's last fifth) on CUDA: first a preflight (2 steps of every stage in a scratch run dir, so a broken
environment costs seconds, not the lease), then the stages, each cut short if the hard `--deadline-minutes` (wall
time of the whole command, start-up included) would be passed. Whatever happens, the EMA weights of every stage
that saved a checkpoint are written under --out as a bundle: one torch.save'd payload split into parts of at most
15 MiB (the tool brings back 8 files, 16 MiB each, 64 MiB in all), bundle.json with the sha256 of each part and of
the whole, and device-log.txt (device name, steps per minute of each stage, peak GPU memory). The run dir's
train.log and metrics.jsonl travel inside the payload.

Here (any machine), from the folder the tool fetched:

    python -m unclip_toolchain.emoji gpu-import --from DIR --run models/work/emoji-run-gpu

checks and reassembles the bundle and writes the run dir: sizes.json, ckpt/<stage>.pt with the EMA weights as both
the weights and the EMA (no optimiser state: a later `train` resumes them with fresh AdamW moments, as
resume.restart_stage does), clip_frozen, the logs. `emoji eval --run DIR` and `emoji export --run DIR --out PACK`
then work as for a CPU run, and the card's training table gets a machine column.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from .sources import DATA_DIR

MiB = 1 << 20
# the device tool's limits on what comes back from $OUT (models/README.md "Training on a GPU")
MAX_FILES, MAX_FILE_BYTES, MAX_TOTAL_BYTES = 8, 16 * MiB, 64 * MiB
PART_BYTES = 15 * MiB
BUNDLE_FILE = "bundle.json"
LOG_FILE = "device-log.txt"
PART_PREFIX = "weights.part"
FORMAT = 1


# ── bundle: a payload in files the device tool brings back ──────────────────────────────────────────────

def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _bf16_copy(payload: dict) -> dict:
    """The payload with every float32 weight of the stages' EMA stored as bfloat16 (the import casts back)."""
    out = dict(payload, stages={}, shadow_dtype="bfloat16")
    for name, st in payload["stages"].items():
        ema = {k: dict(e, shadow={n: (v.to(torch.bfloat16) if v.dtype == torch.float32 else v)
                                  for n, v in e["shadow"].items()}) for k, e in st["ema"].items()}
        out["stages"][name] = dict(st, ema=ema)
    return out


def write_bundle(out: Path, payload: dict, part_bytes: int = PART_BYTES, files_left: int = MAX_FILES - 2,
                 bytes_left: int = MAX_TOTAL_BYTES - MiB) -> dict:
    """torch.save(payload) split into `out`/weights.partNN (<= part_bytes each) + bundle.json. If that would take
    more than `files_left` parts or `bytes_left` bytes, the EMA weights go as bfloat16 (recorded, lossy); if even
    that does not fit, ValueError. Returns bundle.json's content."""
    out.mkdir(parents=True, exist_ok=True)
    for attempt in ("float32", "bfloat16"):
        buf = io.BytesIO()
        torch.save(payload if attempt == "float32" else _bf16_copy(payload), buf)
        blob = buf.getvalue()
        n = max(1, math.ceil(len(blob) / part_bytes))
        if n <= files_left and len(blob) <= bytes_left:
            break
    else:
        raise ValueError(f"bundle: {len(blob) / MiB:.1f} MiB in {n} parts even in bfloat16, over what the device "
                         f"tool brings back ({files_left} parts, {bytes_left / MiB:.0f} MiB)")
    parts = []
    for i in range(n):
        chunk = blob[i * part_bytes:(i + 1) * part_bytes]
        name = f"{PART_PREFIX}{i:02d}"
        (out / name).write_bytes(chunk)
        parts.append({"file": name, "bytes": len(chunk), "sha256": _sha(chunk)})
    manifest = {"format": FORMAT, "bytes": len(blob), "sha256": _sha(blob), "shadow_dtype": attempt,
                "parts": parts}
    (out / BUNDLE_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_bundle(src: Path) -> dict:
    """The payload written by write_bundle, after checking every part's and the whole's sha256."""
    mf = src / BUNDLE_FILE
    if not mf.is_file():            # the fetched folder may hold $OUT one level down
        found = sorted(src.glob(f"*/{BUNDLE_FILE}")) + sorted(src.glob(f"*/*/{BUNDLE_FILE}"))
        if len(found) == 1:
            mf, src = found[0], found[0].parent
    if not mf.is_file():
        raise FileNotFoundError(f"{mf}: no bundle here (the device run wrote none: see its {LOG_FILE})")
    manifest = json.loads(mf.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{mf}: format {manifest.get('format')!r}, this toolchain reads {FORMAT}")
    chunks = []
    for p in manifest["parts"]:
        f = src / p["file"]
        if not f.is_file():
            raise FileNotFoundError(f"{f}: part missing (it did not come back?)")
        b = f.read_bytes()
        if len(b) != p["bytes"] or _sha(b) != p["sha256"]:
            raise ValueError(f"{f}: {len(b)} bytes, sha256 {_sha(b)[:12]}: not the part the device wrote "
                             f"({p['bytes']} bytes, {p['sha256'][:12]})")
        chunks.append(b)
    blob = b"".join(chunks)
    if _sha(blob) != manifest["sha256"]:
        raise ValueError(f"{mf}: the reassembled parts' sha256 differs from the bundle's")
    payload = torch.load(io.BytesIO(blob), weights_only=False, map_location="cpu")
    if payload.get("shadow_dtype") == "bfloat16":
        for st in payload["stages"].values():
            for e in st["ema"].values():
                e["shadow"] = {n: (v.float() if v.dtype == torch.bfloat16 else v) for n, v in e["shadow"].items()}
    return payload


def check_out_dir(out: Path) -> list[str]:
    """What the device tool would refuse to bring back from `out` (empty when all of it comes back)."""
    files = [p for p in out.rglob("*") if p.is_file()]
    problems = []
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files > {MAX_FILES}")
    total = sum(p.stat().st_size for p in files)
    if total > MAX_TOTAL_BYTES:
        problems.append(f"{total / MiB:.1f} MiB in all > {MAX_TOTAL_BYTES / MiB:.0f}")
    for p in files:
        if p.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{p.name}: {p.stat().st_size / MiB:.1f} MiB > {MAX_FILE_BYTES / MiB:.0f}")
        if len(p.relative_to(out).parts) > 3:
            problems.append(f"{p.relative_to(out)}: more than 2 folders down")
    return problems


# ── on the device ───────────────────────────────────────────────────────────────────────────────────────

class DeviceLog:
    def __init__(self, path: Path, t0: float) -> None:
        self.path, self.t0 = path, t0
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:6.1f} s] {msg}"
        print(line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def environment(device: str) -> dict:
    import diffusers
    import transformers

    env = {"python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
           "transformers": transformers.__version__, "cpus": os.cpu_count(), "device": device}
    if torch.device(device).type == "cuda":
        p = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2 ** 30, 1), cuda=torch.version.cuda,
                   capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count)
    return env


def payload_from_run(run_dir: Path, meta: dict) -> dict:
    """The EMA weights and bookkeeping of every stage checkpoint in `run_dir`, plus its logs."""
    from .train import STAGES, ckpt_path

    stages = {}
    for s in STAGES:
        p = ckpt_path(run_dir, s)
        if p.is_file():
            ck = torch.load(p, weights_only=False, map_location="cpu")
            stages[s] = {k: ck[k] for k in ("step", "elapsed", "precision", "warmup_from", "ema", "extra")
                         if k in ck}
            for k in ("batch", "device"):
                if k in ck:
                    stages[s][k] = ck[k]
    logs = {f: (run_dir / f).read_text(encoding="utf-8") for f in ("train.log", "metrics.jsonl")
            if (run_dir / f).is_file()}
    sizes = json.loads((run_dir / "sizes.json").read_text()) if (run_dir / "sizes.json").is_file() else None
    return {"format": FORMAT, "sizes": sizes, "stages": stages, "logs": logs, "meta": meta}


def _progress(run_dir: Path, stage: str) -> dict:
    from .train import BATCH, ckpt_path

    p = ckpt_path(run_dir, stage)
    if not p.is_file():
        return {"step": 0, "elapsed": 0.0, "batch": BATCH[stage]}
    ck = torch.load(p, weights_only=False, map_location="cpu")
    return {"step": ck["step"], "elapsed": ck["elapsed"], "batch": ck.get("batch", BATCH[stage])}


def train_on_device(out: Path, budget_minutes: float = 6.0, deadline_minutes: float = 8.5, device: str = "auto",
                    data_dir: Path = DATA_DIR, run_dir: Path | None = None, seed: int = 0,
                    batches: dict[str, int] | None = None, preflight: bool = True,
                    max_steps: int | None = None, t0: float | None = None) -> dict:
    """The from-scratch recipe on `device` for `budget_minutes` of training, ending before `deadline_minutes` of
    wall time since `t0` (default: now), the bundle and device-log.txt in `out` whatever happens."""
    from .__main__ import BUDGET_SHARES
    from .dataset import EmojiData
    from .train import STAGES, device_name, remaining_plan, resolve_device, resolve_precision, train_plan

    t0 = t0 or time.time()
    out.mkdir(parents=True, exist_ok=True)
    dlog = DeviceLog(out / LOG_FILE, t0)
    run_dir = run_dir or Path(tempfile.gettempdir()) / "emoji-run-gpu"
    device = resolve_device(device)
    precision = resolve_precision("auto", device)
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True      # fixed conv shapes per stage; changes no CPU result
    meta = {"env": environment(device), "budget_minutes": budget_minutes, "deadline_minutes": deadline_minutes,
            "seed": seed, "batches": batches or {}, "precision": precision, "stages": {}}
    dlog(f"environment {json.dumps(meta['env'])}")
    dlog(f"budget {budget_minutes} min of training, deadline {deadline_minutes} min, precision {precision}, "
         f"batch overrides {batches or 'none'}, run dir {run_dir}")
    reserve = 0.6     # minutes kept for the last save and the bundle
    notes: list[str] = []       # what went other than planned; the run's status is "ok" without any
    try:
        data = EmojiData(data_dir)
        dlog(f"data: {len(data)} images from {data_dir}")
        if preflight:
            t = time.time()
            pre = Path(tempfile.mkdtemp(prefix="emoji-preflight-"))
            train_plan([(s, 5.0) for s in STAGES if s != "sr_last"], run_dir=pre, seed=seed, max_steps=2,
                       precision=precision, device=device, batches=batches, data=data)
            shutil.rmtree(pre, ignore_errors=True)
            dlog(f"preflight: 2 steps of every stage in {time.time() - t:.1f} s")
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
        budgets = {k: budget_minutes * v for k, v in BUDGET_SHARES.items()}
        plan = [(k, m) for k, m in remaining_plan(budgets, run_dir) if m > 0]
        for i, (name, minutes) in enumerate(plan):
            elapsed = (time.time() - t0) / 60
            # each stage to come needs some setup time (models, CLIP statistics, the first save): 0.25 min each
            left = deadline_minutes - elapsed - reserve - 0.25 * (len(plan) - i)
            needed = sum(m for _, m in plan[i:])
            # short of time: every stage still to come gets the same share of its budget
            run_for = minutes if needed <= left else max(0.0, minutes * left / needed)
            if run_for < minutes and run_for < 0.02:
                dlog(f"{name}: skipped, {left:.2f} min left before the deadline")
                notes.append(f"{name} skipped (deadline)")
                continue
            if run_for < minutes - 1e-6:
                notes.append(f"{name} cut short")
                dlog(f"{name}: {run_for:.2f} of its {minutes:.2f} min (deadline)")
            before = _progress(run_dir, name)
            t = time.time()
            try:
                train_plan([(name, run_for)], run_dir=run_dir, seed=seed, max_steps=max_steps, budgets=budgets,
                           precision=precision, device=device, batches=batches, data=data)
            except Exception as e:     # noqa: BLE001 - e.g. out of memory at a batch override: the next stage
                notes.append(f"{name} failed: {type(e).__name__}: {e}")     # (sr needs no decoder) still trains
                dlog(notes[-1])
                import traceback

                with open(out / LOG_FILE, "a", encoding="utf-8") as f:
                    traceback.print_exc(file=f)
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                if name == "clip":
                    raise                 # every later stage needs the CLIP
                continue
            after = _progress(run_dir, name)
            steps = after["step"] - before["step"]
            train_min = max(after["elapsed"] - before["elapsed"], 1e-9) / 60
            rate = {"steps": steps, "train_minutes": round(train_min, 2), "wall_s": round(time.time() - t, 1),
                    "steps_per_minute": round(steps / train_min, 1), "batch": after["batch"]}
            meta["stages"][name] = rate
            dlog(f"{name}: {steps} steps in {train_min:.2f} min of training ({rate['steps_per_minute']} steps/min, "
                 f"batch {after['batch']}, {rate['wall_s']} s wall) on {device_name(device)}")
    except BaseException as e:     # noqa: BLE001 - what trained so far still goes back
        notes.append(f"failed: {type(e).__name__}: {e}")
        dlog(notes[-1])
        import traceback

        with open(out / LOG_FILE, "a", encoding="utf-8") as f:
            traceback.print_exc(file=f)
    if device.startswith("cuda"):
        meta["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
        dlog(f"peak GPU memory {meta['peak_gpu_memory_gib']} GiB")
    status = "; ".join(notes) or "ok"
    meta["status"] = status
    meta["wall_minutes"] = round((time.time() - t0) / 60, 2)
    result = {"status": status}
    try:
        payload = payload_from_run(run_dir, meta)
        if payload["stages"]:
            bundle = write_bundle(out, payload)
            dlog(f"bundle: {len(bundle['parts'])} parts, {bundle['bytes'] / MiB:.1f} MiB ({bundle['shadow_dtype']}),"
                 f" stages {', '.join(payload['stages'])}")
            result["bundle"] = bundle
        else:
            dlog("bundle: no stage saved a checkpoint, nothing to bring back")
    except Exception as e:          # noqa: BLE001
        result["status"] = status = f"{status}; bundle failed: {type(e).__name__}: {e}"
        dlog(result["status"])
    problems = check_out_dir(out)
    for f in sorted(out.iterdir()):
        dlog(f"out: {f.name} {f.stat().st_size / MiB:.2f} MiB")
    dlog(f"done: {status}, {(time.time() - t0) / 60:.2f} min wall" + (f"; OUT PROBLEMS: {problems}" if problems else
                                                                       ", $OUT within the tool's limits"))
    result["out_problems"] = problems
    return result


# ── here ────────────────────────────────────────────────────────────────────────────────────────────────

def import_run(src: Path, run_dir: Path, force: bool = False) -> dict:
    """A fetched device folder -> a run dir that eval / export / assemble / status read as a CPU run's."""
    from .train import DownstreamStage, STAGE_CLASSES, ckpt_path, save_atomic

    payload = read_bundle(src)
    if not (src / BUNDLE_FILE).is_file():
        src = next(src.glob(f"**/{BUNDLE_FILE}")).parent
    existing = [s for s in payload["stages"] if ckpt_path(run_dir, s).is_file()]
    if existing and not force:
        raise FileExistsError(f"{run_dir}: already holds {', '.join(existing)} checkpoints (--force replaces them)")
    run_dir.mkdir(parents=True, exist_ok=True)
    if payload["sizes"] is not None:
        (run_dir / "sizes.json").write_text(json.dumps(payload["sizes"], indent=1) + "\n")
    env = payload["meta"].get("env", {})
    origin = {"bundle": str(src), "env": env, "shadow_dtype": payload.get("shadow_dtype", "float32"),
              "status": payload["meta"].get("status")}
    for name, st in payload["stages"].items():
        ck = {"stage": name, "step": st["step"], "elapsed": st["elapsed"], "sizes": payload["sizes"],
              "warmup_from": st.get("warmup_from", 0), "precision": st.get("precision", "fp32"),
              "model": {k: e["shadow"] for k, e in st["ema"].items()}, "ema": st["ema"],
              "extra": st.get("extra", []), "from_device": origin}
        for k in ("batch", "device"):
            if k in st:
                ck[k] = st[k]
        save_atomic(ck, ckpt_path(run_dir, name))
    if any(issubclass(STAGE_CLASSES[s], DownstreamStage) for s in payload["stages"]):
        (run_dir / "clip_frozen").touch()
    for f, text in payload["logs"].items():
        with open(run_dir / f, "a", encoding="utf-8") as fh:
            fh.write(text)
    if (src / LOG_FILE).is_file():
        shutil.copyfile(src / LOG_FILE, run_dir / LOG_FILE)
    (run_dir / "device-run.json").write_text(json.dumps(payload["meta"], indent=1) + "\n")
    return {"run": str(run_dir), "stages": {s: {"steps": st["step"], "minutes": round(st["elapsed"] / 60, 2),
                                                "device": st.get("device", "cpu")}
                                            for s, st in payload["stages"].items()},
            "status": payload["meta"].get("status"), "shadow_dtype": origin["shadow_dtype"]}


def main_train(a) -> int:
    from .train import parse_batches

    t0 = float(os.environ["EMOJI_T0"]) if os.environ.get("EMOJI_T0") else None   # set by train-on-device.sh
    r = train_on_device(a.out, a.budget_minutes, a.deadline_minutes, a.device, a.data, a.run, a.seed,
                        parse_batches(a.batch), not a.no_preflight, a.max_steps, t0)
    # 0 when the bundle came out (even if cut short or a stage failed: the log says), 1 when there is nothing
    return 0 if "bundle" in r and not r["out_problems"] else 1


def main_import(a) -> int:
    print(json.dumps(import_run(a.src, a.run, a.force), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit("use: python -m unclip_toolchain.emoji gpu-train | gpu-import")
