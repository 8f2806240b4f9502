"""Issue #19's text-diff bar, measured through the studio's own engine (the `unclip textdiff` command).

    python -m unclip_toolchain.emoji.textdiff_eval --pack models/emoji-tiny --out FILE.json [--n N --seed S]
        [--sheet STRIP.png] [--thetas 0,0.25,0.5,0.75]

The bar: "for held-out concepts edited towards '… on a <colour> background' at θ = 0.5, the border colour is nearest
the asked colour in ≥ 80 % of edits and the edited image still retrieves its concept in the top 5 in ≥ 60 %."

* Edits. The dataset's held-out split is per concept (captions.py): one caption template and one background colour
  are never seen with that concept in training. A seeded sample of `n` concepts (flags and the "component" group
  left out, as evaluate.py's pipeline prompts do: flags fill the picture's width, so their border ring is the flag),
  one of each concept's pictures (seeded choice of style). Source: that dataset picture composited full size on
  white (the dataset's default composition, which its captions leave unsaid), so the source caption y0 is the
  held-out template with no composition phrase and describes the picture exactly, and the target y is the concept's
  held-out caption, y0 + ", on a <held-out colour> background" (never white). A dataset picture rather than a
  generated one keeps the prior out of it: the only things measured are the inversion and the edit.
* Engine. One `node main/cli/bin.mjs textdiff SRC.png --from y0 --to y --frames K --max θmax --no-save --out DIR
  --json --threads 1 --seed 0` per edit (≈ 4 s cold on 2 shared cores, inversion included): it inverts the picture
  with y0 as its caption (DDIM, 50 steps, 2 refinements, guidance 1: the CLI's defaults), then decodes the θ sweep
  0 … θmax with the picture's x_T (θ = 0 is the reconstruction). The default sweep 0, 0.25, 0.5, 0.75 is one
  decoder call of 4 frames. The pack is copied to a temporary folder first, so a re-export during the run cannot
  mix two packs; its manifest sha256 is recorded.
* Border colour: mean RGB of the outer ring of `BORDER_PX` pixels of the 64 px result, nearest palette colour
  (captions.COLOURS, all 12, white included) by CIELAB distance (ΔE76, sRGB D65). Hit: nearest == the asked colour;
  at θ = 0 the baseline is nearest == the source's colour (white).
* Concept retrieval: evaluate.py's definition (Gallery.concept_scores: the image's CLIP embedding, by the pack's
  image encoder, against every concept's plain white-background pictures, a concept scoring its best cosine;
  `concept_hits` top 5 over all 1,911 concepts, a merged duplicate picture counting for each of its keys). Also,
  as the issue words it, against the text embeddings of every concept's bare label (eval_clip's queries): `text_top5`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .captions import COLOURS, Composition, article, caption, heldout_colour, heldout_template

BORDER_PX = 2
THETAS = (0.0, 0.25, 0.5, 0.75)
BAR = {"theta": 0.5, "border_hit": 0.80, "top5": 0.60}
SOURCE_COLOUR = "white"
REPO_ROOT = Path(__file__).resolve().parents[4]
CLI = REPO_ROOT / "main" / "cli" / "bin.mjs"


# ── pure parts ──────────────────────────────────────────────────────────────────────────────────────────

def border_mask(size: int, width: int = BORDER_PX) -> np.ndarray:
    """[size,size] bool: the outer ring `width` pixels wide."""
    if not 0 < 2 * width < size:
        raise ValueError(f"border width {width} does not fit a {size} px image")
    m = np.ones((size, size), dtype=bool)
    m[width:size - width, width:size - width] = False
    return m


def border_rgb(img: np.ndarray, width: int = BORDER_PX) -> np.ndarray:
    """Mean RGB (float, 0-255) of an [H,W,3] uint8 image's outer ring."""
    if img.ndim != 3 or img.shape[0] != img.shape[1] or img.shape[2] < 3:
        raise ValueError(f"expected a square [H,W,3] image, got {img.shape}")
    return img[border_mask(img.shape[0], width)][:, :3].astype(np.float64).mean(0)


