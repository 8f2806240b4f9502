"""Random training batches: image + composition (background colour, scale, position) + caption, and text encoding."""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from ..clip_tokenizer import build_fast_tokenizer
from .captions import POSITIONS, Composition, sample_training
from .dataset import EmojiData


def compose(rgba: np.ndarray, comps: list[Composition]) -> torch.Tensor:
    """RGBA uint8 [B,64,64,4] composited per `comps` -> RGB float [B,3,64,64] in [0,1]."""
    x = torch.from_numpy(np.ascontiguousarray(rgba)).permute(0, 3, 1, 2).float() / 255.0
    size = x.shape[-1]
    out = torch.empty(x.shape[0], 3, size, size)
    for i, c in enumerate(comps):
        bg = torch.tensor(c.rgb, dtype=torch.float32).view(3, 1, 1) / 255.0
        img = x[i]
        prem = torch.cat([img[:3] * img[3:], img[3:]])          # premultiplied: resizing keeps edges clean
        if c.scale != 1.0:
            s = round(size * c.scale)
            small = F.interpolate(prem[None], size=(s, s), mode="bilinear", antialias=True, align_corners=False)[0]
            fx, fy = POSITIONS[c.position]
            ox, oy = round(fx * (size - s)), round(fy * (size - s))
            prem = torch.zeros(4, size, size)
            prem[:, oy:oy + s, ox:ox + s] = small
        out[i] = bg * (1 - prem[3:]) + prem[:3]
    return out.clamp(0, 1)


class Batches:
    def __init__(self, data: EmojiData, seed: int) -> None:
        self.data = data
        self.np_rng = np.random.default_rng(seed)
        self.rng = random.Random(seed)

    def state(self) -> dict:
        return {"np": self.np_rng.bit_generator.state, "py": self.rng.getstate()}

    def load_state(self, st: dict) -> None:
        self.np_rng.bit_generator.state = st["np"]
        self.rng.setstate(st["py"])

    def sample(self, batch: int) -> tuple[torch.Tensor, list[str], list[str]]:
        """(images [B,3,64,64] in [0,1], captions, concept keys)."""
        d = self.data
        idx = self.np_rng.choice(len(d), size=batch, p=d.weights)
        caps, comps, keys = [], [], []
        for i in idx:
            entry = d.images[i]
            key = self.rng.choice(entry["keys"])
            cap, comp = sample_training(self.rng, key, d.concepts[key], entry["style"])
            caps.append(cap)
            comps.append(comp)
            keys.append(key)
        return compose(d.rgba[idx], comps), caps, keys


class TextEncoder:
    """Tokenise (pad to the longest caption, not 77: exact for the causal CLIP text model) and encode."""

    def __init__(self, model=None) -> None:
        self.tok = build_fast_tokenizer()
        self.model = model

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tok(texts, padding="longest", max_length=77, truncation=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()

    def encode(self, texts: list[str]):
        ids, mask = self.tokenize(texts)
        dev = self.model.device if hasattr(self.model, "device") else torch.device("cpu")
        if dev.type != "cpu":
            ids, mask = ids.to(dev), mask.to(dev)
        out = self.model(input_ids=ids)
        return out.text_embeds, out.last_hidden_state, mask
