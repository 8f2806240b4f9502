"""Evaluation of the emoji unCLIP with diffusers in Python; prints a table and writes eval.json + contact-sheet.png.

    python -m unclip_toolchain.emoji eval

* CLIP: text->image retrieval over all concepts. Query = the bare CLDR label; a concept's score is its best cosine
  over its plain images (one per style, white background); top-1 / top-5 accuracy.
* Prior: on held-out captions (held-out template + held-out background colour of each sampled concept/style), the
  mean cosine between the sampled z_i (pack default steps and guidance) and the true CLIP image embedding of that composition,
  next to the baseline of the caption's own CLIP text embedding, and of the training mean embedding.
* Decoder: image -> z_i -> UnCLIPImageVariationPipeline (decoder + super-resolution) -> CLIP image embedding;
  mean cosine to z_i, next to the mean cosine between unrelated images (chance level).
* Pipeline: UnCLIPPipeline on fixed concept prompts "a {label}, {style} style" (non-flag concepts spread over the
  whole list, styles rotating); how often the generated image's CLIP embedding retrieves the prompted concept in
  the top 1 / top 5 (same concept gallery as the CLIP metric).
* Contact sheet: the first 64 of those prompts x 4 seeds.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .batches import TextEncoder, compose
from .captions import Composition, clean_label, heldout_example
from .dataset import EmojiData
from .models import clip_pixels, prior_forward
from .pipeline import DEFAULTS, build_components, text_to_image_pipeline
from .sources import DATA_DIR, RUN_DIR
from .train import stage_summary

STYLE_ORDER = ("noto", "twemoji", "fluent")
PIPE_ARGS = dict(prior_num_inference_steps=DEFAULTS["prior_steps"], decoder_num_inference_steps=DEFAULTS["decoder_steps"],
                 super_res_num_inference_steps=DEFAULTS["super_res_steps"],
                 prior_guidance_scale=DEFAULTS["prior_guidance"], decoder_guidance_scale=DEFAULTS["decoder_guidance"])


def _hash(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big")


@torch.no_grad()
def image_embeds(vision, imgs01: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([vision(pixel_values=clip_pixels(imgs01[i:i + batch])).image_embeds
                      for i in range(0, len(imgs01), batch)])


class Gallery:
    """CLIP embeddings of every plain (white background) dataset image, and their concept ids."""

    def __init__(self, data: EmojiData, vision) -> None:
        comps = [Composition()] * len(data)
        imgs = torch.cat([compose(data.rgba[i:i + 512], comps[i:i + 512]) for i in range(0, len(data), 512)])
        self.emb = F.normalize(image_embeds(vision, imgs), dim=-1)
        # image -> concepts (merged duplicates carry several keys: the image counts for each)
        rows, cols = [], []
        for i, e in enumerate(data.images):
            for k in e["keys"]:
                rows.append(data.concept_id[k])
                cols.append(i)
        self.n_concepts = len(data.concept_keys)
        self.pairs = (torch.tensor(rows), torch.tensor(cols))

    def concept_scores(self, queries: torch.Tensor) -> torch.Tensor:
        """[Q,E] -> [Q,n_concepts]: best cosine over each concept's images."""
        sim = F.normalize(queries, dim=-1) @ self.emb.T                        # [Q, N_images]
        out = torch.full((len(queries), self.n_concepts), -2.0)
        rows, cols = self.pairs
        return out.index_reduce_(1, rows, sim[:, cols], "amax", include_self=True)


def as_tensor(images) -> torch.Tensor:
    """Pipeline output (numpy [B,H,W,3] or torch [B,3,H,W], in [0,1]) -> torch [B,3,H,W]."""
    if isinstance(images, np.ndarray):
        return torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return images.float()


def topk_hits(scores: torch.Tensor, target: torch.Tensor, k: int) -> float:
    top = scores.topk(k, dim=1).indices
    return float((top == target[:, None]).any(1).float().mean())


