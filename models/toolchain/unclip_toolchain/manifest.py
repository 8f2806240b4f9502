"""Pack manifest v1 and v2 (v1 + the optional autoregressive prior): JSON-Schema validation (models/pack.schema.json) plus the checks a schema cannot express
(component I/O names match the contract, sizes agree with each other, every file is listed with the right sha256)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from .errors import PackError

SCHEMA_VERSION = 1
# Versions this toolchain reads: 2 adds the optional autoregressive prior (components.ar_prior + ar_prior); a
# manifest without it is written as version 1, so old packs and old engines keep working with new ones.
SCHEMA_VERSIONS = (1, 2)
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "pack.schema.json"
MANIFEST = "manifest.json"

# The contract: input and output names and dtypes of every component, in order.
COMPONENT_IO: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "text_encoder": ([("input_ids", "int64")], [("text_embeds", "float32"), ("last_hidden_state", "float32")]),
    "image_encoder": ([("pixel_values", "float32")], [("image_embeds", "float32")]),
    "prior": (
        [("hidden_states", "float32"), ("timestep", "int64"), ("proj_embedding", "float32"),
         ("encoder_hidden_states", "float32"), ("attention_mask", "bool")],
        [("predicted_image_embedding", "float32")],
    ),
    "text_proj": (
        [("image_embeddings", "float32"), ("uncond_mask", "bool"), ("prompt_embeds", "float32"),
         ("text_encoder_hidden_states", "float32")],
        [("encoder_hidden_states", "float32"), ("additive_clip_time_embeddings", "float32")],
    ),
    "decoder": (
        [("sample", "float32"), ("timestep", "int64"), ("encoder_hidden_states", "float32"),
         ("class_labels", "float32"), ("attention_mask", "bool")],
        [("out_sample", "float32")],
    ),
    "super_res_first": ([("sample", "float32"), ("timestep", "int64")], [("out_sample", "float32")]),
    "super_res_last": ([("sample", "float32"), ("timestep", "int64")], [("out_sample", "float32")]),
    "ar_prior": (
        [("encoder_hidden_states", "float32"), ("attention_mask", "bool"), ("text_embeds", "float32"),
         ("dot_token", "int64"), ("codes", "int64")],
        [("logits", "float32")],
    ),
    # the optional KV-cache pair of the AR prior (cache [batch, 2·layers, heads, 77 + 2 + K, head dim])
    "ar_prior_start": (
        [("encoder_hidden_states", "float32"), ("attention_mask", "bool"), ("text_embeds", "float32"),
         ("dot_token", "int64")],
        [("logits", "float32"), ("present", "float32")],
    ),
    "ar_prior_step": (
        [("code", "int64"), ("position", "int64"), ("past", "float32"), ("key_mask", "bool")],
        [("logits", "float32"), ("present", "float32")],
    ),
}


@lru_cache(maxsize=1)
def load_schema() -> dict:
    try:
        return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PackError(SCHEMA_PATH, f"cannot read the pack schema ({e})") from e


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _where(err) -> str:
    path = "/".join(str(p) for p in err.absolute_path)
    return path or "(top level)"


def validate_manifest(manifest: object, where: str = MANIFEST) -> None:
    """Raise PackError(where, ...) for the first problem found; return None if the manifest is valid."""
    import jsonschema

    if not isinstance(manifest, dict):
        raise PackError(where, "manifest is not a JSON object")
    version = manifest.get("schema_version")
    if version not in SCHEMA_VERSIONS:
        raise PackError(where, f"schema_version is {version!r}, this toolchain reads version 1 or 2")
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: (len(list(e.absolute_path)), str(e.message)))
    if errors:
        e = errors[0]
        raise PackError(where, f"{_where(e)}: {e.message}")

    m = manifest
    E = m["embedding_dim"]
    H = m["text"]["hidden_size"]
    L = m["text"]["max_length"]
    if m["tokenizer"]["max_length"] != L:
        raise PackError(where, "tokenizer/max_length differs from text/max_length")
    for key in ("clip_mean", "clip_std"):
        if len(m["prior_stats"][key]) != E:
            raise PackError(where, f"prior_stats/{key} has {len(m['prior_stats'][key])} entries, embedding_dim is {E}")
    for name, comp in m["components"].items():
        want_in, want_out = COMPONENT_IO[name]
        for kind, got, want in (("inputs", comp["inputs"], want_in), ("outputs", comp["outputs"], want_out)):
            got_nd = [(t["name"], t["dtype"]) for t in got]
            if got_nd != want:
                raise PackError(where, f"components/{name}/{kind} are {got_nd}, the contract says {want}")
            for t in got:
                if t["shape"][0] != "batch":
                    raise PackError(where, f"components/{name}/{kind}/{t['name']}: first axis must be \"batch\"")
        if comp["file"] not in m["files"]:
            raise PackError(where, f"components/{name}/file {comp['file']} is not listed in files")
        for extra in comp.get("external_data", []):
            if extra not in m["files"]:
                raise PackError(where, f"components/{name}/external_data {extra} is not listed in files")
    has_ar = "ar_prior" in m["components"]
    if has_ar != ("ar_prior" in m):
        raise PackError(where, "ar_prior and components/ar_prior come together")
    if has_ar and version != 2:
        raise PackError(where, "ar_prior needs schema_version 2")
    if has_ar:
        ar = m["ar_prior"]
        if ar["vocabulary"] != ar["buckets"]:
            raise PackError(where, "ar_prior/vocabulary must equal ar_prior/buckets")
        if ar["null_dot_token"] != ar["dot_buckets"]:
            raise PackError(where, "ar_prior/null_dot_token must be dot_buckets (the id after the dot tokens)")
        if ar["tables"] not in m["files"]:
            raise PackError(where, f"ar_prior/tables {ar['tables']} is not listed in files")
    shapes = {(n, t["name"]): t["shape"] for n, c in m["components"].items() for t in c["inputs"] + c["outputs"]}
    checks = [
        (("text_encoder", "input_ids"), ["batch", L]),
        (("text_encoder", "text_embeds"), ["batch", E]),
        (("text_encoder", "last_hidden_state"), ["batch", L, H]),
        (("prior", "hidden_states"), ["batch", E]),
        (("prior", "encoder_hidden_states"), ["batch", L, H]),
        (("prior", "attention_mask"), ["batch", L]),
        (("prior", "predicted_image_embedding"), ["batch", E]),
        (("text_proj", "image_embeddings"), ["batch", E]),
        (("text_proj", "uncond_mask"), ["batch"]),
        (("image_encoder", "image_embeds"), ["batch", E]),
    ]
    if has_ar:
        K, V = m["ar_prior"]["sequence_length"], m["ar_prior"]["vocabulary"]
        if "ar_prior_start" in m["components"]:
            S = L + 2 + K
            cache = shapes[("ar_prior_start", "present")]
            if len(cache) != 5 or cache[3] != S:
                raise PackError(where, f"components/ar_prior_start/present has shape {cache}, expected "
                                       f"['batch', 2·layers, heads, {S}, head dim]")
            checks += [(("ar_prior_start", "logits"), ["batch", V]), (("ar_prior_step", "logits"), ["batch", V]),
                       (("ar_prior_step", "past"), cache), (("ar_prior_step", "present"), cache),
                       (("ar_prior_step", "key_mask"), ["batch", S])]
        checks += [(("ar_prior", "encoder_hidden_states"), ["batch", L, H]),
                   (("ar_prior", "attention_mask"), ["batch", L]),
                   (("ar_prior", "text_embeds"), ["batch", E]), (("ar_prior", "dot_token"), ["batch"]),
                   (("ar_prior", "codes"), ["batch", K]), (("ar_prior", "logits"), ["batch", K, V])]
    D = m["resolution"]["decoder"]
    checks.append((("decoder", "sample"), ["batch", 3, D, D]))
    checks.append((("decoder", "out_sample"), ["batch", 6, D, D]))
    if ("super_res_first" in m["components"]) != ("super_res" in m["schedulers"]):
        raise PackError(where, "schedulers/super_res must be present exactly when the pack has super_res components")
    if "super_res_first" in m["components"]:
        O = m["resolution"]["output"]
        for n in ("super_res_first", "super_res_last"):
            checks.append(((n, "sample"), ["batch", 6, O, O]))
            checks.append(((n, "out_sample"), ["batch", 3, O, O]))
    elif m["resolution"]["output"] != D:
        raise PackError(where, "resolution/output differs from resolution/decoder but the pack has no super_res stage")
    if "image_encoder" in m["components"]:
        S = m["image_preprocess"]["crop_size"]
        checks.append((("image_encoder", "pixel_values"), ["batch", 3, S, S]))
    for key, want in checks:
        if key in shapes and shapes[key] != want:
            raise PackError(where, f"components/{key[0]}/{key[1]} has shape {shapes[key]}, expected {want}")


def read_manifest(pack_dir: Path) -> dict:
    path = Path(pack_dir) / MANIFEST
    if not path.is_file():
        raise PackError(path, "file not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise PackError(path, f"not valid JSON ({e})") from e
    validate_manifest(manifest, str(path))
    return manifest


def verify_pack(pack_dir: Path, check_hashes: bool = True) -> dict:
    """Validate the manifest and the files it lists (present, sha256, nothing unlisted). Returns the manifest."""
    pack_dir = Path(pack_dir)
    manifest = read_manifest(pack_dir)
    listed = set(manifest["files"])
    present = {p.name for p in pack_dir.iterdir() if p.is_file() and p.name != MANIFEST}
    for name in sorted(listed - present):
        raise PackError(pack_dir / name, "listed in manifest.json files but missing")
    for name in sorted(present - listed):
        raise PackError(pack_dir / name, "present in the pack but not listed in manifest.json files")
    if check_hashes:
        for name, digest in sorted(manifest["files"].items()):
            actual = sha256_file(pack_dir / name)
            if actual != digest:
                raise PackError(pack_dir / name, f"sha256 is {actual}, manifest.json says {digest}")
    if "ar_prior" in manifest:
        check_ar_tables(pack_dir, manifest)
    return manifest


def check_ar_tables(pack_dir: Path, manifest: dict) -> None:
    """The AR prior's safetensors tables: pca_mean F32 [E], pca_components F32 [K,E], bucket_values F32 [K,B]."""
    import struct

    ar = manifest["ar_prior"]
    path = Path(pack_dir) / ar["tables"]
    E, K, B = manifest["embedding_dim"], ar["sequence_length"], ar["buckets"]
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as e:
        raise PackError(path, f"not a safetensors file ({e})") from e
    for name, shape in (("pca_mean", [E]), ("pca_components", [K, E]), ("bucket_values", [K, B])):
        t = header.get(name)
        if not isinstance(t, dict):
            raise PackError(path, f"{name}: missing")
        if t.get("dtype") != "F32" or t.get("shape") != shape:
            raise PackError(path, f"{name}: is {t.get('dtype')} {t.get('shape')}, expected F32 {shape}")
