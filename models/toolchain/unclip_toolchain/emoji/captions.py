"""Captions and compositions for the emoji dataset, and the deterministic held-out split.

A training sample is (image of concept k in style s, composition c, caption). The caption is one of TEMPLATES filled
with the CLDR label (emojibase-data), the style name and a few CLDR tags, plus phrases for the composition
("…, small, in the top left corner, on a blue background"). The held-out split is per concept, from a hash of
its key: one caption template and one background colour are never seen with that concept in training, so the
evaluation can use them as unseen captions / compositions of known concepts.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

STYLE_NAMES = {"noto": "noto", "twemoji": "twemoji", "fluent": "fluent"}

# Template 0 (the bare label) is never held out: the retrieval evaluation uses it.
TEMPLATES = (
    "{label}",
    "{a} {label}, {style} style",
    "{label} emoji",
    "{label}, {style} emoji, {tags}",
    "an emoji of {a} {label}",
    "{style} style {label}",
)

# Named background colours (RGB). "white" is also the implicit default background (no phrase).
COLOURS = {
    "white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "red": (220, 40, 40),
    "orange": (245, 140, 30), "yellow": (250, 220, 50), "green": (50, 170, 70), "blue": (40, 90, 220),
    "purple": (140, 60, 190), "pink": (245, 150, 190), "brown": (130, 80, 40), "cyan": (40, 200, 220),
}
COLOUR_NAMES = tuple(COLOURS)
HOLDOUT_COLOURS = tuple(c for c in COLOUR_NAMES if c != "white")

# (scale, position) -> caption phrase; positions are the fraction of the free space to the left / top.
SCALES = {1.0: "", 0.75: "medium", 0.5: "small"}
POSITIONS = {"center": (0.5, 0.5), "top left": (0.0, 0.0), "top right": (1.0, 0.0),
             "bottom left": (0.0, 1.0), "bottom right": (1.0, 1.0)}


@dataclass(frozen=True)
class Composition:
    colour: str | None = None      # None: white background, not mentioned in the caption
    scale: float = 1.0
    position: str = "center"

    def phrase(self) -> str:
        parts = []
        if SCALES[self.scale]:
            parts.append(SCALES[self.scale])
        if self.scale < 1.0 and self.position != "center":
            parts.append(f"in the {self.position} corner")
        if self.colour is not None:
            parts.append(f"on {article(self.colour)} {self.colour} background")
        return ", ".join(parts)

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.colour or "white"]


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _hash(key: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big")


def heldout_template(key: str) -> int:
    return 1 + _hash(key, "template") % (len(TEMPLATES) - 1)


def heldout_colour(key: str) -> str:
    return HOLDOUT_COLOURS[_hash(key, "colour") % len(HOLDOUT_COLOURS)]


def clean_label(label: str) -> str:
    # "!" is the pad token of Karlo's tokenizer: keep it out of captions.
    return label.replace("!", "").replace("  ", " ").strip()


def caption(concept: dict, style: str, template: int, comp: Composition, tags: list[str] | None = None) -> str:
    label = clean_label(concept["label"])
    tag_list = tags if tags is not None else concept.get("tags", [])[:2]
    text = TEMPLATES[template].format(label=label, a=article(label), style=STYLE_NAMES[style],
                                      tags=", ".join(clean_label(t) for t in tag_list) or label)
    phrase = comp.phrase()
    return f"{text}, {phrase}" if phrase else text


def sample_training(rng: random.Random, key: str, concept: dict, style: str,
                    p_colour: float = 0.35, p_scaled: float = 0.25) -> tuple[str, Composition]:
    """A random training caption + composition for one image, never the concept's held-out template/colour."""
    banned_t, banned_c = heldout_template(key), heldout_colour(key)
    template = rng.choice([t for t in range(len(TEMPLATES)) if t != banned_t])
    colour = None
    if rng.random() < p_colour:
        colour = rng.choice([c for c in COLOUR_NAMES if c != banned_c])
    scale, position = 1.0, "center"
    if rng.random() < p_scaled:
        scale = rng.choice((0.75, 0.5))
        position = rng.choice(tuple(POSITIONS))
    comp = Composition(colour, scale, position)
    tags = concept.get("tags", [])
    picked = rng.sample(tags, k=min(len(tags), rng.randint(1, 3))) if tags else []
    return caption(concept, style, template, comp, picked), comp


def heldout_example(key: str, concept: dict, style: str) -> tuple[str, Composition]:
    """The concept's held-out caption: its held-out template, on its held-out background colour."""
    comp = Composition(heldout_colour(key))
    return caption(concept, style, heldout_template(key), comp), comp