def eval_prompts(data: EmojiData, n: int) -> list[tuple[str, str, str]]:
    """(concept key, style, prompt): non-flag concepts spaced evenly over the sorted concept list."""
    keys = [k for k in data.concept_keys if not data.concepts[k]["flag"]
            and data.concepts[k]["group"] != "component"]
    step = len(keys) / n
    out = []
    for i in range(n):
        key = keys[int(i * step)]
        styles = [e["style"] for e in data.images if key in e["keys"]]
        style = STYLE_ORDER[i % 3] if STYLE_ORDER[i % 3] in styles else styles[0]
        label = clean_label(data.concepts[key]["label"])
        art = "an" if label[:1].lower() in "aeiou" else "a"
        out.append((key, style, f"{art} {label}, {style} style"))
    return out


@torch.no_grad()
def eval_clip(data, comps, gallery) -> dict:
    te = TextEncoder(comps["text_encoder"])
    queries = [clean_label(data.concepts[k]["label"]) for k in data.concept_keys]
    t = torch.cat([te.encode(queries[i:i + 256])[0] for i in range(0, len(queries), 256)])
    scores = gallery.concept_scores(t)
    target = torch.arange(len(queries))
    return {"concepts": len(queries), "top1": topk_hits(scores, target, 1), "top5": topk_hits(scores, target, 5)}


@torch.no_grad()
def sample_prior(pipe, captions: list[str], generator, steps: int = DEFAULTS["prior_steps"],
                 guidance: float = DEFAULTS["prior_guidance"]) -> torch.Tensor:
    """UnCLIPPipeline's prior loop (same noise draws and scheduler calls as diffusers' __call__), returning
    post-processed z_i. The prior runs on the captions' real tokens only (`prior_forward`, equal to the 77-token
    call within 1e-5, see test_emoji_models.py) because the 77-token call dominates the evaluation time on CPU."""
    te = TextEncoder(pipe.text_encoder)
    embeds, hidden, mask = te.encode([""] * len(captions) + list(captions))
    prior = pipe.prior
    sch = pipe.prior_scheduler
    sch.set_timesteps(steps, device="cpu")
    latents = pipe.prepare_latents((len(captions), prior.config.embedding_dim), embeds.dtype, "cpu",
                                   generator, None, sch)
    for i, t in enumerate(sch.timesteps):
        inp = torch.cat([latents] * 2)
        pred = prior_forward(prior, inp, t.reshape(1), embeds, hidden, mask)
        unc, cond = pred.chunk(2)
        pred = unc + guidance * (cond - unc)
        prev = None if i + 1 == len(sch.timesteps) else sch.timesteps[i + 1]
        latents = sch.step(pred, timestep=t, sample=latents, generator=generator, prev_timestep=prev).prev_sample
    return prior.post_process_latents(latents)


def concept_hits(data, gallery, emb: torch.Tensor, keys_per_row: list[list[str]], k: int) -> float:
    """Share of rows whose embedding retrieves one of their concepts in the top k."""
    top = gallery.concept_scores(emb).topk(k, dim=1).indices
    return float(np.mean([any(int(c) in {data.concept_id[key] for key in keys} for c in row)
                          for row, keys in zip(top, keys_per_row)]))


@torch.no_grad()
def eval_prior(data, comps, pipe, gallery, n: int = 200, seed: int = 0) -> dict:
    keys = sorted(data.concept_keys, key=lambda k: _hash("prior-eval:" + k))[:n]
    caps, imgs = [], []
    for i, key in enumerate(keys):
        entries = [j for j, e in enumerate(data.images) if key in e["keys"]]
        j = entries[i % len(entries)]
        cap, comp = heldout_example(key, data.concepts[key], data.images[j]["style"])
        caps.append(cap)
        imgs.append(compose(data.rgba[j:j + 1], [comp]))
    z_true = image_embeds(comps["image_encoder"], torch.cat(imgs))
    g = torch.Generator().manual_seed(seed)
    z_pred = torch.cat([sample_prior(pipe, caps[i:i + 50], g) for i in range(0, len(caps), 50)])
    te = TextEncoder(comps["text_encoder"])
    t_emb = te.encode(caps)[0]
    mean = pipe.prior.clip_mean.expand_as(z_true)
    # Raw CLIP embeddings share a large common component, so cosines are also given with the training mean removed.
    centred = float(F.cosine_similarity(z_pred - mean, z_true - mean).mean())
    return {"examples": len(caps), "example_caption": caps[0], "cos_prior_centred": centred,
            "cos_prior": float(F.cosine_similarity(z_pred, z_true).mean()),
            # the sampled z_i itself (no decoding) as a retrieval query: how much of the concept the prior carries
            "retrieval_top5": concept_hits(data, gallery, z_pred, [[k] for k in keys], 5),
            "cos_text_baseline": float(F.cosine_similarity(t_emb, z_true).mean()),
            "cos_mean_baseline": float(F.cosine_similarity(mean, z_true).mean())}