def srgb_to_lab(rgb) -> np.ndarray:
    """sRGB (0-255, [...,3]) -> CIELAB (D65 white, CIE 1976)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def colour_ranking(rgb, palette: dict[str, tuple[int, int, int]] = COLOURS, space: str = "lab") -> list[str]:
    """Palette colour names from nearest to farthest from `rgb` (0-255): Euclidean distance in CIELAB (ΔE76) or RGB."""
    names = list(palette)
    ref = np.array([palette[n] for n in names], dtype=np.float64)
    x = np.asarray(rgb, dtype=np.float64)
    if space == "lab":
        ref, x = srgb_to_lab(ref), srgb_to_lab(x)
    elif space != "rgb":
        raise ValueError(f"space must be lab or rgb, got {space!r}")
    return [names[i] for i in np.argsort(((ref - x) ** 2).sum(-1), kind="stable")]


def nearest_colour(rgb, palette: dict[str, tuple[int, int, int]] = COLOURS, space: str = "lab") -> str:
    """Name of the palette colour nearest to `rgb` (0-255)."""
    return colour_ranking(rgb, palette, space)[0]


def theta_key(theta: float) -> str:
    return f"{theta:.2f}"


def sweep(thetas) -> tuple[int, float]:
    """(frames, max) of the CLI's evenly spaced sweep 0 … max that gives exactly `thetas`."""
    th = [float(t) for t in thetas]
    if len(th) < 2 or th[0] != 0.0:
        raise ValueError(f"thetas must start at 0 and have at least 2 values, got {th}")
    k, mx = len(th), th[-1]
    want = [mx * i / (k - 1) for i in range(k)]
    if any(abs(a - b) > 1e-9 for a, b in zip(th, want)):
        raise ValueError(f"thetas must be evenly spaced from 0 (the CLI's --frames/--max sweep), got {th}")
    return k, mx


def summarise(edits: list[dict], thetas) -> dict:
    """Per θ: share of edits whose border is nearest the asked colour / the source colour, and concept top-5 rates.

    Each edit: {"target_colour", "source_colour", "frames": {theta_key: {"nearest", "top5", "text_top5"}}}, a frame
    optionally with "asked_rank" (1 = the asked colour is the nearest) for the near-miss rate `border_asked_top2`."""
    out = {}
    n = len(edits)
    for th in thetas:
        k = theta_key(th)
        fr = [e["frames"][k] for e in edits]
        out[k] = {
            "edits": n,
            "border_hit_target": sum(f["nearest"] == e["target_colour"] for f, e in zip(fr, edits)) / n,
            "border_hit_source": sum(f["nearest"] == e["source_colour"] for f, e in zip(fr, edits)) / n,
            "top5": sum(bool(f["top5"]) for f in fr) / n,
            "text_top5": sum(bool(f["text_top5"]) for f in fr) / n,
            "both": sum(f["nearest"] == e["target_colour"] and bool(f["top5"]) for f, e in zip(fr, edits)) / n,
        }
        if all("asked_rank" in f for f in fr):
            out[k]["border_asked_top2"] = sum(f["asked_rank"] <= 2 for f in fr) / n
    return out


def verdict(summary: dict, bar: dict = BAR) -> dict:
    s = summary[theta_key(bar["theta"])]
    return {"theta": bar["theta"], "border_hit": s["border_hit_target"], "border_bar": bar["border_hit"],
            "border_pass": s["border_hit_target"] >= bar["border_hit"], "top5": s["top5"], "top5_bar": bar["top5"],
            "top5_pass": s["top5"] >= bar["top5"]}


def pick_edits(data, n: int, seed: int) -> list[dict]:
    """Seeded sample of concepts (no flags, no components) with one picture each, and their edit captions."""
    keys = [k for k in data.concept_keys if not data.concepts[k]["flag"] and data.concepts[k]["group"] != "component"]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(keys, min(n, len(keys))))
    by_key: dict[str, list[int]] = {}
    for j, e in enumerate(data.images):
        for k in e["keys"]:
            by_key.setdefault(k, []).append(j)
    out = []
    for key in chosen:
        j = rng.choice(by_key[key])
        style = data.images[j]["style"]
        concept = data.concepts[key]
        colour = heldout_colour(key)
        template = heldout_template(key)
        y0 = caption(concept, style, template, Composition())
        y = caption(concept, style, template, Composition(colour))
        assert y == f"{y0}, on {article(colour)} {colour} background", (y0, y)
        out.append({"key": key, "label": concept["label"], "image": j, "style": style, "keys": data.images[j]["keys"],
                    "template": template, "from": y0, "to": y, "source_colour": SOURCE_COLOUR,
                    "target_colour": colour})
    return out


# ── engine + CLIP ───────────────────────────────────────────────────────────────────────────────────────

