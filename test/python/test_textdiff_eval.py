"""The pure parts of issue #19's text-diff evaluation (unclip_toolchain.emoji.textdiff_eval): border ring, nearest
palette colour, the θ sweep and the bookkeeping. The evaluation itself (engine runs) is not run here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unclip_toolchain.emoji.captions import COLOURS, Composition, caption, heldout_colour, heldout_template
from unclip_toolchain.emoji.textdiff_eval import (BORDER_PX, border_mask, border_rgb, colour_ranking, dumps,
                                                  nearest_colour, srgb_to_lab, summarise, sweep, theta_key, verdict)


def framed(size: int, ring: tuple, inside: tuple, width: int) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = ring
    img[width:size - width, width:size - width] = inside
    return img


def test_border_mask_is_the_outer_ring():
    m = border_mask(64, 2)
    assert m.sum() == 64 * 64 - 60 * 60
    assert m[0, 30] and m[1, 1] and m[63, 62] and not m[2, 2] and not m[32, 32]
    with pytest.raises(ValueError):
        border_mask(4, 2)


def test_border_rgb_ignores_the_inside_and_averages_the_ring():
    img = framed(64, (40, 90, 220), (255, 0, 0), BORDER_PX)
    assert np.allclose(border_rgb(img), (40, 90, 220))
    img[0, :] = (0, 0, 0)                                   # 64 of the 496 ring pixels black
    assert np.allclose(border_rgb(img), np.array((40, 90, 220)) * (1 - 64 / 496))


def test_lab_of_known_colours():
    assert np.allclose(srgb_to_lab((255, 255, 255)), (100, 0, 0), atol=0.01)
    assert np.allclose(srgb_to_lab((0, 0, 0)), (0, 0, 0), atol=1e-6)
    assert np.allclose(srgb_to_lab((255, 0, 0)), (53.24, 80.09, 67.20), atol=0.05)


def test_every_palette_colour_is_its_own_nearest_and_mixtures_go_to_the_closer():
    for space in ("lab", "rgb"):
        for name, rgb in COLOURS.items():
            assert nearest_colour(rgb, space=space) == name
    assert nearest_colour((235, 235, 240)) == "white"
    assert nearest_colour((60, 100, 210)) == "blue"
    # a blue ring with a fifth of white emoji on it is still blue
    blue, white = np.array(COLOURS["blue"]), np.array(COLOURS["white"])
    assert nearest_colour(0.8 * blue + 0.2 * white) == "blue"
    with pytest.raises(ValueError):
        nearest_colour((0, 0, 0), space="hsv")


def test_sweep_matches_the_cli_frames_and_max():
    assert sweep([0, 0.25, 0.5, 0.75]) == (4, 0.75)
    assert sweep([0, 0.5]) == (2, 0.5)
    for bad in ([0.25, 0.5], [0], [0, 0.25, 0.75]):
        with pytest.raises(ValueError):
            sweep(bad)
    assert theta_key(0.5) == "0.50" and theta_key(0) == "0.00"


def test_target_caption_is_the_heldout_caption_with_the_colour_phrase():
    concept = {"label": "red apple", "tags": ["apple", "fruit"]}
    key = "1f34e"
    t, c = heldout_template(key), heldout_colour(key)
    y0 = caption(concept, "noto", t, Composition())
    y = caption(concept, "noto", t, Composition(c))
    assert c != "white" and y.startswith(y0 + ", on a") and y.endswith(f"{c} background")


def edit(target, nearest, top5, text_top5=False):
    return {"target_colour": target, "source_colour": "white",
            "frames": {"0.00": {"nearest": "white", "top5": True, "text_top5": True},
                       "0.50": {"nearest": nearest, "top5": top5, "text_top5": text_top5}}}


def test_summary_and_verdict():
    edits = [edit("blue", "blue", True), edit("red", "red", False), edit("cyan", "white", True),
             edit("green", "blue", True, True)]
    s = summarise(edits, [0.0, 0.5])
    assert s["0.00"] == {"edits": 4, "border_hit_target": 0.0, "border_hit_source": 1.0, "top5": 1.0,
                         "text_top5": 1.0, "both": 0.0}
    assert s["0.50"]["border_hit_target"] == 0.5
    assert s["0.50"]["border_hit_source"] == 0.25
    assert s["0.50"]["top5"] == 0.75 and s["0.50"]["text_top5"] == 0.25 and s["0.50"]["both"] == 0.25
    v = verdict(s)
    assert v["theta"] == 0.5 and not v["border_pass"] and v["top5_pass"]


def test_dumps_puts_one_edit_per_line_and_round_trips():
    res = {"a": 1, "b": {"c": [1, 2]}, "edits": [{"key": "x", "f": [1, 0]}, {"key": "y", "f": [0, 1]}]}
    text = dumps(res)
    assert json.loads(text) == res
    assert '  {"key":"x","f":[1,0]},' in text.splitlines()
    assert json.loads(dumps({"a": 1})) == {"a": 1}


def test_ranking_orders_the_whole_palette():
    r = colour_ranking((160, 100, 200))             # a light purple: purple first, pink close
    assert r[0] == "purple" and sorted(r) == sorted(COLOURS)
    assert colour_ranking(COLOURS["gray"])[0] == "gray"


def test_summary_counts_near_misses_when_ranks_are_given():
    edits = [edit("purple", "pink", False), edit("black", "black", True)]
    edits[0]["frames"]["0.50"]["asked_rank"], edits[1]["frames"]["0.50"]["asked_rank"] = 2, 1
    for e in edits:
        e["frames"]["0.00"]["asked_rank"] = 5
    s = summarise(edits, [0.0, 0.5])
    assert s["0.50"]["border_asked_top2"] == 1.0 and s["0.00"]["border_asked_top2"] == 0.0
    assert "border_asked_top2" not in summarise([edit("red", "red", True)], [0.5])["0.50"]
