"""The emoji dataset builder (issue #5): key joins, captions, duplicate merging, held-out split, compositions.

Uses a few synthetic PNGs in a fake npm tree, so it needs neither the network nor models/work.
"""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest

from unclip_toolchain.emoji import captions as cap
from unclip_toolchain.emoji import dataset as ds
from unclip_toolchain.emoji.batches import compose


def _png(rgba: tuple[int, int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (64, 64), rgba).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def fake_npm(tmp_path):
    nm = tmp_path / "node_modules"
    (nm / "emojibase-data" / "en").mkdir(parents=True)
    (nm / "emojibase-data" / "meta").mkdir(parents=True)
    data = [
        {"label": "red apple", "hexcode": "1F34E", "tags": ["apple", "fruit", "red"], "group": 4, "subgroup": 42},
        {"label": "flag: France", "hexcode": "1F1EB-1F1F7", "tags": ["flag"], "group": 9, "subgroup": 98},
        {"label": "flag: St. Martin", "hexcode": "1F1F2-1F1EB", "tags": ["flag"], "group": 9, "subgroup": 98},
        {"label": "red heart", "hexcode": "2764-FE0F", "tags": ["heart"], "group": 0, "subgroup": 12},
        {"label": "regional indicator F", "hexcode": "1F1EB"},
    ]
    (nm / "emojibase-data" / "en" / "data.json").write_text(json.dumps(data))
    (nm / "emojibase-data" / "meta" / "groups.json").write_text(json.dumps({
        "groups": {"0": "smileys-emotion", "4": "food-drink", "9": "flags"},
        "subgroups": {"12": "heart", "42": "food-fruit", "98": "country-flag"}}))
    pkg = nm / "emoji-datasource-google"
    (pkg / "img" / "google" / "64").mkdir(parents=True)
    records = []
    for unified, colour in [("1F34E", (200, 0, 0, 255)), ("1F1EB-1F1F7", (0, 0, 200, 255)),
                            ("1F1F2-1F1EB", (0, 0, 200, 255)), ("2764-FE0F", (255, 0, 0, 128)),
                            ("1F34F", (0, 200, 0, 255))]:  # 1F34F has no emojibase label in this fake
        name = unified.lower() + ".png"
        (pkg / "img" / "google" / "64" / name).write_bytes(_png(colour))
        records.append({"unified": unified, "image": name})
    (pkg / "emoji.json").write_text(json.dumps(records))
    return nm


def test_norm_key_joins_sources():
    assert ds.norm_key("2764-FE0F") == "2764"
    assert ds.norm_key("1F6B4-1F3FD-200D-2642-FE0F") == "1f6b4-1f3fd-200d-2642"
    assert ds.is_skin_variant("1f6b4-1f3fd-200d-2642")
    assert not ds.is_skin_variant("1f3fd")            # the swatch itself is a concept
    assert not ds.is_skin_variant("1f6b4-200d-2642")


def test_concepts_and_duplicate_merge(fake_npm):
    concepts = ds.load_concepts(fake_npm)
    assert "1f1eb" not in concepts                        # regional indicators have no group
    assert concepts["2764"]["label"] == "red heart"
    assert concepts["1f1eb-1f1f7"]["flag"] and not concepts["1f34e"]["flag"]
    items = [(k, b, ds.rgba_from_png(b)) for k, b in ds.png_style_images(fake_npm, "emoji-datasource-google", "google")]
    merged, stats = ds.merge_duplicates(items, concepts)
    assert stats == {"seen": 5, "skin": 0, "unlabelled": 1, "duplicates": 1}
    keys = sorted(tuple(m["keys"]) for m in merged)
    # France and St. Martin are byte-identical PNGs: one image carrying both concepts
    assert ("1f1eb-1f1f7", "1f1f2-1f1eb") in keys
    assert len(merged) == 3
    heart = next(m for m in merged if m["keys"] == ["2764"])
    assert heart["rgba"].shape == (64, 64, 4) and heart["rgba"][0, 0, 3] == 128


def test_captions_use_label_style_and_composition():
    concept = {"label": "rocket", "tags": ["space"], "flag": False}
    assert cap.caption(concept, "twemoji", 1, cap.Composition()) == "a rocket, twemoji style"
    c = cap.caption(concept, "noto", 0, cap.Composition("blue", 0.5, "top left"))
    assert c == "rocket, small, in the top left corner, on a blue background"
    assert cap.caption({"label": "orange", "tags": []}, "fluent", 4, cap.Composition("orange")) == \
        "an emoji of an orange, on an orange background"
    assert "!" not in cap.clean_label("double exclamation mark!!")


def test_heldout_split_is_deterministic_and_never_trained():
    keys = ["1f680", "1f34e", "2764", "1f1eb-1f1f7"]
    first = [(cap.heldout_template(k), cap.heldout_colour(k)) for k in keys]
    assert first == [(cap.heldout_template(k), cap.heldout_colour(k)) for k in keys]
    assert all(t != 0 for t, _ in first)                   # template 0 (bare label) is the retrieval query
    assert len(set(first)) > 1                             # depends on the key
    concept = {"label": "rocket", "tags": ["space", "rocket"]}
    held_caption, held_comp = cap.heldout_example("1f680", concept, "noto")
    rng = random.Random(0)
    for _ in range(300):
        text, comp = cap.sample_training(rng, "1f680", concept, "noto")
        assert comp.colour != held_comp.colour
        assert text != held_caption


def test_compose_places_scaled_image_on_background():
    rgba = np.zeros((1, 64, 64, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 255                                    # opaque red square
    out = compose(rgba, [cap.Composition("blue", 0.5, "top left")])
    assert out.shape == (1, 3, 64, 64)
    assert out[0, :, 5, 5].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-3)
    blue = [c / 255 for c in cap.COLOURS["blue"]]
    assert out[0, :, 60, 60].tolist() == pytest.approx(blue, abs=1e-3)
    plain = compose(rgba, [cap.Composition()])
    assert float(plain[0, 0].min()) == pytest.approx(1.0)
