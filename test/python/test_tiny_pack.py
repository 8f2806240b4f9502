"""The committed tiny pack loads in onnxruntime with the manifest's I/O, and replaying the committed fixture through
the pack (onnxruntime networks + diffusers' UnCLIPScheduler + injected noise) reproduces diffusers' own outputs."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import TINY_FIXTURE, TINY_PACK
from safetensors.numpy import load_file

from unclip_toolchain.flops import count_flops
from unclip_toolchain.manifest import verify_pack

ORT_DTYPES = {"float32": "tensor(float)", "int64": "tensor(int64)", "bool": "tensor(bool)"}


@pytest.fixture(scope="module")
def manifest():
    return verify_pack(TINY_PACK)


@pytest.fixture(scope="module")
def sessions(manifest):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return {name: ort.InferenceSession(str(TINY_PACK / c["file"]), opts, providers=["CPUExecutionProvider"])
            for name, c in manifest["components"].items()}


def test_sessions_match_manifest_io(manifest, sessions):
    for name, comp in manifest["components"].items():
        sess = sessions[name]
        for kind, values in (("inputs", sess.get_inputs()), ("outputs", sess.get_outputs())):
            declared = comp[kind]
            assert [v.name for v in values] == [t["name"] for t in declared], name
            for v, t in zip(values, declared):
                assert v.type == ORT_DTYPES[t["dtype"]], (name, v.name)
                assert [d if isinstance(d, int) else "batch" for d in v.shape] == t["shape"], (name, v.name)


def test_flops_are_the_recount(manifest):
    for name, comp in manifest["components"].items():
        model = onnx.load(str(TINY_PACK / comp["file"]), load_external_data=False)
        assert model.opset_import[0].version == 17
        assert comp["flops"] == count_flops(model), name


@pytest.fixture(scope="module")
def fixture():
    spec = json.loads((TINY_FIXTURE / "fixture.json").read_text(encoding="utf-8"))
    assert (TINY_FIXTURE / spec["pack"]).resolve() == TINY_PACK.resolve()
    return spec, load_file(str(TINY_FIXTURE / "fixture.safetensors"))


def _scheduler(cfg: dict):
    from diffusers import UnCLIPScheduler

    return UnCLIPScheduler(num_train_timesteps=cfg["num_train_timesteps"], variance_type=cfg["variance_type"],
                           prediction_type=cfg["prediction_type"], clip_sample=cfg["clip_sample"],
                           clip_sample_range=cfg["clip_sample_range"])


def _step(sched, out, t, x, prev, noise):
    """UnCLIPScheduler.step with the recorded noise instead of a generator draw."""
    import diffusers.schedulers.scheduling_unclip as mod

    saved = mod.randn_tensor
    mod.randn_tensor = lambda shape, **_: torch.from_numpy(noise).reshape(shape)
    try:
        return sched.step(torch.from_numpy(out), int(t), torch.from_numpy(x), prev_timestep=prev).prev_sample.numpy()
    finally:
        mod.randn_tensor = saved


def _loop(sched, ts, x, tensors, case, stage, model_fn):
    sched.set_timesteps(len(ts))
    assert [int(t) for t in sched.timesteps] == ts
    for i, t in enumerate(ts):
        out = model_fn(x, t)
        prev = ts[i + 1] if i + 1 < len(ts) else None
        noise = tensors[f"{case}/{stage}_noise/{i}"] if t > 0 else None
        x = _step(sched, out, t, x, prev, noise)
        close_enough(x, tensors[f"{case}/{stage}_trajectory/{i}"], f"{case} {stage} step {i}")
    return x


def close_enough(actual, expected, what, atol=2e-4, share=0.999, worst=2e-2):
    """At t=999 the scheduler computes x0 = (x - sqrt(1-a)·eps) / sqrt(a) with sqrt(a) ~ 5e-5: a 1e-6 difference
    between onnxruntime and PyTorch in eps becomes ~2e-2 in x0 wherever x0 is not clamped to ±1. So: almost all
    elements within atol, and the few ill-conditioned ones within `worst`."""
    err = np.abs(actual - expected)
    assert np.mean(err <= atol) >= share, f"{what}: only {np.mean(err <= atol):.5f} of elements within {atol}"
    assert err.max() <= worst, f"{what}: max error {err.max():.3g}"


def _replay(manifest, sessions, spec_case, T, with_prior: bool):
    name = spec_case["name"]
    g = lambda role: T[f"{name}/{role}"]  # noqa: E731
    n = spec_case["num_images_per_prompt"]
    ids = np.array(spec_case["input_ids"], dtype=np.int64)
    mask = np.array(spec_case["attention_mask"], dtype=bool)
    emb, hid = sessions["text_encoder"].run(None, {"input_ids": ids})
    emb, hid, mask = np.repeat(emb, n, 0), np.repeat(hid, n, 0), np.repeat(mask, n, 0)
    np.testing.assert_allclose(emb, g("text_embeds"), atol=1e-5)
    np.testing.assert_allclose(hid, g("last_hidden_state"), atol=1e-5)
    B = emb.shape[0]
    u_emb, u_hid = sessions["text_encoder"].run(None, {"input_ids": np.array([spec_case["uncond_input_ids"]])})
    u_mask = np.array([spec_case["uncond_attention_mask"]], dtype=bool)
    p_emb = np.concatenate([np.repeat(u_emb, B, 0), emb])
    p_hid = np.concatenate([np.repeat(u_hid, B, 0), hid])
    p_mask = np.concatenate([np.repeat(u_mask, B, 0), mask])
    if with_prior:
        gs = spec_case["prior_guidance"]

        def prior_fn(x, t):
            xx = np.concatenate([x, x])
            out = sessions["prior"].run(None, {"hidden_states": xx, "timestep": np.full(2 * B, t, np.int64),
                                               "proj_embedding": p_emb, "encoder_hidden_states": p_hid,
                                               "attention_mask": p_mask})[0]
            u, c = out[:B], out[B:]
            return u + gs * (c - u)

        lat = _loop(_scheduler(manifest["schedulers"]["prior"]), spec_case["prior_timesteps"], g("prior_latents"), T,
                    name, "prior", prior_fn)
        stats = manifest["prior_stats"]
        image_emb = (lat * np.array(stats["clip_std"], np.float32) + np.array(stats["clip_mean"], np.float32))
    else:
        pix = g("pixel_values")
        image_emb = np.repeat(sessions["image_encoder"].run(None, {"pixel_values": pix})[0], n, 0)
    np.testing.assert_allclose(image_emb, g("image_embeddings"), atol=1e-4)
    enc, add_t = sessions["text_proj"].run(None, {
        "image_embeddings": np.concatenate([image_emb, image_emb]).astype(np.float32),
        "uncond_mask": np.array([True] * B + [False] * B), "prompt_embeds": p_emb,
        "text_encoder_hidden_states": p_hid})
    np.testing.assert_allclose(enc, g("text_proj_encoder_hidden_states"), atol=1e-4)
    np.testing.assert_allclose(add_t, g("text_proj_additive_time"), atol=1e-4)
    d_mask = np.concatenate([np.ones((2 * B, 4), bool), p_mask], axis=1)
    gd = spec_case["decoder_guidance"]

    def decoder_fn(x, t):
        out = sessions["decoder"].run(None, {"sample": np.concatenate([x, x]), "timestep": np.full(2 * B, t, np.int64),
                                             "encoder_hidden_states": enc, "class_labels": add_t,
                                             "attention_mask": d_mask})[0]
        u, c = out[:B], out[B:]
        return np.concatenate([u[:, :3] + gd * (c[:, :3] - u[:, :3]), c[:, 3:]], axis=1)

    x = _loop(_scheduler(manifest["schedulers"]["decoder"]), spec_case["decoder_timesteps"], g("decoder_latents"), T,
              name, "decoder", decoder_fn)
    small = np.clip(x, -1, 1)
    close_enough(small, g("decoder_image"), "decoder_image")
    O = manifest["resolution"]["output"]
    up = torch.nn.functional.interpolate(torch.from_numpy(g("decoder_image")), size=[O, O], mode="bicubic",
                                         align_corners=False, antialias=True).numpy()
    np.testing.assert_allclose(up, g("upscaled"), atol=1e-6)
    ts = spec_case["super_res_timesteps"]

    def sr_fn(y, t):
        sess = sessions["super_res_last" if t == ts[-1] else "super_res_first"]
        return sess.run(None, {"sample": np.concatenate([y, up], axis=1), "timestep": np.full(B, t, np.int64)})[0]

    img = _loop(_scheduler(manifest["schedulers"]["super_res"]), ts, g("super_res_latents"), T, name, "super_res",
                sr_fn)
    close_enough(img, g("image"), "image")
    return img


def test_fixture_replays_through_the_pack_text2img(manifest, sessions, fixture):
    spec, T = fixture
    case = next(c for c in spec["cases"] if c["kind"] == "text_to_image")
    assert len(case["prompts"]) == 2 and case["num_images_per_prompt"] == 2
    img = _replay(manifest, sessions, case, T, with_prior=True)
    assert img.shape == (4, 3, 64, 64)
    assert np.abs(img[0] - img[1]).max() > 0.1  # different noise per image


def test_fixture_replays_through_the_pack_variation(manifest, sessions, fixture):
    spec, T = fixture
    case = next(c for c in spec["cases"] if c["kind"] == "image_variation")
    from PIL import Image
    from transformers import CLIPImageProcessorPil

    prep = manifest["image_preprocess"]
    proc = CLIPImageProcessorPil(size={"shortest_edge": prep["size"]}, crop_size=prep["crop_size"],
                                 image_mean=prep["mean"], image_std=prep["std"])
    pix = proc(images=Image.open(TINY_FIXTURE / case["input_image"]), return_tensors="np").pixel_values
    np.testing.assert_allclose(pix, T["variation/pixel_values"], atol=1e-6)
    _replay(manifest, sessions, case, T, with_prior=False)


def test_fixture_noise_is_complete(fixture):
    spec, T = fixture
    for case in spec["cases"]:
        for stage in ("prior", "decoder", "super_res"):
            ts = case.get(f"{stage}_timesteps")
            if ts is None:
                continue
            for i, t in enumerate(ts):
                assert (f"{stage}_noise/{i}" in case["tensors"]) == (t > 0)
        for role, key in case["tensors"].items():
            assert key == f"{case['name']}/{role}" and key in T and T[key].dtype == np.float32


def test_fixture_records_the_float64_floor(fixture):
    """Every compared role of every case carries the reference's float32-vs-float64 discrepancy (the parity tool's
    fidelity floor): float32 rounding where the reference is well-conditioned, larger only on the final image (x0 at
    t = 999 amplifies it)."""
    from unclip_toolchain.tiny import FLOOR_ROLES

    spec, _ = fixture
    for case in spec["cases"]:
        floor = case["float64_discrepancy"]
        assert set(floor) == {r for r in FLOOR_ROLES if r in case["tensors"]}, case["name"]
        assert all(np.isfinite(v) and v >= 0 for v in floor.values())
        assert all(v < 1e-4 for r, v in floor.items() if r != "image"), (case["name"], floor)
        assert floor.get("pixel_values", 0.0) == 0.0  # the processor's output, fed to both runs alike


def test_float64_discrepancy_is_the_max_abs_difference_per_role():
    from unclip_toolchain.tiny import float64_discrepancy

    f32 = {"image": torch.tensor([0.5, -0.25], dtype=torch.float32), "other": torch.zeros(1)}
    f64 = {"image": torch.tensor([0.5, -0.2], dtype=torch.float64)}
    out = float64_discrepancy(f32, f64)
    assert list(out) == ["image"] and abs(out["image"] - 0.05) < 1e-12


PREFIX_ROLES = ("prior_", "text_embeds", "last_hidden_state", "uncond_text_embeds", "uncond_last_hidden_state",
                "image_embeddings", "text_proj_")


def test_prefix_stages_fixture_is_the_full_runs_prefix(tmp_path):
    """--pipeline DIR --stages text,prior,text_proj (the full-size parity fixture): only the components up to text_proj
    are loaded, the pipeline is stopped after text_proj, and the recorded tensors are exactly the full run's up to
    there (same noise); the fixture carries `stages`, its float64 floor and the args to rebuild it."""
    from unclip_toolchain import tiny
    from unclip_toolchain.errors import PackError
    from unclip_toolchain.tiny_models import build_pipelines, build_tiny_components

    args = ["--seed", "3", "--layers", "1", "--prompts", "a red rocket", "--n", "1", "--steps-prior", "2",
            "--steps-decoder", "2", "--steps-sr", "2", "--out-pack", str(TINY_PACK), "--out-fixture",
            str(tmp_path / "fixture")]
    for bad in (args + ["--pipeline", str(tmp_path)], args + ["--stages", tiny.PREFIX_STAGES]):
        with pytest.raises(PackError):
            tiny._validate(tiny.build_parser().parse_args(bad))
    a = tiny.build_parser().parse_args(args + ["--pipeline", str(tmp_path / "p"), "--stages", tiny.PREFIX_STAGES])
    tiny._validate(a)
    t2i, _ = build_pipelines(build_tiny_components(a.seed, a.width, a.layers, a.prior_layers))
    t2i.save_pretrained(tmp_path / "p", safe_serialization=True)
    report = tiny.build_prefix(a, log=lambda *_: None)

    spec = json.loads((tmp_path / "fixture" / "fixture.json").read_text(encoding="utf-8"))
    (case,) = spec["cases"]
    assert case["stages"] == ["text", "prior", "text_proj"] and case["prior_steps"] == 2
    assert case["prior_timesteps"] == report["case"]["prior_timesteps"] and "decoder_steps" not in case
    assert spec["args"]["stages"] == tiny.PREFIX_STAGES and spec["args"]["pipeline"] == str((tmp_path / "p").resolve())
    assert set(case["float64_discrepancy"]) == {"text_embeds", "last_hidden_state", "uncond_text_embeds",
                                                "image_embeddings", "text_proj_encoder_hidden_states",
                                                "text_proj_additive_time"}
    assert all(0 <= v < 1e-4 for v in case["float64_discrepancy"].values())
    T = load_file(str(tmp_path / "fixture" / "fixture.safetensors"))

    # the full pipeline on the same loaded components and seed: its roles up to text_proj are the fixture's, bit for
    # bit (components loaded with from_pretrained, as the builder does: the in-memory ones differ in the last ulp)
    loaded = {k: v for k, v in tiny.load_prefix_pipeline(tmp_path / "p").components.items() if v is not None}
    ref, _ = build_pipelines({**t2i.components, **loaded, "image_encoder": None, "feature_extractor": None})
    _, full = tiny.run_text2img(ref, a, torch.Generator().manual_seed(a.seed + 1))
    expect = {r for r in full if r.startswith(PREFIX_ROLES)}
    assert set(case["tensors"]) == expect
    for r in expect:
        np.testing.assert_array_equal(T[f"text2img/{r}"], full[r].numpy(), err_msg=r)