class OnnxEncoders:
    """The pack's CLIP image / text encoders through onnxruntime (one thread)."""

    def __init__(self, pack: Path) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.vision = ort.InferenceSession(str(pack / "image_encoder.onnx"), so, providers=["CPUExecutionProvider"])
        self.text = ort.InferenceSession(str(pack / "text_encoder.onnx"), so, providers=["CPUExecutionProvider"])

    def __call__(self, pixel_values):
        """Gallery's `vision(pixel_values=...)` interface: torch in, `.image_embeds` torch out."""
        import torch
        from types import SimpleNamespace

        out = self.vision.run(["image_embeds"], {"pixel_values": pixel_values.numpy().astype(np.float32)})[0]
        return SimpleNamespace(image_embeds=torch.from_numpy(out))

    def encode_texts(self, texts: list[str], batch: int = 64):
        import torch

        from ..clip_tokenizer import build_fast_tokenizer

        tok = build_fast_tokenizer()
        outs = []
        for i in range(0, len(texts), batch):
            ids = tok(texts[i:i + batch], padding="max_length", max_length=77, truncation=True,
                      return_tensors="np")["input_ids"].astype(np.int64)
            outs.append(self.text.run(["text_embeds"], {"input_ids": ids})[0])
        return torch.from_numpy(np.concatenate(outs))


def run_textdiff(cli: Path, pack: Path, src: Path, y0: str, y: str, thetas, out_dir: Path, seed: int = 0) -> dict:
    frames, mx = sweep(thetas)
    cmd = ["node", str(cli), "textdiff", str(src), "--from", y0, "--to", y, "--frames", str(frames),
           "--max", repr(mx), "--no-save", "--out", str(out_dir), "--json", "--threads", "1", "--seed", str(seed),
           "--pack", str(pack)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"unclip textdiff failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout)


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contact_sheet(rows: list[dict], path: Path, thetas, scale: int = 2) -> None:
    """One row per edit: source, then each θ; the left label says the concept and the asked colour."""
    from PIL import Image, ImageDraw

    cell, label_w, head = 64 * scale, 150, 30
    sheet = Image.new("RGB", (label_w + (1 + len(thetas)) * cell, head + len(rows) * cell), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for c, t in enumerate(["source"] + [f"θ={th:g}" for th in thetas]):
        d.text((label_w + c * cell + 4, 16), t.replace("θ", "theta"), fill=(0, 0, 0))
    d.text((4, 2), "B/b: border nearest the asked colour (yes/no), C/c: concept in CLIP top 5; then the nearest "
           "palette colour of the 2 px border ring", fill=(0, 0, 0))
    for r, row in enumerate(rows):
        y0 = head + r * cell
        d.text((4, y0 + 4), row["label"][:22], fill=(0, 0, 0))
        d.text((4, y0 + 18), f"-> {row['target_colour']}", fill=(0, 0, 0))
        d.text((4, y0 + 32), row["style"], fill=(90, 90, 90))
        for c, img in enumerate(row["images"]):
            sheet.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (label_w + c * cell, y0))
            if c:
                f = row["frames"][c - 1]
                mark = ("B" if f["nearest"] == row["target_colour"] else "b") + ("C" if f["top5"] else "c")
                d.rectangle((label_w + c * cell, y0 + cell - 14, label_w + c * cell + 78, y0 + cell), fill=(0, 0, 0))
                d.text((label_w + c * cell + 3, y0 + cell - 13), f"{mark} {f['nearest']}", fill=(255, 255, 255))
    sheet.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)


