"""Tokenizer conformance corpus for the TS engine: `python -m unclip_toolchain.tokenizer_corpus [--out FILE]`.

Writes test/fixtures/tokenizer-corpus.json: >= 1,000 strings (unicode, emoji, CJK, accents, punctuation, whitespace
runs, over-long text, empty string, numbers, URLs, mixed case, emoji captions) built deterministically from a fixed
seed, each with the ids and attention mask the pipeline gets (transformers CLIPTokenizer, padding="max_length",
max_length=77, truncation=True) and a `truncated` flag.

Cross-checks recorded per entry:
* `tokenizers.Tokenizer` loaded from the pack's tokenizer.json (what @huggingface/tokenizers loads in the engine)
  must give the same ids as transformers — the script fails otherwise;
* `reference_agrees`: whether the pure-Python OpenAI BPE (ftfy clean-up included; clip_tokenizer.py) gives the same
  ids. transformers 5 has no "slow" CLIP tokenizer any more; where ftfy changes the text (curly quotes, full-width
  letters, ligatures, HTML entities, ...) the two differ, and `reference_input_ids` holds the reference ids.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import unicodedata
from pathlib import Path

from .clip_tokenizer import (BOS_ID, EOS_ID, MAX_LENGTH, PAD_ID, ReferenceCLIPTokenizer, build_fast_tokenizer,
                             save_tokenizer_json)
from .errors import PackError, run_cli

SEED = 20240601
FORMAT = 1
DEFAULT_OUT = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "tokenizer-corpus.json"

FIXED = [
    "", " ", "   ", "\t", "\n", " \n\t \r\n ", "a", "A", "!", "!!", "a!", "hello!", "hi ! there !", "?!?!",
    "a red rocket, twemoji style", "A Red Rocket, Twemoji Style", "A RED ROCKET, TWEMOJI STYLE",
    "a rocket, twemoji style", "a cat wearing a party hat, twemoji style", "an astronaut riding a horse",
    "it's", "IT'S", "don't", "DON'T", "we're", "they've", "I'm", "you'll", "he'd", "rock'n'roll", "o'clock",
    "3.14159", "1,000,000", "2024-06-01", "12:30pm", "42", "007", "1st 2nd 3rd 4th", "100%", "$9.99", "€5", "¥1000",
    "https://example.com/path?query=1&x=y#frag", "http://a.b", "www.example.org", "user@example.com",
    "<|startoftext|>", "<|endoftext|>", "<|startoftext|>hello<|endoftext|>", "a <|endoftext|> b",
    "&amp; &lt;tag&gt; &quot;quoted&quot; &#39;", "&amp;amp;", "<b>bold</b>",
    "café", "cafe\u0301", "naïve", "Ünïcödé", "résumé", "façade", "Ångström", "São Paulo", "Crème brûlée",
    "straße", "STRASSE", "İstanbul", "ǅemal", "ΑΒΓ αβγ", "Ωμέγα", "Привет, мир!", "Здравствуйте",
    "東京", "東京の夜", "日本語のテキスト", "中文字符测试", "漢字", "한국어 텍스트", "ひらがな カタカナ",
    "สวัสดี", "नमस्ते", "مرحبا بالعالم", "שלום עולם", "Ελληνικά",
    "🚀", "🚀🚀🚀", "🚀 rocket", "rocket🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸🇬🇧", "❤️", "❤", "☕️", "✨",
    "👩🏾‍🚀 astronaut", "🧑‍🎨 artist", "😀😃😄😁", "🙂 smile :)", ":-) ;-) :D", "¯\\_(ツ)_/¯", "( ͡° ͜ʖ ͡°)",
    "“curly quotes”", "‘single’", "«guillemets»", "„low“", "ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３", "ﬁﬂ ligatures",
    "em—dash en–dash", "ellipsis…", "bullet • point", "™ ® ©", "½ ¼ ¾", "x² y³", "∑∫√∞", "→ ← ↑ ↓",
    "tab\tseparated\tvalues", "line\nbreaks\nhere", "multiple     spaces", "  leading and trailing  ",
    "non\u00a0breaking\u00a0space", "zero\u200bwidth", "thin\u2009space", "ideographic\u3000space",
    "control\u0007char", "soft\u00adhyphen",
    "...", "---", "___", "***", "!!!", "???", ",,,", ";;;", "((()))", "[[[]]]", "{{{}}}", "@#$%^&*",
    "a,b;c:d", "a.b.c", "hello,world", "snake_case_name", "camelCaseName", "kebab-case-name", "PascalCase",
    "ALLCAPS", "MiXeD cAsE tExT", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
]

WORDS = ("a an the red blue green yellow purple orange tiny giant happy sad sleepy fluffy shiny rocket cat dog fox "
         "owl whale dragon robot castle tree flower moon sun star cloud rainbow pizza taco coffee cup hat guitar "
         "piano book lamp car bicycle boat train mountain river ocean forest city painting photo sketch watercolor "
         "pixel art isometric low poly render of with in on under above next to holding wearing riding eating "
         "flying dancing").split()
EMOJI = list("🚀🐱🐶🦊🦉🐳🐉🤖🏰🌳🌸🌙☀⭐☁🌈🍕🌮☕🎩🎸🎹📚💡🚗🚲⛵🚆⛰🌊🌲🏙🎨📷✏🖌") + ["❤️", "👍🏽", "👨‍👩‍👧", "🇫🇷", "🏳️‍🌈", "✨"]
STYLES = ["twemoji style", "emoji style", "flat icon", "noto emoji style", "openmoji style", "fluent emoji style"]
UNICODE_BITS = ["café", "über", "東京", "北京", "서울", "Москва", "Αθήνα", "naïve", "jalapeño", "smörgåsbord",
                "façade", "ÆØÅ", "ß", "½", "™", "—", "…", "“", "”", "«", "»", "¿", "¡", "ñ", "ç", "€", "£"]
PUNCT = [",", ".", "!", "?", ";", ":", "-", "--", "...", "!!", "?!", "'", '"', "(", ")", "/", "&", "#", "@", "%"]
SPACES = [" ", " ", " ", "  ", "   ", "\t", "\n", " \n ", "\u00a0", "\u3000"]


def generate_strings(seed: int = SEED, count: int = 1100) -> list[str]:
    """FIXED + seeded random strings of several families; unique, deterministic order."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()

    def add(s: str) -> None:
        if s not in seen:
            seen.add(s)
            out.append(s)

    for s in FIXED:
        add(s)
    add(" ".join(["a very long prompt"] * 40))  # far over 77 tokens
    add("word " * 75)  # exactly 75 content tokens: fits
    add("word " * 76)  # 76: truncated by one
    add("🚀" * 80)
    add(", ".join(WORDS))
    add("東京の夜" * 30)
    add(unicodedata.normalize("NFD", "Crème brûlée à la carte, naïve café"))
    families = ["caption", "emoji", "mixed", "numbers", "url", "case", "long", "punct", "spaces", "unicode"]
    i = 0
    while len(out) < count:
        fam = families[i % len(families)]
        i += 1
        if fam == "caption":
            words = rng.sample(WORDS, rng.randint(1, 6))
            add(f"{' '.join(words)}, {rng.choice(STYLES)}")
        elif fam == "emoji":
            k = rng.randint(1, 5)
            parts = [rng.choice(EMOJI) for _ in range(k)]
            sep = rng.choice(["", " ", ", "])
            add(sep.join(parts) + rng.choice(["", " " + rng.choice(WORDS), f", {rng.choice(STYLES)}"]))
        elif fam == "mixed":
            bits = [rng.choice([rng.choice(WORDS), rng.choice(EMOJI), rng.choice(UNICODE_BITS), rng.choice(PUNCT)])
                    for _ in range(rng.randint(2, 10))]
            add("".join(b + rng.choice(SPACES + [""]) for b in bits))
        elif fam == "numbers":
            add(rng.choice(["{} {}s", "{}x{} px", "{}.{}", "{}:{}", "#{} of {}", "{}-{}-2024", "v{}.{}"]).format(
                rng.randint(0, 10 ** rng.randint(1, 7)), rng.randint(0, 999)))
        elif fam == "url":
            host = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))
            path = "/".join(rng.sample(WORDS, rng.randint(0, 3)))
            add(f"{rng.choice(['https://', 'http://', 'www.', ''])}{host}.{rng.choice(['com', 'org', 'io', 'de'])}"
                f"/{path}{rng.choice(['', '?q=' + rng.choice(WORDS), '#top', '.png'])}")
        elif fam == "case":
            words = rng.sample(WORDS, rng.randint(2, 6))
            add(" ".join("".join(c.upper() if rng.random() < 0.5 else c for c in w) for w in words))
        elif fam == "long":
            n = rng.randint(40, 120)
            add(" ".join(rng.choice(WORDS + UNICODE_BITS) for _ in range(n)))
        elif fam == "punct":
            add("".join(rng.choice(PUNCT) + rng.choice(["", rng.choice(WORDS)]) for _ in range(rng.randint(1, 8))))
        elif fam == "spaces":
            words = rng.sample(WORDS, rng.randint(1, 5))
            add(rng.choice(SPACES) + "".join(w + rng.choice(SPACES) * rng.randint(1, 4) for w in words))
        else:
            add(" ".join(rng.choice(UNICODE_BITS) for _ in range(rng.randint(1, 8))))
    return out


