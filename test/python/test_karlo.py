"""Karlo-shaped pipelines (issue 18): the builder's real configurations, its folders as save_pretrained writes them,
and the README's "Exporting Karlo" command run verbatim on a reduced-width build with forced external data."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, python_env

from unclip_toolchain import export, karlo
from unclip_toolchain.manifest import verify_pack

SCALE = 0.1  # widths x0.1, every layer of the real structure


def test_real_configurations_have_karlos_parameter_counts():
    """At scale 1: the dossier's counts (§1.2), on the meta device (no memory)."""
    cfgs = karlo.configs(1.0)
    counts = {}
    for name in karlo.NETWORKS:
        with torch.device("meta"):
            m = karlo.build_component(name, cfgs[name], 0)
        counts[name] = sum(p.numel() for p in m.parameters())
    assert counts["prior"] == 1_022_030_080
    assert counts["text_proj"] == 7_878_400
    assert counts["decoder"] == 885_439_686
    assert counts["super_res_first"] == counts["super_res_last"] == 691_579_523
    assert counts["text_encoder"] == 123_650_304 and counts["image_encoder"] == 303_966_208
    assert sum(counts.values()) == 3_726_123_724
    assert cfgs["decoder"]["block_out_channels"] == (320, 640, 960, 1280) and cfgs["decoder"]["attention_head_dim"] == 64
    assert cfgs["prior"]["num_layers"] == 20 and cfgs["prior"]["num_attention_heads"] * 64 == 2048


def test_reduced_scale_keeps_the_layer_structure():
    real, small = karlo.configs(1.0), karlo.configs(SCALE)
    for name in ("decoder", "super_res_first"):
        for key in ("down_block_types", "up_block_types", "layers_per_block", "sample_size", "in_channels",
                    "out_channels"):
            assert small[name][key] == real[name][key], (name, key)
    assert small["prior"]["num_layers"] == 20 and small["text_encoder"]["num_hidden_layers"] == 12
    assert small["image_encoder"]["num_hidden_layers"] == 24
    assert small["decoder"]["block_out_channels"] == (32, 64, 96, 128)
    with pytest.raises(Exception, match="width-scale"):
        karlo.configs(1.5)


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("karlo")
    report = karlo.build(out, scale=SCALE, seed=0, log=lambda *_: None)
    return out, report


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def test_folders_look_like_save_pretrained(reduced, tmp_path):
    """One component at a time gives what UnCLIPPipeline(...).save_pretrained writes with everything in memory."""
    from unclip_toolchain.tiny_models import _import_unclip

    out, report = reduced
    *_, UnCLIPPipeline, _, _ = _import_unclip()
    cfgs = karlo.configs(SCALE)
    comps = {n: karlo.build_component(n, cfgs[n], 0) for n in karlo.NETWORKS if n != "image_encoder"}
    from unclip_toolchain.clip_tokenizer import build_fast_tokenizer

    pipe = UnCLIPPipeline(tokenizer=build_fast_tokenizer(), **comps, **karlo.schedulers())
    pipe.save_pretrained(tmp_path / "ref", safe_serialization=True)
    ours, ref = _tree(out / karlo.PIPELINE), _tree(tmp_path / "ref")
    assert set(ours) - {"README.md"} == set(ref)
    for rel, p in ref.items():
        if rel == "model_index.json":
            want = json.loads(p.read_text())
            want["text_proj"] = ["unclip", "UnCLIPTextProjModel"]  # as the hub's Karlo folders
            assert json.loads(ours[rel].read_text()) == want
        elif rel.endswith("config.json"):
            a, b = json.loads(ours[rel].read_text()), json.loads(p.read_text())
            a.pop("_name_or_path", None), b.pop("_name_or_path", None)
            assert a == b, rel
        else:
            assert hashlib.sha256(ours[rel].read_bytes()).digest() == hashlib.sha256(p.read_bytes()).digest(), rel
    iv = out / karlo.VARIATION
    index = json.loads((iv / "model_index.json").read_text())
    assert index["_class_name"] == "UnCLIPImageVariationPipeline" and "prior" not in index
    assert (iv / "image_encoder" / "model.safetensors").is_file() and (iv / "decoder").is_symlink()
    assert report["components"]["prior"]["params"] == sum(p.numel() for p in comps["prior"].parameters())


def test_builder_is_deterministic(reduced, tmp_path):
    out, _ = reduced
    karlo.build(tmp_path, scale=SCALE, seed=0, log=lambda *_: None)
    for folder in (karlo.PIPELINE, karlo.VARIATION):
        a, b = _tree(out / folder), _tree(tmp_path / folder)
        assert set(a) == set(b)
        for rel in a:
            if not rel.endswith("json"):
                assert a[rel].read_bytes() == b[rel].read_bytes(), rel


def readme_export_command(pipeline: Path, variation: Path, out: Path) -> list[str]:
    """The `python -m unclip_toolchain.export` command of models/README.md "Exporting Karlo", paths replaced."""
    text = (ROOT / "models" / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Exporting Karlo"):]
    m = re.search(r"^models/\.venv/bin/python -m unclip_toolchain\.export \\\n(?:.*\\\n)*.*$", section, re.M)
    assert m, "the README's export command"
    argv = shlex.split(m.group(0).replace("\\\n", " "))
    subs = {"/path/karlo-v1-alpha": str(pipeline), "/path/karlo-v1-alpha-image-variations": str(variation),
            "models/work/karlo-v1-alpha": str(out)}
    argv = [subs.get(a, a) for a in argv]
    assert argv[:3] == ["models/.venv/bin/python", "-m", "unclip_toolchain.export"]
    return [sys.executable, *argv[1:]]


def test_readme_command_exports_the_reduced_build_with_external_data(reduced, tmp_path):
    out, _ = reduced
    pack = tmp_path / "pack"
    cmd = readme_export_command(out / karlo.PIPELINE, out / karlo.VARIATION, pack) + ["--external-data"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=python_env(), cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = verify_pack(pack)
    assert set(manifest["components"]) == set(karlo.NETWORKS)
    for name, comp in manifest["components"].items():
        assert comp["external_data"] == [f"{name}.onnx.data"] and comp["flops"] > 0
    assert manifest["name"] == "karlo-v1-alpha" and manifest["license"] == "creativeml-openrail-m"
    assert manifest["source"]["image_variation_pipeline"] == "kakaobrain/karlo-v1-alpha-image-variations"
    assert manifest["resolution"] == {"decoder": 64, "output": 256}
    errors = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\s+(\w+): .*max\|onnx-torch\| (\S+)", proc.stdout,
                                                                   re.M)}
    assert set(errors) == set(karlo.NETWORKS) and max(errors.values()) < 1e-4, errors


def test_lazy_loading_reads_configs_only(reduced):
    out, _ = reduced
    lp = export.load_pipeline(out / karlo.PIPELINE, out / karlo.VARIATION)
    assert isinstance(lp.prior, export.LazyModule) and lp.prior._module is None
    assert export.dims(lp) == {"E": 72, "H": 72, "L": 77, "C": 152, "T": 128, "X": 4, "D": 64, "O": 256, "S": 224}
    assert lp.decoder._module is None and lp.super_res_first._module is None
