"""Training on a device (train.py `--device`, gpu.py): the CPU path stays bit-identical to the CPU-only code it
replaced, and the bundle that brings a GPU run's weights back splits, reassembles and imports exactly.

Runs on a synthetic 8-image dataset with small model sizes, one thread; no GPU needed (the CUDA path itself is
exercised by models/toolchain/gpu/train-on-device.sh on the device machine)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from unclip_toolchain.emoji.models import Sizes, sizes_to_json

SMALL = Sizes(embed=32, text_layers=1, text_heads=2, vision_width=32, vision_layers=1, vision_heads=2,
              prior_layers=1, prior_heads=2, prior_head_dim=16, decoder_channels=(16, 32), decoder_head_dim=16,
              norm_groups=8, sr_channels=(16, 32))
PLAN = [("clip", 5.0), ("prior", 5.0), ("decoder", 5.0), ("sr", 5.0), ("sr_last", 5.0)]

# sha256 of every stage's weights, EMA and extra parameters after 2 steps of each stage (fake_data, SMALL,
# seed 0, one thread), measured with the CPU-only train.py of commit 796ebeb, before `--device` existed. Only
# compared where the environment matches the one it was measured in (other CPUs and torch builds round
# differently); the with / without `--device cpu` comparison below runs everywhere.
REFERENCE = {
    "env": "torch 2.15.0+cu132, AVX512, bf16 True, amx False",
    "fp32": {"clip": "3a8f14750a059505", "prior": "6bbd3e97ee4eb9bb", "decoder": "91da8dde0b7df99b",
             "sr": "f9283d24578cfb83", "sr_last": "a9bfedf90800f8b8"},
    "bf16": {"clip": "6cb6f1a65b3ba396", "prior": "f237e34e7e261eb0", "decoder": "15d7323d715c0fce",
             "sr": "b48285419c2fb34e", "sr_last": "09c14ec2b3024e6e"},
}


def fake_data(root):
    """An emoji dataset folder (emoji64.npz + emoji64.json) with 8 random images of 4 concepts."""
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(8, 64, 64, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rgba[..., 3] > 100, 255, 0)
    concepts = {k: {"label": label, "tags": tags, "group": "g", "subgroup": "s", "flag": False}
                for k, label, tags in (("1f34e", "red apple", ["apple", "fruit"]),
                                       ("1f431", "cat face", ["cat", "pet"]),
                                       ("1f680", "rocket", ["space"]),
                                       ("2b50", "star", ["night"]))}
    keys = sorted(concepts)
    images = [{"style": ("noto", "twemoji")[i % 2], "keys": [keys[i % 4]], "md5": f"{i:032x}"} for i in range(8)]
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / "emoji64.npz", rgba=rgba)
    (root / "emoji64.json").write_text(json.dumps(
        {"format": 1, "size": 64, "styles": ["noto", "twemoji"], "flag_weight": 0.25, "concepts": concepts,
         "images": images, "counts": {}}))
    return root


def weights_hash(run_dir) -> dict:
    """{stage: sha256 of its model, EMA and extra tensors, in a fixed order}."""
    out = {}
    for stage, _ in PLAN:
        ck = torch.load(run_dir / "ckpt" / f"{stage}.pt", weights_only=False, map_location="cpu")
        h = hashlib.sha256()
        tensors = [("model", k, n, v) for k, sd in sorted(ck["model"].items()) for n, v in sorted(sd.items())]
        tensors += [("ema", k, n, v) for k, e in sorted(ck["ema"].items()) for n, v in sorted(e["shadow"].items())]
        tensors += [("extra", str(i), "", v) for i, v in enumerate(ck["extra"])]
        for kind, k, n, v in tensors:
            h.update(f"{kind}/{k}/{n}/{v.dtype}/{tuple(v.shape)}".encode())
            h.update(v.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
        out[stage] = h.hexdigest()[:16]
    return out


def tiny_run(run_dir, data_dir, precision: str, **kw) -> dict:
    from unclip_toolchain.emoji.train import train_plan

    run_dir.mkdir(parents=True)
    (run_dir / "sizes.json").write_text(json.dumps(sizes_to_json(SMALL)))
    threads = torch.get_num_threads()
    try:
        train_plan(PLAN, run_dir=run_dir, data_dir=data_dir, seed=0, max_steps=2, precision=precision, **kw)
    finally:
        torch.set_num_threads(threads)
    return weights_hash(run_dir)


def environment_key() -> str:
    return f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, " \
           f"bf16 {torch.cpu._is_avx512_bf16_supported()}, amx {torch.cpu._is_amx_tile_supported()}"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return fake_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("EMOJI_THREADS", "1")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cpu_training_is_bit_identical_with_and_without_the_device_option(tmp_path, data_dir, precision):
    default = tiny_run(tmp_path / "default", data_dir, precision)
    explicit = tiny_run(tmp_path / "cpu", data_dir, precision, device="cpu")
    assert default == explicit
    if REFERENCE["env"] == environment_key():
        assert default == REFERENCE[precision], "CPU training no longer matches the CPU-only code of 796ebeb"


def test_cpu_checkpoints_hold_no_device_fields_and_resume_exactly(tmp_path, data_dir):
    """A CPU checkpoint is what it was (no batch / device keys); 2 + 2 steps resumed == 4 steps straight."""
    from unclip_toolchain.emoji.train import train_plan

    tiny_run(tmp_path / "a", data_dir, "fp32")
    ck = torch.load(tmp_path / "a" / "ckpt" / "decoder.pt", weights_only=False)
    assert "device" not in ck and "batch" not in ck
    assert all(v.device.type == "cpu" for v in ck["ema"]["decoder"]["shadow"].values())
    threads = torch.get_num_threads()
    try:
        train_plan([("decoder", 5.0)], run_dir=tmp_path / "a", data_dir=data_dir, seed=0, max_steps=2,
                   precision="fp32")
        straight = tmp_path / "b"
        straight.mkdir()
        (straight / "sizes.json").write_text(json.dumps(sizes_to_json(SMALL)))
        (straight / "ckpt").mkdir()
        (straight / "clip_frozen").touch()
        (straight / "ckpt" / "clip.pt").write_bytes((tmp_path / "a" / "ckpt" / "clip.pt").read_bytes())
        train_plan([("decoder", 5.0)], run_dir=straight, data_dir=data_dir, seed=0, max_steps=4, precision="fp32")
    finally:
        torch.set_num_threads(threads)
    a = torch.load(tmp_path / "a" / "ckpt" / "decoder.pt", weights_only=False)
    b = torch.load(straight / "ckpt" / "decoder.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for n, v in a["ema"]["decoder"]["shadow"].items():
        assert torch.equal(v, b["ema"]["decoder"]["shadow"][n]), n


def test_batch_override_is_recorded_and_checked(tmp_path, data_dir):
    from unclip_toolchain.emoji.train import parse_batches, stage_summary, train_plan

    assert parse_batches(None) == {} and parse_batches("decoder=8, sr=6") == {"decoder": 8, "sr": 6}
    with pytest.raises(ValueError, match="--batch: unknown stage 'dec'"):
        parse_batches("dec=8")
    with pytest.raises(ValueError, match="needs a whole number"):
        parse_batches("decoder=big")
    run = tmp_path / "run"
    run.mkdir()
    (run / "sizes.json").write_text(json.dumps(sizes_to_json(SMALL)))
    threads = torch.get_num_threads()
    try:
        train_plan([("sr", 5.0)], run_dir=run, data_dir=data_dir, max_steps=1, precision="fp32",
                   batches={"sr": 6})
    finally:
        torch.set_num_threads(threads)
    assert stage_summary(run)["sr"]["batch"] == 6


def test_device_option_is_checked():
    from unclip_toolchain.emoji.train import resolve_device, resolve_precision

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="--device: 'tpu' is not one of auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            resolve_device("cuda")
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_bundle_splits_into_parts_within_the_tools_limits_and_reassembles_exactly(tmp_path):
    from unclip_toolchain.emoji import gpu

    g = torch.Generator().manual_seed(0)
    big = torch.randn(3, 1 << 20, generator=g)                # 12 MiB of float32
    payload = {"format": 1, "sizes": {}, "logs": {"train.log": "x\n"}, "meta": {},
               "stages": {"clip": {"step": 3, "elapsed": 6.0, "ema": {"text": {"decay": 0.999, "n": 3,
                                                                                "shadow": {"w": big}}}}}}
    m = gpu.write_bundle(tmp_path / "out", payload, part_bytes=5 * gpu.MiB)
    assert m["shadow_dtype"] == "float32" and len(m["parts"]) == 3
    assert gpu.check_out_dir(tmp_path / "out") == []
    back = gpu.read_bundle(tmp_path / "out")
    assert torch.equal(back["stages"]["clip"]["ema"]["text"]["shadow"]["w"], big)
    # a damaged part is refused by name
    part = tmp_path / "out" / m["parts"][1]["file"]
    b = bytearray(part.read_bytes())
    b[100] ^= 1
    part.write_bytes(bytes(b))
    with pytest.raises(ValueError, match="weights.part01: .* not the part the device wrote"):
        gpu.read_bundle(tmp_path / "out")
    # too big for the tool in float32: bfloat16 (recorded), cast back to float32 on reading
    m = gpu.write_bundle(tmp_path / "small", payload, part_bytes=4 * gpu.MiB, files_left=2)
    assert m["shadow_dtype"] == "bfloat16" and len(m["parts"]) == 2
    w = gpu.read_bundle(tmp_path / "small")["stages"]["clip"]["ema"]["text"]["shadow"]["w"]
    assert w.dtype == torch.float32 and torch.equal(w, big.to(torch.bfloat16).float())
    with pytest.raises(ValueError, match="even in bfloat16"):
        gpu.write_bundle(tmp_path / "none", payload, part_bytes=2 * gpu.MiB, files_left=2)
    assert gpu.check_out_dir(tmp_path / "none") == []


def test_gpu_train_on_cpu_then_import_gives_a_run_dir_like_a_cpu_run(tmp_path, data_dir):
    """gpu-train's whole path forced onto the CPU (preflight, stages, bundle), then gpu-import: the imported
    checkpoints carry the trained EMA weights exactly, and a resumed stage trains on from them."""
    from unclip_toolchain.emoji import gpu
    from unclip_toolchain.emoji.train import stage_summary, train_plan

    run = tmp_path / "device-run"
    run.mkdir()
    (run / "sizes.json").write_text(json.dumps(sizes_to_json(SMALL)))
    threads = torch.get_num_threads()
    try:
        r = gpu.train_on_device(tmp_path / "OUT", budget_minutes=1.0, deadline_minutes=5.0, device="cpu",
                                data_dir=data_dir, run_dir=run, max_steps=2)
        assert r["status"] == "ok" and r["out_problems"] == [], r
        log = (tmp_path / "OUT" / gpu.LOG_FILE).read_text()
        assert "preflight: 2 steps of every stage" in log and "steps/min" in log and "$OUT within" in log
        imported = tmp_path / "imported"
        info = gpu.import_run(tmp_path / "OUT", imported)
        assert set(info["stages"]) == {"clip", "prior", "decoder", "sr"}
        with pytest.raises(FileExistsError, match="--force"):
            gpu.import_run(tmp_path / "OUT", imported)
        for s in info["stages"]:
            a = torch.load(run / "ckpt" / f"{s}.pt", weights_only=False)
            b = torch.load(imported / "ckpt" / f"{s}.pt", weights_only=False)
            assert a["step"] == b["step"] == 2
            for k, e in a["ema"].items():
                for n, v in e["shadow"].items():
                    assert torch.equal(v, b["ema"][k]["shadow"][n]) and torch.equal(v, b["model"][k][n])
        assert (imported / "clip_frozen").exists() and (imported / "train.log").is_file()
        assert stage_summary(imported)["decoder"]["steps"] == 2
        # resumable on the CPU: fresh AdamW moments, warm-up restarted at the imported step
        train_plan([("decoder", 5.0)], run_dir=imported, data_dir=data_dir, max_steps=1, precision="fp32")
        ck = torch.load(imported / "ckpt" / "decoder.pt", weights_only=False)
        assert ck["step"] == 3 and ck["warmup_from"] == 2 and "opt" in ck
    finally:
        torch.set_num_threads(threads)