def build_corpus(strings: list[str], tokenizer_json: Path) -> dict:
    from tokenizers import Tokenizer

    tok = build_fast_tokenizer()
    raw = Tokenizer.from_file(str(tokenizer_json))
    ref = ReferenceCLIPTokenizer(use_ftfy=True)
    entries = []
    disagreements = 0
    enc = tok(strings, padding="max_length", max_length=MAX_LENGTH, truncation=True)
    full = tok(strings)
    for i, text in enumerate(strings):
        ids = list(enc["input_ids"][i])
        mask = list(enc["attention_mask"][i])
        truncated = len(full["input_ids"][i]) > MAX_LENGTH
        raw_ids = raw.encode(text).ids
        raw_ids = (raw_ids[: MAX_LENGTH - 1] + [EOS_ID]) if len(raw_ids) > MAX_LENGTH else raw_ids
        raw_ids = raw_ids + [PAD_ID] * (MAX_LENGTH - len(raw_ids))
        if raw_ids != ids:
            raise PackError(tokenizer_json, f"tokenizers.Tokenizer and transformers disagree on entry {i} {text!r}")
        if ids[0] != BOS_ID or ids[sum(mask) - 1] != EOS_ID or any(mask[sum(mask):]):
            raise PackError("tokenizer", f"unexpected encoding for entry {i} {text!r}")
        ref_ids, ref_mask, _ = ref(text)
        entry = {"text": text, "input_ids": ids, "attention_mask": mask, "truncated": truncated,
                 "reference_agrees": ref_ids == ids}
        if ref_ids != ids:
            disagreements += 1
            entry["reference_input_ids"] = ref_ids
        entries.append(entry)
    return {"entries": entries, "reference_disagreements": disagreements}


