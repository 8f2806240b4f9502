"""Exporter: determinism of the tiny builder, ONNX-vs-PyTorch round trip per component, external data, fp16, and
bad input (one-line errors, non-zero exit, no partial output)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import python_env

from unclip_toolchain import export
from unclip_toolchain.errors import PackError, run_cli
from unclip_toolchain.manifest import verify_pack


def _hashes(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_tiny_builder_is_deterministic(small_builds):
    run1, run2 = small_builds["runs"]
    h1, h2 = _hashes(run1), _hashes(run2)
    assert len(h1) >= 12 and h1 == h2
    spec = json.loads((run1 / "fixture" / "fixture.json").read_text(encoding="utf-8"))
    assert spec["args"]["seed"] == 3 and spec["args"]["steps_sr"] == 2
    assert [c["kind"] for c in spec["cases"]] == ["text_to_image", "image_variation"]
    # the float64 re-run's floor is part of the fixture, and deterministic like the rest
    for case in spec["cases"]:
        assert {"text_embeds", "image_embeddings", "decoder_image", "upscaled", "image"} <= set(case["float64_discrepancy"])


def test_from_fixture_rebuild_reads_recorded_args(small_builds, tmp_path):
    from unclip_toolchain import tiny

    run1 = small_builds["runs"][0]
    a = tiny.build_parser().parse_args(["--from-fixture", str(run1 / "fixture" / "fixture.json"),
                                        "--out-pack", str(tmp_path / "p"), "--out-fixture", str(tmp_path / "f")])
    tiny._apply_fixture_args(a)
    assert a.seed == 3 and a.layers == 1 and a.prompts == ["a red rocket, twemoji style"] and a.n == 1


def _sess(path: Path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _round_trip(specs: dict, pack: Path, manifest: dict, batches=(1, 2)) -> dict:
    errors = {}
    for name, (wrapper, inputs, _) in specs.items():
        sess = _sess(pack / manifest["components"][name]["file"])
        worst = 0.0
        for b in batches:
            args = export.example_inputs(inputs, batch=b, seed=10 + b)
            with torch.no_grad():
                ref = wrapper(*args)
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = sess.run(None, {n: a.numpy() for (n, _, _), a in zip(inputs, args)})
            worst = max(worst, *(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref)))
        errors[name] = worst
    return errors


@pytest.fixture(scope="module")
def loaded(small_builds):
    return export.load_pipeline(small_builds["pipeline"], small_builds["image_variation"])


def test_round_trip_every_component_within_1e4(small_builds, loaded):
    pack = small_builds["runs"][0] / "pack"
    manifest = verify_pack(pack)
    errors = _round_trip(export.component_specs(loaded), pack, manifest)
    print("max |onnx - torch| per component:", {k: f"{v:.2e}" for k, v in errors.items()})
    assert set(errors) == set(manifest["components"])
    assert all(e < 1e-4 for e in errors.values()), errors


def test_pack_rebuilds_the_exact_diffusers_modules(small_builds, loaded):
    """from_pack (bench --vs-diffusers without the PyTorch folder): configs + ONNX initializers give back every
    parameter and buffer bit for bit, including the ones constant folding renamed (transposed Linear weights,
    GroupNorm affine), and the pack's tokenizer gives diffusers' ids."""
    from unclip_toolchain.clip_tokenizer import build_fast_tokenizer
    from unclip_toolchain.from_pack import PIPELINE_COMPONENTS, load_pack_pipeline

    pipe = load_pack_pipeline(small_builds["runs"][0] / "pack")
    for name in PIPELINE_COMPONENTS:
        ref, got = getattr(loaded, name).state_dict(), getattr(pipe, name).state_dict()
        assert set(ref) == set(got), name
        for k in ref:
            assert torch.equal(ref[k], got[k]), f"{name}.{k}"
    text = ["a red rocket, twemoji style", "!!  spaced\tout 🚀 " * 9]
    ours = pipe.tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
    assert ours == build_fast_tokenizer()(text, padding="max_length", max_length=77, truncation=True).input_ids


def test_pack_without_diffusers_config_is_refused(small_builds, tmp_path):
    from unclip_toolchain.from_pack import CONFIG_FILE, load_pack_pipeline

    pack = tmp_path / "pack"
    shutil.copytree(small_builds["runs"][0] / "pack", pack)
    (pack / CONFIG_FILE).unlink()
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"][CONFIG_FILE]   # a pack exported before the file existed
    (pack / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(PackError, match="predates"):
        load_pack_pipeline(pack)


def test_text_proj_uncond_mask_selects_learned_embedding(loaded):
    """Rows with uncond_mask=True must equal diffusers' own CFG half (learned embedding), the others the image."""
    from unclip_toolchain.components import TextProj

    tp = loaded.text_proj
    g = torch.Generator().manual_seed(0)
    E = H = tp.config.clip_embeddings_dim  # the tiny pack: CLIP width = text hidden size
    img = torch.randn(2, E, generator=g)
    prompt = torch.randn(4, E, generator=g)
    hid = torch.randn(4, 77, H, generator=g)
    with torch.no_grad():
        want = tp(image_embeddings=img, prompt_embeds=prompt, text_encoder_hidden_states=hid,
                  do_classifier_free_guidance=True)
        got = TextProj(tp)(torch.cat([img, img]), torch.tensor([True, True, False, False]), prompt, hid)
    for w, o in zip(want, got):
        torch.testing.assert_close(o, w, atol=0, rtol=0)


