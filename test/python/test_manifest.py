"""Pack manifest v1: schema validation (good and broken manifests) and pack verification (files, sha256)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT, TINY_PACK

from unclip_toolchain.errors import PackError
from unclip_toolchain.manifest import load_schema, validate_manifest, verify_pack


def good() -> dict:
    return json.loads((TINY_PACK / "manifest.json").read_text(encoding="utf-8"))


def test_schema_is_versioned_draft_2020_12():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/pack/v1")
    assert schema["properties"]["schema_version"]["enum"] == [1, 2]


def test_committed_tiny_pack_verifies():
    m = verify_pack(TINY_PACK)
    assert m["name"] == "tiny-reference"
    assert set(m["components"]) == {"text_encoder", "image_encoder", "prior", "text_proj", "decoder",
                                    "super_res_first", "super_res_last"}
    assert m["embedding_dim"] == 16 and m["resolution"] == {"decoder": 32, "output": 64}
    assert all(c["flops"] > 0 for c in m["components"].values())
    assert any(v != 0.0 for v in m["prior_stats"]["clip_std"])  # tiny prior must matter


def _set(path, value):
    def mutate(m):
        *head, last = path
        for k in head:
            m = m[k]
        m[last] = value
    return mutate


def _delete(path):
    def mutate(m):
        *head, last = path
        for k in head:
            m = m[k]
        del m[last]
    return mutate


BROKEN = [
    ("wrong schema_version", _set(["schema_version"], 3), "schema_version is 3"),
    ("schema_version missing", _delete(["schema_version"]), "schema_version is None"),
    ("missing component", _delete(["components", "decoder"]), "'decoder' is a required property"),
    ("bad dtype", _set(["components", "prior", "inputs", 0, "dtype"], "float64"), "float64"),
    ("fixed batch", _set(["components", "prior", "inputs", 0, "shape"], [1, 16]), 'first axis must be "batch"'),
    ("renamed input", _set(["components", "decoder", "inputs", 0, "name"], "x"), "the contract says"),
    ("wrong width", _set(["components", "prior", "inputs", 0, "shape"], ["batch", 15]), "expected ['batch', 16]"),
    ("short clip_std", lambda m: m["prior_stats"]["clip_std"].pop(), "clip_std has 15 entries"),
    ("bad name", _set(["name"], "Tiny Pack"), "does not match"),
    ("bad sha", _set(["files", "prior.onnx"], "xyz"), "does not match"),
    ("half super-res", _delete(["components", "super_res_last"]), "super_res_last"),
    ("unknown key", _set(["extra"], 1), "Additional properties"),
    ("scheduler", _set(["schedulers", "decoder", "beta_schedule"], "linear"), "squaredcos_cap_v2"),
    ("sr scheduler missing", _delete(["schedulers", "super_res"]), "schedulers/super_res must be present"),
    ("unlisted component file", _set(["components", "prior", "file"], "other.onnx"), "not listed in files"),
]


@pytest.mark.parametrize("label,mutate,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_manifest_is_rejected_with_one_line(label, mutate, message):
    m = good()
    mutate(m)
    with pytest.raises(PackError) as err:
        validate_manifest(m)
    text = str(err.value)
    assert message in text, text
    assert text.startswith("manifest.json: ") and "\n" not in text


def test_verify_pack_catches_tampering_missing_and_unlisted_files(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(TINY_PACK, pack)
    verify_pack(pack)
    (pack / "stray.bin").write_bytes(b"x")
    with pytest.raises(PackError, match="not listed in manifest.json files"):
        verify_pack(pack)
    (pack / "stray.bin").unlink()
    data = bytearray((pack / "text_proj.onnx").read_bytes())
    data[-1] ^= 1
    (pack / "text_proj.onnx").write_bytes(bytes(data))
    with pytest.raises(PackError, match=r"text_proj.onnx: sha256 is [0-9a-f]{64}, manifest.json says"):
        verify_pack(pack)
    (pack / "text_proj.onnx").unlink()
    with pytest.raises(PackError, match="listed in manifest.json files but missing"):
        verify_pack(pack)


def test_verify_pack_rejects_other_schema_version(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(TINY_PACK, pack)
    m = good()
    m["schema_version"] = 7
    (pack / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(PackError, match="schema_version is 7, this toolchain reads version 1 or 2"):
        verify_pack(pack)


def test_schema_file_is_what_the_readme_documents():
    readme = (ROOT / "models" / "README.md").read_text(encoding="utf-8")
    assert "pack.schema.json" in readme and "schema_version" in readme


def test_verify_cli(tmp_path, capsys):
    from unclip_toolchain import verify
    from unclip_toolchain.errors import run_cli

    assert run_cli(verify.main, [str(TINY_PACK), "--load"]) == 0
    assert "pack 'tiny-reference' OK (7 components" in capsys.readouterr().out
    pack = tmp_path / "pack"
    shutil.copytree(TINY_PACK, pack)
    m = good()
    m["schema_version"] = 3
    (pack / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    assert run_cli(verify.main, [str(pack)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {pack / 'manifest.json'}: schema_version is 3, this toolchain reads version 1 or 2"


def _with_ar(m: dict, k: int = 5, vocab: int = 32) -> dict:
    """A v2 manifest: the tiny pack plus an AR prior entry (files are not checked by validate_manifest)."""
    E, L, H = m["embedding_dim"], m["text"]["max_length"], m["text"]["hidden_size"]
    m["schema_version"] = 2
    m["components"]["ar_prior"] = {
        "file": "ar_prior.onnx", "flops": 1,
        "inputs": [{"name": "encoder_hidden_states", "dtype": "float32", "shape": ["batch", L, H]},
                   {"name": "attention_mask", "dtype": "bool", "shape": ["batch", L]},
                   {"name": "text_embeds", "dtype": "float32", "shape": ["batch", E]},
                   {"name": "dot_token", "dtype": "int64", "shape": ["batch"]},
                   {"name": "codes", "dtype": "int64", "shape": ["batch", k]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", k, vocab]}]}
    m["ar_prior"] = {"tables": "ar_prior_codes.safetensors", "sequence_length": k, "buckets": vocab,
                     "vocabulary": vocab, "dot_buckets": 8, "null_dot_token": 8, "variance_kept": 0.99,
                     "sampling": {"guidance": 2.0, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "samples": 1}}
    m["files"]["ar_prior.onnx"] = "0" * 64
    m["files"]["ar_prior_codes.safetensors"] = "0" * 64
    return m


def test_v2_manifest_with_ar_prior_is_valid_and_v1_stays_valid():
    validate_manifest(good())
    validate_manifest(_with_ar(good()))
    v2_without = good()
    v2_without["schema_version"] = 2
    validate_manifest(v2_without)


AR_BROKEN = [
    ("ar on v1", _set(["schema_version"], 1), "ar_prior needs schema_version 2"),
    ("section without graph", _delete(["components", "ar_prior"]), "come together"),
    ("graph without section", _delete(["ar_prior"]), "come together"),
    ("missing piece", _delete(["ar_prior", "tables"]), "'tables' is a required property"),
    ("wrong codes shape", _set(["components", "ar_prior", "inputs", 4, "shape"], ["batch", 4]), "expected ['batch', 5]"),
    ("wrong logits width", _set(["components", "ar_prior", "outputs", 0, "shape"], ["batch", 5, 31]),
     "expected ['batch', 5, 32]"),
    ("vocabulary", _set(["ar_prior", "vocabulary"], 31), "vocabulary must equal"),
    ("renamed input", _set(["components", "ar_prior", "inputs", 3, "name"], "dot"), "the contract says"),
    ("bad temperature", _set(["ar_prior", "sampling", "temperature"], 0), "less than or equal to the minimum"),
    ("unlisted tables", lambda m: m["files"].pop("ar_prior_codes.safetensors"), "tables ar_prior_codes.safetensors"),
    ("cache half", _set(["components", "ar_prior_start"], {"file": "ar_prior.onnx", "flops": 1, "inputs": [
        {"name": "x", "dtype": "float32", "shape": ["batch"]}], "outputs": [
        {"name": "y", "dtype": "float32", "shape": ["batch"]}]}), "'ar_prior_step' is a dependency"),
]


@pytest.mark.parametrize("label,mutate,message", AR_BROKEN, ids=[b[0] for b in AR_BROKEN])
def test_broken_ar_prior_is_rejected_with_one_line(label, mutate, message):
    m = _with_ar(good())
    mutate(m)
    with pytest.raises(PackError) as err:
        validate_manifest(m)
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_ar_tables_shapes_are_checked(tmp_path):
    import torch
    from safetensors.torch import save_file

    from unclip_toolchain.manifest import check_ar_tables

    m = _with_ar(good())
    E = m["embedding_dim"]
    path = tmp_path / "ar_prior_codes.safetensors"
    save_file({"pca_mean": torch.zeros(E), "pca_components": torch.zeros(5, E), "bucket_values": torch.zeros(5, 32)},
              str(path))
    check_ar_tables(tmp_path, m)
    save_file({"pca_mean": torch.zeros(E), "pca_components": torch.zeros(4, E), "bucket_values": torch.zeros(5, 32)},
              str(path))
    with pytest.raises(PackError, match=r"pca_components: is F32 \[4, 16\], expected F32 \[5, 16\]"):
        check_ar_tables(tmp_path, m)
    save_file({"pca_mean": torch.zeros(E), "pca_components": torch.zeros(5, E)}, str(path))
    with pytest.raises(PackError, match="bucket_values: missing"):
        check_ar_tables(tmp_path, m)