def dump(corpus: dict) -> str:
    """One entry per line: diff-friendly and compact."""
    head = {k: v for k, v in corpus.items() if k != "entries"}
    lines = json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "entries": [\n'
    lines += ",\n".join("  " + json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in corpus["entries"])
    return lines + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    import tempfile

    p = argparse.ArgumentParser(prog="python -m unclip_toolchain.tokenizer_corpus", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--count", type=int, default=1100)
    a = p.parse_args(argv)
    strings = generate_strings(a.seed, a.count)
    with tempfile.TemporaryDirectory() as tmp:
        tj = Path(tmp) / "tokenizer.json"
        save_tokenizer_json(tj)
        tj_sha = hashlib.sha256(tj.read_bytes()).hexdigest()
        body = build_corpus(strings, tj)
    corpus = {
        "format": FORMAT,
        "generator": "python -m unclip_toolchain.tokenizer_corpus",
        "seed": a.seed,
        "tokenizer": "transformers CLIPTokenizer from the CLIP BPE vocabulary (pad '!' = 0), the packs' tokenizer.json",
        "tokenizer_json_sha256": tj_sha,
        "max_length": MAX_LENGTH, "padding": "max_length", "truncation": True,
        "pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID,
        "count": len(body["entries"]),
        "reference_disagreements": body["reference_disagreements"],
        "entries": body["entries"],
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = a.out.with_name(a.out.name + ".partial")
    tmp_out.write_text(dump(corpus), encoding="utf-8")
    tmp_out.replace(a.out)
    print(f"wrote {a.out}: {corpus['count']} strings, {sum(e['truncated'] for e in body['entries'])} truncated, "
          f"{body['reference_disagreements']} differ from the ftfy reference")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
