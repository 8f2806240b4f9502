"""CLI: python -m unclip_toolchain.emoji {data,train,assemble,export,eval,all,ar-prior,prior-curve,decoder-curve,
gpu-train,gpu-import}
(see --help of each)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .sources import DATA_DIR, RUN_DIR

# Share of the training budget per stage for `all` (CLIP first, then prior, decoder, super-resolution). A 170-min
# float32 run with shares .15/.07/.58/.20 on a CPU without native bf16 reached pipeline top-5 only 46.5 %: its
# decoder had 5,356 steps, and the decoder is what gains from time. With these shares and bf16 autocast, 120 min on
# the 2-core Zen 5 VM gave the shipped pack (decoder 10,325 steps, pipeline top-5 54.0 %; see its MODEL_CARD.md).
# No sr_last share: the x0 super_res_first serves both super-resolution graphs.
BUDGET_SHARES = {"clip": 0.12, "prior": 0.06, "decoder": 0.68, "sr": 0.14}
DEFAULT_PACK = Path(__file__).resolve().parents[4] / "models" / "emoji-tiny"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m unclip_toolchain.emoji")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("data", help="build models/work/emoji-data from the pinned npm packages")
    p.add_argument("--out", type=Path, default=DATA_DIR)
    p = sub.add_parser("train", help="train stages for given minutes each, resuming from checkpoints")
    p.add_argument("--plan", required=True, help="e.g. clip=12,prior=8,decoder=35,sr=8,sr_last=2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", type=Path, default=RUN_DIR)
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--max-steps", type=int, default=None, help="stop each stage after this many steps (smoke runs)")
    p.add_argument("--precision", default="auto", help="auto (bf16 where the CPU has it natively), bf16 or fp32")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto (CUDA when torch sees a GPU)")
    p.add_argument("--batch", default=None, help="per-stage batch overrides, e.g. decoder=192,sr=128 (a recipe "
                                                 "change: see models/README.md, Training on a GPU)")
    p = sub.add_parser("status", help="steps and minutes trained per stage")
    p.add_argument("--run", type=Path, default=RUN_DIR)
    p = sub.add_parser("assemble", help="EMA weights -> diffusers UnCLIPPipeline (+ image encoder) save_pretrained")
    p.add_argument("--run", type=Path, default=RUN_DIR)
    p = sub.add_parser("export", help="assembled pipeline -> model pack via the toolchain exporter")
    p.add_argument("--run", type=Path, default=RUN_DIR)
    p.add_argument("--out", type=Path, default=DEFAULT_PACK)
    p = sub.add_parser("eval", help="CLIP retrieval, prior/decoder cosines, pipeline retrieval, contact sheet")
    p.add_argument("--run", type=Path, default=RUN_DIR)
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--out", type=Path, default=DEFAULT_PACK)
    p.add_argument("--prompts", type=int, default=200)
    p.add_argument("--sheet-prompts", type=int, default=64)
    p = sub.add_parser("all", help="data -> train (budget split over stages) -> eval -> export; rerun to resume")
    p.add_argument("--budget-minutes", type=float, default=120.0,
                   help="training minutes in all (data, eval and export add ~3); a rerun trains what is left")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", type=Path, default=RUN_DIR)
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--out", type=Path, default=DEFAULT_PACK)
    p.add_argument("--precision", default="auto", help="auto (bf16 where the CPU has it natively), bf16 or fp32")
    p.add_argument("--device", default="cpu", help="training: cpu (default), cuda or auto; eval stays on the CPU")
    p.add_argument("--batch", default=None, help="training: per-stage batch overrides, e.g. decoder=192")
    p = sub.add_parser("gpu-train", help="on the device machine: the from-scratch recipe on CUDA within a deadline, "
                                         "EMA weights bundled into --out (see gpu.py, models/toolchain/gpu)")
    p.add_argument("--out", type=Path, required=True, help="folder the device tool brings back ($OUT)")
    p.add_argument("--budget-minutes", type=float, default=6.0, help="training minutes, split as in `all`")
    p.add_argument("--deadline-minutes", type=float, default=8.5,
                   help="hard wall limit of the whole command (from EMOJI_T0 when set); stages are cut to fit")
    p.add_argument("--device", default="auto", help="auto (CUDA when torch sees a GPU), cuda or cpu (dry runs)")
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--run", type=Path, default=None, help="run dir on the device (default $TMPDIR/emoji-run-gpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", default=None, help="per-stage batch overrides, e.g. decoder=192,sr=128")
    p.add_argument("--max-steps", type=int, default=None, help="stop each stage after this many steps (dry runs)")
    p.add_argument("--no-preflight", action="store_true", help="skip the 2-step run of every stage first")
    p = sub.add_parser("gpu-import", help="here: a fetched gpu-train folder -> a run dir for eval / export")
    p.add_argument("--from", dest="src", type=Path, required=True, help="the folder the device tool fetched")
    p.add_argument("--run", type=Path, default=RUN_DIR.parent / "emoji-run-gpu")
    p.add_argument("--force", action="store_true", help="replace checkpoints already in --run")
    p = sub.add_parser("ar-prior", help="autoregressive prior: codes (PCA + buckets), train, eval (see ar_prior.py)")
    p.add_argument("action", choices=("codes", "train", "eval", "export", "parity"),
                   help="export: into --pack (schema v2); parity: the engine test's fixture (PyTorch on injected draws)")
    p.add_argument("--work", type=Path, default=None, help="default models/work/ar-prior")
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    p.add_argument("--minutes", type=float, default=18.0, help="train: wall minutes more (resumes)")
    p.add_argument("--total-minutes", type=float, default=None, help="train: whole budget, sets the lr schedule")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="train: torch threads (1 on a shared, oversubscribed CPU)")
    for name, module, component, every, patience in (("prior-curve", "prior_curve.py", "prior.onnx", 500, 2),
                                                     ("decoder-curve", "decoder_curve.py",
                                                      "decoder.onnx + text_proj.onnx", 1000, 3)):
        stage = name.split("-")[0]
        p = sub.add_parser(name, help=f"{stage} resumed from the pack, trained in chunks with held-out evaluation "
                                      f"until it stops improving (see {module})")
        p.add_argument("action", choices=("init", "run", "table", "write-curve", "export", "refresh-eval", "hashes"),
                       help="init: run dir from the pack's weights; run: train + evaluate; table: the curve as "
                            f"markdown; write-curve: the curve into --pack; export: a snapshot's {component} into "
                            f"--pack; refresh-eval: its {stage}-dependent eval.json figures; hashes: manifest "
                            "sha256s after editing the card")
        p.add_argument("--work", type=Path, default=None, help=f"default models/work/{name}")
        p.add_argument("--data", type=Path, default=DATA_DIR)
        p.add_argument("--pack", type=Path, default=DEFAULT_PACK)
        p.add_argument("--every", type=int, default=every, help="run: training steps between evaluations")
        p.add_argument("--patience", type=int, default=patience,
                       help="run: stop after this many evaluations without a new best")
        p.add_argument("--minutes", type=float, default=60.0, help="run: wall minutes at most (resumes)")
        p.add_argument("--budget-minutes", type=float, default=None,
                       help=f"run: the {stage}'s whole training minutes (the pack's included): the lr cools down to 0 "
                            "over their last fifth, as under `emoji all`; default: constant lr")
        p.add_argument("--step", type=int, default=None,
                       help="write-curve / export / refresh-eval: the snapshot's step (default: the best)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=1, help="run: torch threads (1 on the shared CPU)")
        p.add_argument("--device", default="cpu", help="run: where the stage trains, cpu (default), cuda or auto; "
                                                       "the evaluations stay on the CPU")
        if stage == "decoder":
            p.add_argument("--images", type=int, default=300, help="run: images per decoder evaluation")
    a = ap.parse_args(argv)

    if a.cmd == "data":
        from .dataset import build_dataset

        idx = build_dataset(a.out)
        print(idx["counts"])
    elif a.cmd == "train":
        from .train import parse_plan, train_plan

        from .train import parse_batches

        train_plan(parse_plan(a.plan), run_dir=a.run, data_dir=a.data, seed=a.seed, max_steps=a.max_steps,
                   precision=a.precision, device=a.device, batches=parse_batches(a.batch))
    elif a.cmd == "gpu-train":
        from . import gpu

        return gpu.main_train(a)
    elif a.cmd == "gpu-import":
        from . import gpu

        return gpu.main_import(a)
    elif a.cmd == "status":
        from .train import stage_summary

        for k, v in stage_summary(a.run).items():
            print(k, v)
    elif a.cmd == "assemble":
        from .pipeline import assemble

        print(assemble(a.run))
    elif a.cmd == "export":
        from .pipeline import export_pack

        export_pack(a.run, a.out)
    elif a.cmd == "eval":
        from .evaluate import evaluate

        evaluate(a.run, a.data, a.out, n_prompts=a.prompts, sheet_prompts=a.sheet_prompts)
    elif a.cmd == "prior-curve":
        from . import prior_curve

        prior_curve.main(a)
    elif a.cmd == "decoder-curve":
        from . import decoder_curve

        decoder_curve.main(a)
    elif a.cmd == "ar-prior":
        from . import ar_prior

        work = a.work or ar_prior.WORK_DIR
        if a.action == "codes":
            ar_prior.codes_report(work, a.data, a.pack)
        elif a.action == "train":
            print(ar_prior.train(a.minutes, work, a.data, a.pack, seed=a.seed, max_steps=a.max_steps,
                                 total_minutes=a.total_minutes, threads=a.threads))
        elif a.action == "eval":
            ar_prior.evaluate(work, a.data, a.pack)
        elif a.action == "export":
            m = ar_prior.add_to_pack(a.pack, work, ar_prior.default_settings(work), ar_prior.default_samples(work))
            print(m["ar_prior"], "onnx vs torch max |logits| diff", ar_prior.check_onnx(a.pack, work))
            ar_prior.add_cached_to_pack(a.pack, work)
            print("KV-cache graphs: start + step vs the full graph, max |logits| diff", ar_prior.check_cached(a.pack, work))
        else:
            fx = ar_prior.parity_fixture(ar_prior.PARITY_FIXTURE, a.pack, work,
                                         settings=ar_prior.default_settings(work))
            print(ar_prior.PARITY_FIXTURE, "onnx vs torch max |logits| diff", fx["onnx_vs_torch_max_abs_logits"])
    elif a.cmd == "all":
        from .dataset import INDEX_FILE, build_dataset
        from .evaluate import evaluate
        from .pipeline import export_pack
        from .train import parse_batches, remaining_plan, train_plan

        if not (a.data / INDEX_FILE).is_file():
            build_dataset(a.data)
        # minutes left per stage, so an interrupted `all` resumes where its budget stands
        budgets = {k: a.budget_minutes * v for k, v in BUDGET_SHARES.items()}
        plan = remaining_plan(budgets, a.run)
        train_plan(plan, run_dir=a.run, data_dir=a.data, seed=a.seed, budgets=budgets, precision=a.precision,
                   device=a.device, batches=parse_batches(a.batch))
        evaluate(a.run, a.data, a.out)   # writes eval.json, contact-sheet.png, MODEL_CARD.md
        export_pack(a.run, a.out)        # assembles the pipeline and exports it with the card
    return 0


if __name__ == "__main__":
    sys.exit(main())
