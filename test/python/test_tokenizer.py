"""The real CLIP tokenizer, the packs' tokenizer.json and the tokenizer conformance corpus for the engine."""

from __future__ import annotations

import hashlib
import json

from conftest import CORPUS, TINY_PACK

from unclip_toolchain import tokenizer_corpus
from unclip_toolchain.clip_tokenizer import (BPE_FILE, BPE_SHA256, ReferenceCLIPTokenizer, build_fast_tokenizer,
                                             save_tokenizer_json, tokenize_batch)


def test_vocabulary_file_is_openai_clip():
    assert hashlib.sha256(BPE_FILE.read_bytes()).hexdigest() == BPE_SHA256


def test_tokenizer_sizes_and_special_ids():
    tok = build_fast_tokenizer()
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 49406, 49407)
    ids, mask = tokenize_batch(tok, ["a red rocket, twemoji style", ""])
    assert ids[0][:10] == [49406, 320, 736, 8383, 267, 18365, 617, 2697, 1844, 49407]
    assert ids[1][:3] == [49406, 49407, 0] and sum(mask[1]) == 2
    assert ReferenceCLIPTokenizer()("a red rocket, twemoji style")[0] == ids[0]


def test_pack_tokenizer_json_is_the_built_one(tmp_path):
    save_tokenizer_json(tmp_path / "tokenizer.json")
    assert (tmp_path / "tokenizer.json").read_bytes() == (TINY_PACK / "tokenizer.json").read_bytes()
    data = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["model"]["type"] == "BPE" and len(data["model"]["vocab"]) == 49408
    assert data["padding"] is None and data["truncation"] is None


def test_corpus_content():
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    entries = corpus["entries"]
    assert corpus["count"] == len(entries) >= 1000
    assert corpus["tokenizer_json_sha256"] == hashlib.sha256((TINY_PACK / "tokenizer.json").read_bytes()).hexdigest()
    texts = [e["text"] for e in entries]
    assert "" in texts and len(set(texts)) == len(texts)
    assert any("twemoji style" in t for t in texts) and any("東京" in t for t in texts)
    assert any("https://" in t for t in texts) and any("🚀" in t for t in texts) and any("  " in t for t in texts)
    assert sum(e["truncated"] for e in entries) >= 20
    for e in entries:
        ids, mask = e["input_ids"], e["attention_mask"]
        n = sum(mask)
        assert len(ids) == len(mask) == 77 and ids[0] == 49406 and ids[n - 1] == 49407
        assert mask == [1] * n + [0] * (77 - n) and all(i == 0 for i in ids[n:])
        assert e["truncated"] == (n == 77 and e["truncated"])  # truncated implies full
        assert e["reference_agrees"] == ("reference_input_ids" not in e)
    assert 0.8 < sum(e["reference_agrees"] for e in entries) / len(entries) < 1.0


def test_corpus_regenerates_byte_identically(tmp_path):
    out = tmp_path / "corpus.json"
    assert tokenizer_corpus.main(["--out", str(out)]) == 0
    assert out.read_bytes() == CORPUS.read_bytes()