def evaluate_textdiffs(pack: Path, n: int = 100, seed: int = 0, thetas=THETAS, sheet: Path | None = None,
                       sheet_rows: int = 12, cli: Path = CLI, log=print) -> dict:
    import torch

    from .batches import compose
    from .dataset import EmojiData
    from .evaluate import Gallery, concept_hits, image_embeds
    from .captions import clean_label

    torch.set_num_threads(1)
    t0 = time.time()
    thetas = [float(t) for t in thetas]
    sweep(thetas)
    with tempfile.TemporaryDirectory(prefix="textdiff-eval-") as tmp:
        tmp = Path(tmp)
        snap = tmp / "pack"
        shutil.copytree(pack, snap)         # a re-export of `pack` during the run cannot mix two packs
        manifest_sha = _sha256(snap / "manifest.json")
        data = EmojiData()
        enc = OnnxEncoders(snap)
        gallery = Gallery(data, enc)
        labels = [clean_label(data.concepts[k]["label"]) for k in data.concept_keys]
        text_emb = torch.nn.functional.normalize(enc.encode_texts(labels), dim=-1)
        edits = pick_edits(data, n, seed)
        log(f"{len(edits)} edits, gallery {len(data)} pictures, {time.time() - t0:.0f} s")
        from PIL import Image

        srcs, outs, engine_s, psnrs, fingerprint = [], [], [], [], None
        for i, e in enumerate(edits):
            src = compose(data.rgba[e["image"]:e["image"] + 1], [Composition()])[0]
            src8 = (src.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            sp = tmp / f"src{i}.png"
            Image.fromarray(src8).save(sp)
            od = tmp / f"out{i}"
            t1 = time.time()
            r = run_textdiff(cli, snap, sp, e["from"], e["to"], thetas, od)
            engine_s.append(time.time() - t1)
            fingerprint = r["pack"]["fingerprint"]
            psnrs.append(r["psnr"])
            got = [float(f["theta"]) for f in r["frames"]]
            if any(abs(a - b) > 1e-9 for a, b in zip(got, thetas)) or len(got) != len(thetas):
                raise RuntimeError(f"the CLI decoded θ {got}, asked {thetas}")
            srcs.append(src8)
            outs.append([_png(f["file"]) for f in r["frames"]])
            if (i + 1) % 10 == 0 or i + 1 == len(edits):
                log(f"  {i + 1}/{len(edits)} edits, {np.mean(engine_s):.1f} s each, {time.time() - t0:.0f} s")

    # CLIP of the sources and of every frame (64 px, the image encoder's input size: no resize)
    def embed(imgs8: np.ndarray):
        x = torch.from_numpy(imgs8).permute(0, 3, 1, 2).float() / 255.0
        return image_embeds(enc, x)

    src_emb = embed(np.stack(srcs))
    frame_emb = embed(np.stack([f for fr in outs for f in fr])).view(len(edits), len(thetas), -1)
    keys_per_row = [e["keys"] for e in edits]

    def hits(emb) -> list[bool]:
        # evaluate.concept_hits per row (it averages over the rows given)
        return [bool(concept_hits(data, gallery, emb[i:i + 1], keys_per_row[i:i + 1], 5)) for i in range(len(emb))]

    def text_hits(emb) -> list[bool]:
        top = (torch.nn.functional.normalize(emb, dim=-1) @ text_emb.T).topk(5, dim=1).indices
        return [any(int(c) in {data.concept_id[k] for k in keys} for c in row) for row, keys in zip(top, keys_per_row)]

    src_top5, src_text = hits(src_emb), text_hits(src_emb)
    per_theta = [(hits(frame_emb[:, t]), text_hits(frame_emb[:, t])) for t in range(len(thetas))]
    records = []
    for i, e in enumerate(edits):
        frames = {}
        for t, th in enumerate(thetas):
            rgb = border_rgb(outs[i][t])
            ranking = colour_ranking(rgb)
            frames[theta_key(th)] = {"border_rgb": [round(float(v)) for v in rgb], "nearest": ranking[0],
                                     "asked_rank": ranking.index(e["target_colour"]) + 1,
                                     "nearest_rgb_space": nearest_colour(rgb, space="rgb"),
                                     "top5": per_theta[t][0][i], "text_top5": per_theta[t][1][i]}
        records.append({k: e[k] for k in ("key", "label", "style", "from", "to", "source_colour", "target_colour")}
                       | {"psnr": psnrs[i], "source_nearest": nearest_colour(border_rgb(srcs[i])),
                          "source_top5": src_top5[i], "frames": frames})
    summary = summarise(records, thetas)
    rgb_space = {theta_key(th): float(np.mean([r["frames"][theta_key(th)]["nearest_rgb_space"] == r["target_colour"]
                                               for r in records])) for th in thetas}
    colours = sorted({r["target_colour"] for r in records})
    by_colour = {c: {"edits": sum(r["target_colour"] == c for r in records),
                     "border_hit_at_bar": float(np.mean([r["frames"][theta_key(BAR["theta"])]["nearest"] == c
                                                         for r in records if r["target_colour"] == c]))}
                 for c in colours}
    res = {
        "issue": 19,
        "pack": {"path": str(pack), "manifest_sha256": manifest_sha, "engine_fingerprint": fingerprint},
        "settings": {"n": len(edits), "seed": seed, "thetas": thetas, "border_px": BORDER_PX,
                     "colour_space": "CIELAB (D65), nearest of the 12 captions.COLOURS by ΔE76",
                     "retrieval": "evaluate.Gallery + concept_hits top 5 (plain white pictures, all concepts); "
                                  "text_top5: bare-label text embeddings of all concepts",
                     "source": "dataset picture, full size on white; y0 = held-out template, no composition phrase",
                     "target": "y0 + ', on a <held-out colour> background' (the concept's held-out caption)",
                     "engine": "unclip textdiff --frames K --max θmax --no-save --threads 1 --seed 0 "
                               "(inversion 50 DDIM steps, refine 2, guidance 1; super-resolution 2 steps)",
                     "concepts_sampled_from": "non-flag, non-component concepts"},
        "bar": BAR,
        "verdict": verdict(summary),
        "summary": summary,
        "border_hit_target_rgb_space": rgb_space,
        "baseline_theta0": {"border_nearest_source": summary[theta_key(0.0)]["border_hit_source"],
                            "reconstruction_top5": summary[theta_key(0.0)]["top5"],
                            "source_picture_top5": float(np.mean(src_top5)),
                            "source_picture_text_top5": float(np.mean(src_text)),
                            "source_picture_border_nearest_white": float(np.mean([r["source_nearest"] == "white"
                                                                                  for r in records])),
                            "psnr_median": float(np.median(psnrs)), "psnr_min": float(np.min(psnrs))},
        "by_target_colour": by_colour,
        "seconds": {"total": round(time.time() - t0, 1), "engine_per_edit_mean": round(float(np.mean(engine_s)), 2)},
        "edits_format": "frames: θ -> [nearest colour, rank of the asked colour, concept top-5, text top-5, "
                        "border mean RGB]",
        "edits": [{k: r[k] for k in ("key", "style", "target_colour", "psnr", "source_top5")}
                  | {"frames": {t: [f["nearest"], f["asked_rank"], int(f["top5"]), int(f["text_top5"]), f["border_rgb"]]
                                for t, f in r["frames"].items()}}
                  for r in records],
    }
    if sheet is not None:
        rows = [{"label": r["label"], "style": r["style"], "target_colour": r["target_colour"],
                 "images": [srcs[i]] + outs[i], "frames": [r["frames"][theta_key(th)] for th in thetas]}
                for i, r in enumerate(records[:sheet_rows])]
        contact_sheet(rows, sheet, thetas)
    return res


def dumps(res: dict) -> str:
    """JSON with indent 1, except one line per edit (keeps the file small and diffable)."""
    edits = res.get("edits", [])
    head = json.dumps({k: v for k, v in res.items() if k != "edits"}, indent=1, ensure_ascii=False)
    if not edits:
        return head + "\n"
    rows = ",\n".join("  " + json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in edits)
    return head[:-2] + ',\n "edits": [\n' + rows + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m unclip_toolchain.emoji.textdiff_eval",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--thetas", default=",".join(f"{t:g}" for t in THETAS),
                    help="evenly spaced from 0, e.g. 0,0.25,0.5,0.75 (one decoder call of 4 frames per edit)")
    ap.add_argument("--sheet", type=Path, help="write a contact sheet PNG of the first --sheet-rows edits")
    ap.add_argument("--sheet-rows", type=int, default=12)
    a = ap.parse_args(argv)
    if not (a.pack / "manifest.json").is_file():
        print(f"error: --pack: {a.pack} has no manifest.json", file=sys.stderr)
        return 2
    try:
        thetas = [float(t) for t in a.thetas.split(",")]
        sweep(thetas)
        if BAR["theta"] not in thetas:
            raise ValueError(f"must include the bar's θ = {BAR['theta']}")
    except ValueError as e:
        print(f"error: --thetas: {e}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res = evaluate_textdiffs(a.pack, a.n, a.seed, thetas, a.sheet, a.sheet_rows)
    a.out.write_text(dumps(res))
    for k, s in res["summary"].items():
        print(f"θ={k}: border nearest asked colour {s['border_hit_target']:.1%} (source colour "
              f"{s['border_hit_source']:.1%}), concept top-5 {s['top5']:.1%} (text {s['text_top5']:.1%}), "
              f"both {s['both']:.1%}")
    v = res["verdict"]
    print(f"bar at θ={v['theta']}: border {v['border_hit']:.1%} (≥ {v['border_bar']:.0%}: "
          f"{'pass' if v['border_pass'] else 'FAIL'}), top-5 {v['top5']:.1%} (≥ {v['top5_bar']:.0%}: "
          f"{'pass' if v['top5_pass'] else 'FAIL'}); {res['seconds']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