def test_external_data_pack_without_super_res_loads_and_matches(small_builds, loaded, tmp_path):
    """Forced external data, on a pack without the optional stages (no image encoder, no super-resolution)."""
    import dataclasses

    bare = dataclasses.replace(loaded, super_res_first=None, super_res_last=None, image_encoder=None,
                               schedulers={k: v for k, v in loaded.schedulers.items() if k != "super_res"})
    out = tmp_path / "ext-pack"
    args = export.build_parser().parse_args(["--pipeline", "x", "--out", str(out), "--name", "ext", "--external-data",
                                             "--license", "Apache-2.0", "--no-check"])
    export.write_pack(bare, out, args, log=lambda *_: None)
    manifest = verify_pack(out)
    assert set(manifest["components"]) == {"text_encoder", "prior", "text_proj", "decoder"}
    assert "super_res" not in manifest["schedulers"] and manifest["resolution"] == {"decoder": 32, "output": 32}
    for name, comp in manifest["components"].items():
        assert comp["external_data"] == [f"{name}.onnx.data"]
        assert (out / f"{name}.onnx.data").stat().st_size > 10_000
    assert (out / "text_encoder.onnx").stat().st_size < 1_000_000 < (out / "text_encoder.onnx.data").stat().st_size
    errors = _round_trip(export.component_specs(bare), out, manifest, batches=(2,))
    assert all(e < 1e-4 for e in errors.values()), errors


def test_fp16_export_keeps_fp32_io(loaded, tmp_path):
    import onnx

    specs = export.component_specs(loaded)
    entry = export.export_component("decoder", specs["decoder"], tmp_path, tmp_path / "scratch", fp16=True,
                                    external=False)
    model = onnx.load(str(tmp_path / entry["file"]))
    types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.output)}
    assert types["sample"] == onnx.TensorProto.FLOAT and types["out_sample"] == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    wrapper, inputs, _ = specs["decoder"]
    args = export.example_inputs(inputs, batch=2, seed=5)
    with torch.no_grad():
        ref = wrapper(*args).numpy()
    got = _sess(tmp_path / entry["file"]).run(None, {n: a.numpy() for (n, _, _), a in zip(inputs, args)})[0]
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() < 0.05  # half precision: loose, but the graph must compute the same thing


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


def _cli(argv, capsys):
    code = run_cli(export.main, argv)
    err = capsys.readouterr().err.strip()
    return code, err


def _no_partial(parent: Path) -> None:
    assert not [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_not_a_pipeline_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = _cli(["--pipeline", str(tmp_path / "empty"), "--out", str(tmp_path / "pack")], capsys)
    assert code != 0 and "\n" not in err
    assert err.startswith("error: ") and "model_index.json: file not found" in err
    assert not (tmp_path / "pack").exists()
    _no_partial(tmp_path)


def test_other_pipeline_class(small_builds, tmp_path, capsys):
    folder = tmp_path / "sd"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    code, err = _cli(["--pipeline", str(folder), "--out", str(tmp_path / "pack")], capsys)
    assert code != 0 and "\n" not in err
    assert "_class_name is 'StableDiffusionPipeline', expected UnCLIPPipeline" in err
    assert not (tmp_path / "pack").exists()


def test_missing_weights_file(small_builds, tmp_path, capsys):
    folder = tmp_path / "pipe"
    shutil.copytree(small_builds["pipeline"], folder)
    (folder / "decoder" / "diffusion_pytorch_model.safetensors").unlink()
    code, err = _cli(["--pipeline", str(folder), "--out", str(tmp_path / "pack")], capsys)
    assert code != 0 and "\n" not in err
    assert "decoder/diffusion_pytorch_model.safetensors: weights file not found" in err
    assert not (tmp_path / "pack").exists()


def test_wrong_shape_in_config(small_builds, tmp_path, capsys):
    folder = tmp_path / "pipe"
    shutil.copytree(small_builds["pipeline"], folder)
    cfg_path = folder / "text_proj" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["cross_attention_dim"] = 96
    cfg_path.write_text(json.dumps(cfg))
    code, err = _cli(["--pipeline", str(folder), "--out", str(tmp_path / "pack")], capsys)
    assert code != 0 and "\n" not in err
    assert "text_proj" in err
    assert not (tmp_path / "pack").exists()


def test_failure_mid_export_leaves_nothing(loaded, tmp_path, monkeypatch):
    calls = []

    def failing_check(name, *_a, **_k):
        calls.append(name)
        if len(calls) == 2:
            raise PackError(f"{name}.onnx", "simulated failure")
        return 0.0

    monkeypatch.setattr(export, "check_component", failing_check)
    args = export.build_parser().parse_args(["--pipeline", "x", "--out", str(tmp_path / "pack"), "--name", "p",
                                             "--license", "MIT"])
    with pytest.raises(PackError, match="simulated failure"):
        export.write_pack(loaded, tmp_path / "pack", args, log=lambda *_: None)
    assert not (tmp_path / "pack").exists()
    _no_partial(tmp_path)


def test_existing_output_needs_force(tmp_path, capsys, small_builds):
    (tmp_path / "pack").mkdir()
    code, err = _cli(["--pipeline", str(small_builds["pipeline"]), "--out", str(tmp_path / "pack")], capsys)
    assert code != 0 and "already exists (pass --force to replace it)" in err


def test_cli_process_exit_code_and_single_line(tmp_path):
    """The real command: non-zero exit status and exactly one line on stderr."""
    proc = subprocess.run([sys.executable, "-m", "unclip_toolchain.export", "--pipeline", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "pack")], capture_output=True, text=True, env=python_env(),
                          timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {tmp_path / 'nope'}: folder not found"]
    assert not (tmp_path / "pack").exists()
