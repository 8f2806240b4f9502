"""Builds the emoji training set: one compact file of 64x64 RGBA images + a JSON index of captions.

    python -m unclip_toolchain.emoji data            # -> models/work/emoji-data/emoji64.npz + emoji64.json

Sources (see sources.py): Noto and Twemoji 64 px PNGs from emoji-datasource-{google,twitter}, Fluent Emoji Flat
SVGs rasterised to 64 px with @resvg/resvg-js, labels and tags from emojibase-data (CLDR). Skin-tone variants
are skipped (near duplicates); byte-identical images within a style are merged into one image carrying all of
their concept keys. Flags are kept but down-weighted by the sampler (FLAG_WEIGHT).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .sources import DATA_DIR, NPM_PREFIX, PACKAGES, ensure_npm_packages, node_modules

SIZE = 64
STYLES = ("noto", "twemoji", "fluent")
SKIN_TONES = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}
FLAG_WEIGHT = 0.25
DATASET_FILE = "emoji64.npz"
INDEX_FILE = "emoji64.json"


def norm_key(code: str) -> str:
    """Join key: lowercase codepoints without FE0F, '-'-separated (datasource unified, emojibase hexcode, iconify)."""
    parts = [p for p in code.lower().replace("_", "-").split("-") if p and p != "fe0f"]
    return "-".join(parts)


def is_skin_variant(key: str) -> bool:
    parts = key.split("-")
    return len(parts) > 1 and any(p in SKIN_TONES for p in parts)


def load_concepts(nm: Path) -> dict[str, dict]:
    """key -> {label, tags, group, subgroup, flag} from emojibase-data (top-level entries only: no skin tones)."""
    data = json.loads((nm / "emojibase-data" / "en" / "data.json").read_text(encoding="utf-8"))
    meta = json.loads((nm / "emojibase-data" / "meta" / "groups.json").read_text(encoding="utf-8"))
    concepts = {}
    for rec in data:
        if "group" not in rec:        # regional indicator letters: not emoji on their own
            continue
        key = norm_key(rec["hexcode"])
        group = meta["groups"][str(rec["group"])]
        concepts[key] = {
            "label": rec["label"],
            "tags": list(rec.get("tags", [])),
            "group": group,
            "subgroup": meta["subgroups"].get(str(rec.get("subgroup")), ""),
            "flag": group == "flags",
        }
    return concepts


def rgba_from_png(data: bytes) -> np.ndarray:
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGBA")
    if img.size != (SIZE, SIZE):
        raise ValueError(f"expected {SIZE}x{SIZE}, got {img.size}")
    return np.asarray(img, dtype=np.uint8)


def png_style_images(nm: Path, package: str, folder: str) -> list[tuple[str, bytes]]:
    """(key, png bytes) for every non-skin image of a datasource package (emoji.json order)."""
    pkg = nm / package
    records = json.loads((pkg / "emoji.json").read_text(encoding="utf-8"))
    out = []
    for rec in records:
        path = pkg / "img" / folder / "64" / rec["image"]
        if not path.is_file():
            continue
        out.append((norm_key(rec["unified"]), path.read_bytes()))
    return out


def fluent_images(prefix: Path) -> list[tuple[str, bytes, np.ndarray]]:
    """(key, raw-pixel bytes, rgba) for every Fluent icon, rasterised by rasterize_fluent.mjs."""
    script = Path(__file__).with_name("rasterize_fluent.mjs")
    with tempfile.TemporaryDirectory() as tmp:
        rgba_path, json_path = Path(tmp) / "fluent.rgba", Path(tmp) / "fluent.json"
        subprocess.run(["node", str(script), str(prefix), str(rgba_path), str(json_path)], check=True)
        meta = json.loads(json_path.read_text())
        raw = np.fromfile(rgba_path, dtype=np.uint8).reshape(meta["count"], SIZE, SIZE, 4)
    return [(norm_key(icon["key"]), raw[i].tobytes(), raw[i]) for i, icon in enumerate(meta["icons"])]


def merge_duplicates(items: list[tuple[str, bytes, np.ndarray]], concepts: dict) -> tuple[list[dict], dict]:
    """Drop skin variants and unlabelled keys; merge byte-identical images (same style) into one entry."""
    by_digest: dict[str, dict] = {}
    stats = {"seen": 0, "skin": 0, "unlabelled": 0, "duplicates": 0}
    for key, blob, rgba in items:
        stats["seen"] += 1
        if is_skin_variant(key):
            stats["skin"] += 1
            continue
        if key not in concepts:
            stats["unlabelled"] += 1
            continue
        digest = hashlib.md5(blob).hexdigest()
        if digest in by_digest:
            stats["duplicates"] += 1
            if key not in by_digest[digest]["keys"]:
                by_digest[digest]["keys"].append(key)
            continue
        by_digest[digest] = {"keys": [key], "rgba": rgba, "md5": digest}
    return list(by_digest.values()), stats


def build_dataset(out_dir: Path = DATA_DIR, prefix: Path = NPM_PREFIX, install: bool = True) -> dict:
    if install:
        ensure_npm_packages(prefix)
    nm = node_modules(prefix)
    concepts = load_concepts(nm)
    per_style = {
        "noto": [(k, b, rgba_from_png(b)) for k, b in png_style_images(nm, "emoji-datasource-google", "google")],
        "twemoji": [(k, b, rgba_from_png(b)) for k, b in png_style_images(nm, "emoji-datasource-twitter", "twitter")],
        "fluent": fluent_images(prefix),
    }
    images, entries, counts = [], [], {}
    for style in STYLES:
        merged, stats = merge_duplicates(per_style[style], concepts)
        stats["images"] = len(merged)
        counts[style] = stats
        for m in merged:
            images.append(m["rgba"])
            entries.append({"style": style, "keys": m["keys"], "md5": m["md5"]})
    used = sorted({k for e in entries for k in e["keys"]})
    index = {
        "format": 1,
        "size": SIZE,
        "styles": list(STYLES),
        "packages": PACKAGES,
        "flag_weight": FLAG_WEIGHT,
        "counts": {"per_style": counts, "images": len(entries), "concepts": len(used),
                   "flag_concepts": sum(concepts[k]["flag"] for k in used)},
        "concepts": {k: concepts[k] for k in used},
        "images": entries,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / DATASET_FILE, rgba=np.stack(images))
    (out_dir / INDEX_FILE).write_text(json.dumps(index, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return index


class EmojiData:
    """The built dataset in memory: rgba uint8 [N,64,64,4], per-image style/keys, concept table, sample weights."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        npz, idx = data_dir / DATASET_FILE, data_dir / INDEX_FILE
        for p in (npz, idx):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: emoji dataset missing; run `python -m unclip_toolchain.emoji data`")
        self.rgba = np.load(npz)["rgba"]
        self.index = json.loads(idx.read_text(encoding="utf-8"))
        self.images = self.index["images"]
        self.concepts = self.index["concepts"]
        self.concept_keys = sorted(self.concepts)
        self.concept_id = {k: i for i, k in enumerate(self.concept_keys)}
        w = np.array([self.index["flag_weight"] if self.concepts[e["keys"][0]]["flag"] else 1.0 for e in self.images])
        self.weights = w / w.sum()

    def __len__(self) -> int:
        return len(self.images)
