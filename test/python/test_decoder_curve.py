"""The decoder curve (unclip_toolchain.emoji.decoder_curve on resume.py, issue #19): the chunk loop and its stopping
rule, init from the shipped pack, and the export round trip."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import ROOT

from unclip_toolchain.emoji import resume
from unclip_toolchain.emoji.decoder_curve import MODULES, NOISE_FLOOR, init_from_pack, modules_from_states
from unclip_toolchain.emoji.dataset import INDEX_FILE
from unclip_toolchain.emoji.sources import DATA_DIR
from unclip_toolchain.emoji.train import ckpt_path

PACK = Path(os.environ.get("EMOJI_PACK", ROOT / "models" / "emoji-tiny"))
needs_pack = pytest.mark.skipif(not (PACK / "manifest.json").is_file(), reason="models/emoji-tiny not exported")


class FakeStage:
    """train.Stage's interface to run_chunks: resumes from its checkpoint, trains, saves."""

    name = "decoder"
    minutes_asked: list[float] = []
    budgets: list[float | None] = []

    def __init__(self, work, data, sizes, seed, precision) -> None:
        self.work = work

    def train(self, minutes, max_steps=None, budget_minutes=None) -> None:
        FakeStage.minutes_asked.append(minutes)
        FakeStage.budgets.append(budget_minutes)
        ck = torch.load(ckpt_path(self.work, "decoder"), weights_only=False)
        self.step, self.elapsed = ck["step"] + max_steps, ck["elapsed"] + 60.0
        self.emas = {"decoder": SimpleNamespace(shadow={"w": torch.tensor(float(self.step))})}
        save(self.work, self.step, self.elapsed)


def save(work: Path, step: int, elapsed: float) -> None:
    ckpt_path(work, "decoder").parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": step, "elapsed": elapsed, "ema": {"decoder": {"shadow": {"w": torch.tensor(float(step))}}}},
               ckpt_path(work, "decoder"))


def test_chunks_stop_after_patience_evaluations_without_a_new_best_beyond_the_seed_noise(tmp_path):
    # top-5 per seed by step; the start's seed spread (0.02) is the noise
    top5 = {100: (0.60, 0.62), 110: (0.66, 0.66), 120: (0.67, 0.66), 130: (0.65, 0.66), 140: (0.66, 0.67)}
    evaluate = lambda emas: {s: {"top5": top5[int(emas["decoder"]["w"])][s], "cos": 0.9} for s in (0, 1)}  # noqa
    save(tmp_path, 100, 600.0)
    FakeStage.minutes_asked = []
    curve = resume.run_chunks(tmp_path, FakeStage, None, evaluate, lambda emas: emas, NOISE_FLOOR, every=10,
                              patience=3, minutes=30.0, seed=0, precision="fp32",
                              first_extra=lambda emas: {"pipeline": {"top5": 0.5}})
    assert [r["step"] for r in curve] == [100, 110, 120, 130, 140]
    assert resume.stale_evals(curve, NOISE_FLOOR) == 3
    assert resume.best_row(curve)["step"] == 120
    assert "pipeline" in curve[0] and all("pipeline" not in r for r in curve[1:])
    assert curve[1]["train_minutes"] == 11.0
    assert json.loads((tmp_path / "curve.json").read_text()) == curve
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [f"decoder-{s}.pt" for s in top5]
    # each chunk gets at most the wall time left
    assert len(FakeStage.minutes_asked) == 4 and all(0 < m <= 30.0 for m in FakeStage.minutes_asked)


def test_no_time_left_means_only_the_starting_evaluation(tmp_path):
    save(tmp_path, 100, 600.0)
    FakeStage.minutes_asked = []
    curve = resume.run_chunks(tmp_path, FakeStage, None, lambda emas: {0: {"top5": 0.6, "cos": 0.9}},
                              lambda emas: emas, NOISE_FLOOR, every=10, patience=3, minutes=0.0, seed=0,
                              precision="fp32")
    assert [r["step"] for r in curve] == [100] and FakeStage.minutes_asked == []


@needs_pack
def test_reexporting_the_packs_own_decoder_reproduces_its_graphs_byte_for_byte(tmp_path):
    """from_pack.py's rebuild -> resume.export_modules: decoder.onnx and text_proj.onnx come back identical, so an
    exported snapshot differs from the shipped pack only by its weights."""
    from unclip_toolchain.from_pack import load_pack_pipeline

    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    pipe = load_pack_pipeline(pack)
    out = resume.export_modules(pack, modules_from_states(pack, {k: getattr(pipe, k).state_dict() for k in MODULES}))
    assert sorted(out) == ["decoder", "text_proj"]
    for name in out:
        assert (pack / f"{name}.onnx").read_bytes() == (PACK / f"{name}.onnx").read_bytes(), name
        assert out[name]["max_abs_err"] < 1e-3
    assert (pack / "manifest.json").read_bytes() == (PACK / "manifest.json").read_bytes()


@needs_pack
@pytest.mark.skipif(not (DATA_DIR / INDEX_FILE).is_file(), reason="emoji data not built (emoji data)")
def test_init_puts_the_packs_decoder_into_the_checkpoint_bit_identically(tmp_path):
    from unclip_toolchain.from_pack import load_pack_pipeline

    info = init_from_pack(PACK, tmp_path / "work", DATA_DIR)
    trained = json.loads((PACK / "eval.json").read_text())["training"]["decoder"]
    assert info["decoder_step"] == trained["steps"]
    ck = torch.load(ckpt_path(tmp_path / "work", "decoder"), weights_only=False)
    assert ck["step"] == ck["warmup_from"] == trained["steps"] and ck["elapsed"] == trained["minutes"] * 60
    pipe = load_pack_pipeline(PACK)
    for k in MODULES:
        ref = getattr(pipe, k).state_dict()
        for sd in (ck["model"][k], ck["ema"][k]["shadow"]):
            assert sd.keys() == ref.keys() and all(torch.equal(sd[n], ref[n]) for n in ref), k
        assert ck["ema"][k]["n"] == trained["steps"]
    with pytest.raises(FileExistsError):
        init_from_pack(PACK, tmp_path / "work", DATA_DIR)


def test_a_budget_turns_on_the_cool_down_and_stops_the_run_once_trained(tmp_path):
    save(tmp_path, 100, 600.0)                   # 10 min trained; each fake chunk trains 1 more
    FakeStage.minutes_asked, FakeStage.budgets = [], []
    curve = resume.run_chunks(tmp_path, FakeStage, None, lambda emas: {0: {"top5": 0.6, "cos": 0.9}},
                              lambda emas: emas, NOISE_FLOOR, every=10, patience=9, minutes=30.0, seed=0,
                              precision="fp32", budget_minutes=11.5)
    assert [r["step"] for r in curve] == [100, 110, 120]
    assert FakeStage.budgets == [11.5, 11.5]
    assert FakeStage.minutes_asked[0] == pytest.approx(1.5) and FakeStage.minutes_asked[1] == pytest.approx(0.5)
