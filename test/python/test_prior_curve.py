"""The prior curve's stopping rule (unclip_toolchain.emoji.prior_curve on resume.py, issue #17)."""

from __future__ import annotations

from unclip_toolchain.emoji.prior_curve import NOISE_FLOOR
from unclip_toolchain.emoji.resume import best_row, noise, stale_evals


def row(step, top5_0, top5_1, cos):
    return {"step": step, "eval": {"0": {"top5": top5_0, "cos": cos, "cos_centred": cos},
                                   "1": {"top5": top5_1, "cos": cos, "cos_centred": cos}}}


def test_noise_is_the_seed_spread_of_the_first_evaluation_floored():
    assert abs(noise(row(0, 0.48, 0.50, 0.87), NOISE_FLOOR)["top5"] - 0.02) < 1e-9
    assert noise(row(0, 0.48, 0.48, 0.87), NOISE_FLOOR) == NOISE_FLOOR


def test_stale_counts_evaluations_since_the_last_improvement_beyond_noise():
    curve = [row(0, 0.48, 0.50, 0.870)]                 # noise: top-5 0.02, cos 0.001
    assert stale_evals(curve, NOISE_FLOOR) == 0
    curve.append(row(500, 0.52, 0.54, 0.870))           # top-5 mean +0.04: improved
    assert stale_evals(curve, NOISE_FLOOR) == 0
    curve.append(row(1000, 0.53, 0.54, 0.8705))         # +0.005 top-5, +0.0005 cos: within noise
    assert stale_evals(curve, NOISE_FLOOR) == 1
    curve.append(row(1500, 0.52, 0.53, 0.8720))         # cos +0.0015 over the best: improved
    assert stale_evals(curve, NOISE_FLOOR) == 0
    curve += [row(2000, 0.51, 0.52, 0.871), row(2500, 0.50, 0.52, 0.870)]
    assert stale_evals(curve, NOISE_FLOOR) == 2


def test_best_is_the_highest_mean_top5_then_cosine():
    curve = [row(0, 0.48, 0.50, 0.870), row(500, 0.53, 0.54, 0.871), row(1000, 0.54, 0.53, 0.875)]
    assert best_row(curve)["step"] == 1000


def test_a_resumed_stage_warms_its_fresh_optimiser_up_again():
    from unclip_toolchain.emoji.train import LR, WARMUP, lr_at

    # train.Stage uses lr_at(step - warmup_from): a prior rebuilt from the pack at step 917 restarts its warm-up
    assert lr_at(917 - 917, LR["prior"]) == LR["prior"] / WARMUP
    assert lr_at(917 + WARMUP - 917, LR["prior"]) == LR["prior"]
