"""MODEL_CARD.md for the emoji pack, generated from the run's sizes, training log summary, dataset counts and eval."""

from __future__ import annotations

import json
from pathlib import Path

from .attribution import LICENSE_ID
from .dataset import INDEX_FILE
from .models import sizes_to_json
from .sources import DATA_DIR, RUN_DIR
from .pipeline import DEFAULTS
from .train import LR, run_sizes, stage_summary


def model_card(run_dir: Path = RUN_DIR, data_dir: Path = DATA_DIR, notes: str = "") -> str:
    ev = json.loads((run_dir / "eval.json").read_text()) if (run_dir / "eval.json").is_file() else None
    if not notes and (run_dir / "CARD_NOTES.md").is_file():   # hand-written status notes of the run
        notes = "\n" + (run_dir / "CARD_NOTES.md").read_text(encoding="utf-8")
    idx = json.loads((data_dir / INDEX_FILE).read_text(encoding="utf-8"))
    counts = idx["counts"]
    s = sizes_to_json(run_sizes(run_dir))
    per_style = ", ".join(f"{k} {v['images']}" for k, v in counts["per_style"].items())
    dups = ", ".join(f"{k} {v['duplicates']}" for k, v in counts["per_style"].items())
    train_rows = ""
    training = ev["training"] if ev else stage_summary(run_dir)
    # a "machine" column once any stage's last chunk trained on a GPU (gpu.py): which machine trained which stage
    machines = any("device" in t for t in training.values())
    for stage, t in training.items():
        train_rows += (f"| {stage} | {t['steps']} | {t['batch']} | {t['minutes']} | {LR[stage]} | "
                       f"{t.get('precision', 'fp32')} |" + (f" {t.get('device', 'CPU')} |" if machines else "") + "\n")
    train_header = "| stage | steps | batch | minutes | lr | precision |" + (" machine |" if machines else "")
    train_header += "\n|---|---|---|---|---|---|" + ("---|" if machines else "")
    table = ev["table"] if ev else "_not evaluated yet_"
    extra = ""
    if ev:
        extra = (f"\nPrior example held-out caption: \"{ev['prior']['example_caption']}\". "
                 f"Evaluation took {ev['seconds'] / 60:.1f} min on the same CPU.\n")
    return f"""---
license: {LICENSE_ID}
---

# emoji-tiny: a tiny unCLIP trained from scratch on open-licensed emoji

The default model of unCLIP Studio (issue #5). Karlo's unCLIP architecture (CLIP text + image encoders, diffusion
prior, decoder with learned variance, two-stage super-resolution) scaled down to emoji and trained from scratch
(no pretrained weights) on a 2-core CPU. It is a toy: it shows the whole pipeline working offline, not image quality.
`contact-sheet.png` shows 64 prompts x 4 seeds.

## Data

* Images ({counts['images']} after merging byte-identical duplicates, {counts['concepts']} concepts, of which
  {counts['flag_concepts']} flags): {per_style}. Duplicates merged per style: {dups}. Skin-tone variants are left out
  (near duplicates); flags are sampled at weight {idx['flag_weight']}.
* Sources: Noto (emoji-datasource-google 16.0.0 PNGs, Apache-2.0), Twemoji (emoji-datasource-twitter 16.0.0 PNGs,
  CC-BY 4.0), Fluent Emoji Flat (@iconify-json/fluent-emoji-flat 1.2.6 SVGs rasterised with @resvg/resvg-js 2.6.2,
  MIT). Captions: CLDR labels and tags from emojibase-data 17.0.0. No Apple or Facebook artwork. See ATTRIBUTION.md.
* Captions: 6 templates ("{{label}}", "a {{label}}, {{style}} style", "{{label}} emoji", "{{label}}, {{style}} emoji, {{tags}}",
  "an emoji of a {{label}}", "{{style}} style {{label}}") plus composition phrases: 11 named background colours
  ("on a blue background", 35 % of samples), scales ("medium" 0.75, "small" 0.5) and corners ("in the top left
  corner"), 25 % of samples. Default composition: full size on white.
* Held-out split (deterministic, from a hash of the concept key): one template (never the bare label) and one
  background colour per concept are never used in training; the prior and decoder evaluations use them.

## Model (diffusers / transformers classes, served by the toolchain exporter)

| part | class | size |
|---|---|---|
| text encoder | CLIPTextModelWithProjection | width {s['embed']}, {s['text_layers']} layers, {s['text_heads']} heads, real CLIP BPE vocabulary (49408), 77 tokens |
| image encoder | CLIPVisionModelWithProjection | 64x64 input, patch {s['patch']}, width {s['vision_width']}, {s['vision_layers']} layers; embedding E = {s['embed']} |
| prior | PriorTransformer | {s['prior_layers']} layers, {s['prior_heads']} heads x {s['prior_head_dim']}; predicts z_i (x0) in normalised space |
| text_proj | UnCLIPTextProjModel | 4 extra context tokens |
| decoder | UNet2DConditionModel | 32x32, channels {tuple(s['decoder_channels'])}, 1 resnet per level, cross-attention at 8x8 + mid, 6 output channels (eps + learned-range variance) |
| super-resolution | 2 x UNet2DModel (first, last) | 32->64, channels {tuple(s['sr_channels'])}, no attention; predicts x0 |

## Training

Seeded (seed 0), resumable (`python -m unclip_toolchain.emoji train --plan ...`), EMA weights exported.
CLIP: symmetric contrastive loss (soft targets when a concept occurs twice in a batch), learned temperature.
Prior: MSE on z_i (x0 prediction) with the caption dropped 10 % of the time (classifier-free guidance).
Decoder: "hybrid" loss of improved DDPM: eps MSE + variational-bound term for the learned-range variance channels
(eps detached inside the bound, t = 0 left out), z_i replaced by text_proj's learned CFG embedding 10 % and the
caption dropped 50 % of the time; targets are compositions downsampled to 32x32. The eps MSE is weighted per
sample by min(SNR, 5) / SNR (min-SNR-5, Hang et al. 2023) so the noisy steps that set colours and layout are not
drowned out by the nearly clean ones. Half of the samples with t >= 700 see "first-step garbage": DDPM sampling's
first step (t = 999, alpha_bar ~ 2e-9) turns any eps error into an x0 estimate clipped to a random +-1 pattern,
which becomes the whole signal of the next x_t; trained only on clean q(x_t | x0), the networks took it for the
image (grey and purple casts). There x_t's signal is (1 - m) x0 + m g (g random signs, m ~ U(0, 1)) and the eps
target is the one whose x0 estimate is the true x0. Sampling is diffusers' unchanged.
Super-resolution predicts the clean 64x64 image (`prediction_type="sample"`, uniform x0 MSE), conditioned on
the 32x32 downsample blurred (Gaussian, sigma up to 1) and noised (std up to 0.04), upsampled bicubically with
antialiasing exactly like the pipeline. (With eps prediction the first of its 7 sampling steps, t = 999, is
amplified noise whatever the network does; see the notes.) super_res_last, when trained, starts from
super_res_first and is fine-tuned on t < 50 only (it runs on the final step); when not, the pack uses
super_res_first's weights for it.
AdamW (betas 0.9/0.99, weight decay 0.01), warm-up 50 steps, gradient clipping 1.0; under `emoji all` each stage's
learning rate falls linearly to 0 over the last fifth of its budget. Precision "bf16": the trained networks' forward
passes under bfloat16 autocast (the CPU's native AVX512-BF16), float32 weights, optimiser, EMA, losses and frozen
CLIP encodings.

{train_header}
{train_rows}
{"Wall-clock minutes of training; the machine column says where each stage trained (its last chunk)." if machines else
 "Wall-clock minutes of training on a 2-core CPU, no GPU (the notes below say which CPU and what else shared it)."}

## Evaluation (`python -m unclip_toolchain.emoji eval`, diffusers UnCLIPPipeline in PyTorch)

{table}
{extra}
Retrieval uses this model's own CLIP: a concept's score is its best cosine over its plain (white background)
images; pipeline prompts are "a {{label}}, {{style}} style" for 200 non-flag concepts spread over the list, one seed,
the pack's default steps (prior {DEFAULTS['prior_steps']}, decoder {DEFAULTS['decoder_steps']}, super-res
{DEFAULTS['super_res_steps']}) and guidance (prior {DEFAULTS['prior_guidance']}, decoder {DEFAULTS['decoder_guidance']}).
{notes}
## Reproduce / resume

```
cd models/toolchain
../.venv/bin/python -m unclip_toolchain.emoji all --budget-minutes 120     # data -> train -> eval -> export (~2 h)
# or stage by stage, resuming from models/work/emoji-run/ckpt/*.pt:
../.venv/bin/python -m unclip_toolchain.emoji train --plan decoder=30,sr=10
../.venv/bin/python -m unclip_toolchain.emoji eval && ../.venv/bin/python -m unclip_toolchain.emoji export
```
"""


def write_model_card(run_dir: Path = RUN_DIR, data_dir: Path = DATA_DIR, notes: str = "") -> Path:
    p = run_dir / "MODEL_CARD.md"
    p.write_text(model_card(run_dir, data_dir, notes), encoding="utf-8")
    return p