@torch.no_grad()
def eval_decoder(data, comps, gallery, n: int = 100, seed: int = 0) -> dict:
    from diffusers.pipelines.deprecated.unclip import UnCLIPImageVariationPipeline

    c = comps
    iv = UnCLIPImageVariationPipeline(decoder=c["decoder"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                                      text_proj=c["text_proj"], feature_extractor=c["feature_extractor"],
                                      image_encoder=c["image_encoder"], super_res_first=c["super_res_first"],
                                      super_res_last=c["super_res_last"], decoder_scheduler=c["decoder_scheduler"],
                                      super_res_scheduler=c["super_res_scheduler"])
    iv.set_progress_bar_config(disable=True)
    idx = sorted(range(len(data)), key=lambda i: _hash(f"decoder-eval:{i}"))[:n]
    comps_ = [Composition(heldout_colour_or_none(data, i)) for i in idx]
    imgs = compose(data.rgba[idx], comps_)
    z = image_embeds(c["image_encoder"], imgs)
    g = torch.Generator().manual_seed(seed)
    outs = []
    for i in range(0, len(idx), 25):
        r = iv(image_embeddings=z[i:i + 25], generator=g, output_type="pt",
               decoder_num_inference_steps=DEFAULTS["decoder_steps"],
               super_res_num_inference_steps=DEFAULTS["super_res_steps"],
               decoder_guidance_scale=DEFAULTS["decoder_guidance"])
        outs.append(as_tensor(r.images))
    dec = torch.cat(outs).clamp(0, 1)
    z_dec = image_embeds(c["image_encoder"], dec)
    zn = F.normalize(z, dim=-1)
    chance = (zn @ zn.T)[~torch.eye(len(idx), dtype=torch.bool)].mean()
    mean = c["prior"].clip_mean
    return {"examples": len(idx), "cos_decoded": float(F.cosine_similarity(z_dec, z).mean()),
            # the pipeline metric with a perfect prior: does decode(true z_i) retrieve its own concept?
            "retrieval_top5": concept_hits(data, gallery, z_dec, [data.images[i]["keys"] for i in idx], 5),
            "cos_decoded_centred": float(F.cosine_similarity(z_dec - mean, z - mean).mean()),
            "cos_unrelated_baseline": float(chance)}, imgs, dec


def heldout_colour_or_none(data, i: int) -> str | None:
    # every other decoder-eval image on its concept's held-out colour, the rest on white
    from .captions import heldout_colour

    return heldout_colour(data.images[i]["keys"][0]) if i % 2 else None


@torch.no_grad()
def eval_pipeline(data, comps, pipe, gallery, prompts, seed: int = 0, chunk: int = 25) -> tuple[dict, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    outs = []
    for i in range(0, len(prompts), chunk):
        r = pipe([p for _, _, p in prompts[i:i + chunk]], generator=g, output_type="pt", **PIPE_ARGS)
        outs.append(as_tensor(r.images))
    imgs = torch.cat(outs).clamp(0, 1)
    scores = gallery.concept_scores(image_embeds(comps["image_encoder"], imgs))
    target = torch.tensor([data.concept_id[k] for k, _, _ in prompts])
    return {"prompts": len(prompts), "top1": topk_hits(scores, target, 1), "top5": topk_hits(scores, target, 5),
            "settings": DEFAULTS}, imgs


@torch.no_grad()
def contact_sheet(pipe, prompts, path: Path, seeds: int = 4, per_row: int = 4, chunk: int = 16) -> None:
    """`seeds` images per prompt (num_images_per_prompt), prompts in chunks, generator seeded per chunk."""
    from PIL import Image, ImageDraw

    cell, label_h, pad = 64, 14, 6
    texts = [p for _, _, p in prompts]
    images = []
    for c in range(0, len(texts), chunk):
        g = torch.Generator().manual_seed(1000 + c)
        r = pipe(texts[c:c + chunk], num_images_per_prompt=seeds, generator=g, output_type="pt", **PIPE_ARGS)
        images.append(as_tensor(r.images).clamp(0, 1))
    images = torch.cat(images)
    rows = (len(texts) + per_row - 1) // per_row
    gw = seeds * cell + pad
    sheet = Image.new("RGB", (per_row * gw, rows * (cell + label_h + pad)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for n, p in enumerate(texts):
        x0, y0 = (n % per_row) * gw, (n // per_row) * (cell + label_h + pad)
        draw.text((x0 + 2, y0 + 1), p[:44], fill=(0, 0, 0))
        for s in range(seeds):
            arr = (images[n * seeds + s].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            sheet.paste(Image.fromarray(arr), (x0 + s * cell, y0 + label_h))
    # 256-colour palette: keeps the sheet ~1 MB so the pack stays within its 60 MB budget
    sheet.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)


def format_table(res: dict) -> str:
    c, p, d, q = res["clip"], res["prior"], res["decoder"], res["pipeline"]
    lines = [
        "| metric | value | baseline / target |",
        "|---|---|---|",
        f"| CLIP text->image retrieval top-1 ({c['concepts']} concepts) | {c['top1']:.1%} | chance {1 / c['concepts']:.2%} |",
        f"| CLIP text->image retrieval top-5 | {c['top5']:.1%} | target >= 70% |",
        f"| prior: cos(sampled z_i, true z_i), {p['examples']} held-out captions | {p['cos_prior']:.3f} | "
        f"caption text embedding {p['cos_text_baseline']:.3f}; training-mean z {p['cos_mean_baseline']:.3f} |",
        f"| prior: same, training mean removed from both | {p['cos_prior_centred']:.3f} | 0 = no information |",
        f"| prior: sampled z_i retrieves its concept in top-5 (no decoding) | {p['retrieval_top5']:.1%} | |",
        f"| decoder: cos(CLIP(decode(z_i)), z_i), {d['examples']} images | {d['cos_decoded']:.3f} | "
        f"unrelated image pairs {d['cos_unrelated_baseline']:.3f} |",
        f"| decoder: same, training mean removed from both | {d['cos_decoded_centred']:.3f} | 0 = no information |",
        f"| decoder: decode(true z_i) retrieves its concept in top-5 (prior bypassed) | {d['retrieval_top5']:.1%} | |",
        f"| pipeline: prompted concept in top-1, {q['prompts']} prompts | {q['top1']:.1%} | chance {1 / c['concepts']:.2%} |",
        f"| pipeline: prompted concept in top-5 | {q['top5']:.1%} | target >= 50% |",
    ]
    return "\n".join(lines)


def evaluate(run_dir: Path = RUN_DIR, data_dir: Path = DATA_DIR, out: Path | None = None, n_prompts: int = 200,
             sheet_prompts: int = 64, n_prior: int = 200, n_decoder: int = 50) -> dict:
    torch.set_num_threads(2)
    t0 = time.time()
    data = EmojiData(data_dir)
    comps = build_components(run_dir)
    pipe = text_to_image_pipeline(comps)
    gallery = Gallery(data, comps["image_encoder"])
    res: dict = {"training": stage_summary(run_dir)}
    partial = run_dir / "eval.partial.json"

    def done(key: str, value) -> None:
        res[key] = value
        print(key, value, f"({time.time() - t0:.0f} s)", flush=True)
        partial.write_text(json.dumps(res, indent=1) + "\n")

    done("clip", eval_clip(data, comps, gallery))
    done("prior", eval_prior(data, comps, pipe, gallery, n_prior))
    done("decoder", eval_decoder(data, comps, gallery, n_decoder)[0])
    prompts = eval_prompts(data, n_prompts)
    done("pipeline", eval_pipeline(data, comps, pipe, gallery, prompts)[0])
    if sheet_prompts:
        contact_sheet(pipe, prompts[:sheet_prompts], run_dir / "contact-sheet.png")
    res["seconds"] = round(time.time() - t0, 1)
    res["table"] = format_table(res)
    (run_dir / "eval.json").write_text(json.dumps(res, indent=1) + "\n")
    from .card import write_model_card

    write_model_card(run_dir, data_dir)
    print(res["table"])
    return res
