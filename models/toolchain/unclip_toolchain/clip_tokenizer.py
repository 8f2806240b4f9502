"""The real CLIP BPE tokenizer, built from OpenAI's `bpe_simple_vocab_16e6.txt.gz`.

The vocabulary file ships in this package (data/, copied from the `open_clip_torch` wheel, MIT licence, see
data/NOTICE.md). From it we build:

* `build_fast_tokenizer()` — transformers' `CLIPTokenizer` (in transformers 5 this class is backed by the Rust
  `tokenizers` library; there is no separate slow class any more). Its `tokenizer.json` goes into every pack and is
  what the TS engine loads.
* `ReferenceCLIPTokenizer` — a pure-Python port of OpenAI's `simple_tokenizer.py` / the transformers-4 "slow"
  CLIPTokenizer (ftfy + whitespace clean + lower-case, regex split, byte-level BPE). It is the independent reference
  the fast tokenizer is checked against (`tokenizer_corpus`).

Karlo's tokenizer pads with "!" (id 0) instead of <|endoftext|>; we do the same.
"""

from __future__ import annotations

import gzip
import html
import json
from functools import lru_cache
from pathlib import Path

import regex

BPE_FILE = Path(__file__).parent / "data" / "bpe_simple_vocab_16e6.txt.gz"
BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
VOCAB_SIZE = 49408
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<|startoftext|>", "<|endoftext|>", "!"
BOS_ID, EOS_ID, PAD_ID = 49406, 49407, 0
MAX_LENGTH = 77

_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte → printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


@lru_cache(maxsize=1)
def load_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary (49408 entries) and the 48894 merges exactly as OpenAI's SimpleTokenizer builds them."""
    if not BPE_FILE.is_file():
        raise FileNotFoundError(f"{BPE_FILE}: CLIP BPE vocabulary missing")
    lines = gzip.open(BPE_FILE, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [BOS_TOKEN, EOS_TOKEN]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    assert len(vocab) == VOCAB_SIZE, len(vocab)
    assert vocab[BOS_TOKEN] == BOS_ID and vocab[EOS_TOKEN] == EOS_ID and vocab[PAD_TOKEN] == PAD_ID
    return vocab, merges  # type: ignore[return-value]


@lru_cache(maxsize=1)
def build_fast_tokenizer():
    """transformers CLIPTokenizer (tokenizers backend) with Karlo's special tokens; model_max_length 77.
    Cached: one shared instance (tokenizing does not change it)."""
    from transformers import CLIPTokenizer

    vocab, merges = load_vocab_and_merges()
    tok = CLIPTokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=MAX_LENGTH,
    )
    assert tok.pad_token_id == PAD_ID and tok.bos_token_id == BOS_ID and tok.eos_token_id == EOS_ID
    assert len(tok) == VOCAB_SIZE, len(tok)
    return tok


def save_tokenizer_json(path: Path) -> None:
    """Standard Hugging Face tokenizer.json (what `@huggingface/tokenizers` loads), deterministic bytes."""
    tok = build_fast_tokenizer()
    data = json.loads(tok.backend_tokenizer.to_str())
    # Padding/truncation are applied by the caller (engine) explicitly; keep the file free of runtime state.
    data["padding"] = None
    data["truncation"] = None
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def tokenize_batch(tok, texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """The diffusers call: padding to max_length 77, truncation (EOS kept as last token)."""
    enc = tok(texts, padding="max_length", max_length=MAX_LENGTH, truncation=True)
    return [list(x) for x in enc["input_ids"]], [list(x) for x in enc["attention_mask"]]


class ReferenceCLIPTokenizer:
    """Pure-Python CLIP BPE (port of OpenAI CLIP `simple_tokenizer.py` as in transformers-4's slow CLIPTokenizer)."""

    def __init__(self, use_ftfy: bool = True) -> None:
        self.encoder, merges = load_vocab_and_merges()
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.cache = {BOS_TOKEN: BOS_TOKEN, EOS_TOKEN: EOS_TOKEN}
        self.pat = regex.compile(_PATTERN, regex.IGNORECASE)
        self.use_ftfy = use_ftfy
        if use_ftfy:
            import ftfy

            self._fix = ftfy.fix_text
        else:
            self._fix = lambda s: s

    def _bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        out = " ".join(word)
        self.cache[token] = out
        return out

    def clean(self, text: str) -> str:
        text = self._fix(text)
        if self.use_ftfy:
            text = html.unescape(html.unescape(text))
        return regex.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text: str) -> list[int]:
        # The pad token "!" is a special (added) token, matched on the raw text before any cleaning, exactly as
        # transformers does for Karlo's tokenizer: every "!" in a prompt becomes id 0.
        ids: list[int] = []
        for i, piece in enumerate(text.split(PAD_TOKEN)):
            if i > 0:
                ids.append(PAD_ID)
            ids.extend(self._encode_plain(piece))
        return ids

    def _encode_plain(self, text: str) -> list[int]:
        ids: list[int] = []
        for token in self.pat.findall(self.clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def __call__(self, text: str, max_length: int = MAX_LENGTH) -> tuple[list[int], list[int], bool]:
        """ids, attention_mask padded/truncated to max_length (EOS kept), and whether it was truncated."""
        body = self.encode(text)
        truncated = len(body) > max_length - 2
        body = body[: max_length - 2]
        ids = [BOS_ID] + body + [EOS_ID]
        mask = [1] * len(ids) + [0] * (max_length - len(ids))
        ids = ids + [PAD_ID] * (max_length - len(ids))
        return ids, mask, truncated
