"""The shipped emoji pack (models/emoji-tiny, issue #5): manifest validates, size budget, attribution shipped,
and every network loads and runs in onnxruntime with sane outputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT

from unclip_toolchain.clip_tokenizer import build_fast_tokenizer, tokenize_batch
from unclip_toolchain.manifest import verify_pack

PACK = Path(os.environ.get("EMOJI_PACK", ROOT / "models" / "emoji-tiny"))
MAX_BYTES = 80_000_000   # 60 MB before the optional autoregressive prior (its three graphs 12.8 MB; issue #17)

pytestmark = pytest.mark.skipif(not (PACK / "manifest.json").is_file(), reason="models/emoji-tiny not exported")


@pytest.fixture(scope="module")
def manifest():
    return verify_pack(PACK)


@pytest.fixture(scope="module")
def sessions(manifest):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return {name: ort.InferenceSession(str(PACK / c["file"]), opts, providers=["CPUExecutionProvider"])
            for name, c in manifest["components"].items()}


def test_manifest_describes_the_emoji_model(manifest):
    assert manifest["name"] == "emoji-tiny"
    assert manifest["resolution"] == {"decoder": 32, "output": 64}
    assert set(manifest["components"]) == {"text_encoder", "image_encoder", "prior", "text_proj", "decoder",
                                           "super_res_first", "super_res_last", "ar_prior",
                                           "ar_prior_start", "ar_prior_step"}
    assert manifest["schema_version"] == 2 and manifest["ar_prior"]["sequence_length"] == 41
    assert manifest["schedulers"]["decoder"]["variance_type"] == "learned_range"
    assert "CC-BY-4.0" in manifest["license"]
    assert np.all(np.array(manifest["prior_stats"]["clip_std"]) > 0)


def test_pack_size_and_attribution(manifest):
    size = sum(p.stat().st_size for p in PACK.iterdir() if p.is_file())
    assert size <= MAX_BYTES, f"{size / 1e6:.1f} MB"
    text = (PACK / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for needle in ("Twemoji", "CC-BY 4.0", "Noto", "Apache", "Fluent", "Microsoft", "emojibase"):
        assert needle in text
    for f in ("LICENSE-Apache-2.0.txt", "LICENSE-CC-BY-4.0.txt", "LICENSE-MIT.txt", "MODEL_CARD.md", "NOTICE.md"):
        assert f in manifest["files"]


def test_networks_run_in_onnxruntime(manifest, sessions):
    E, H = manifest["embedding_dim"], manifest["text"]["hidden_size"]
    ids, mask = tokenize_batch(build_fast_tokenizer(), ["", "a red apple, noto style"])
    ids, mask = np.array(ids, dtype=np.int64), np.array(mask, dtype=bool)
    text_embeds, hidden = sessions["text_encoder"].run(None, {"input_ids": ids})
    assert text_embeds.shape == (2, E) and hidden.shape == (2, 77, H)
    assert not np.allclose(text_embeds[0], text_embeds[1])
    rng = np.random.default_rng(0)
    (z,) = sessions["prior"].run(None, {
        "hidden_states": rng.standard_normal((2, E)).astype(np.float32), "timestep": np.array([999, 999]),
        "proj_embedding": text_embeds, "encoder_hidden_states": hidden, "attention_mask": mask})
    assert z.shape == (2, E) and np.isfinite(z).all()
    enc, add = sessions["text_proj"].run(None, {
        "image_embeddings": z, "uncond_mask": np.array([True, False]), "prompt_embeds": text_embeds,
        "text_encoder_hidden_states": hidden})
    dmask = np.concatenate([np.ones((2, 4), dtype=bool), mask], 1)
    (out,) = sessions["decoder"].run(None, {
        "sample": rng.standard_normal((2, 3, 32, 32)).astype(np.float32), "timestep": np.array([500, 500]),
        "encoder_hidden_states": enc, "class_labels": add, "attention_mask": dmask})
    assert out.shape == (2, 6, 32, 32) and np.isfinite(out).all()
    # a trained eps-predictor returns roughly unit-variance noise estimates
    assert 0.3 < float(out[:, :3].std()) < 3.0
    for name in ("super_res_first", "super_res_last"):
        (sr,) = sessions[name].run(None, {"sample": rng.standard_normal((1, 6, 64, 64)).astype(np.float32),
                                          "timestep": np.array([0])})
        assert sr.shape == (1, 3, 64, 64) and np.isfinite(sr).all()
    px = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    (img,) = sessions["image_encoder"].run(None, {"pixel_values": px})
    assert img.shape == (1, E)


def test_super_resolution_predicts_the_clean_image(manifest, sessions):
    """super_res_first is an x0 predictor: from pure noise (t = 999) and the bicubic upsample of a picture's 32 px
    version it returns that picture, blurred at most (an eps predictor returns noise here: PSNR ~ 0 dB)."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    assert manifest["schedulers"]["super_res"]["prediction_type"] == "sample"
    pics = sorted((ROOT / "test" / "fixtures" / "manip-images").glob("*-1f*.png"))[:4]
    assert len(pics) == 4

    def on_white(p):  # as the training compositions: alpha flattened onto a white background
        im = Image.open(p).convert("RGBA").resize((64, 64), Image.BICUBIC)
        rgb = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im).convert("RGB")
        return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)

    x = torch.stack([on_white(p) for p in pics])
    low = F.interpolate(x, size=32, mode="bilinear", antialias=True, align_corners=False)
    up = F.interpolate(low, size=64, mode="bicubic", antialias=True, align_corners=False)
    noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    (x0,) = sessions["super_res_first"].run(None, {"sample": np.concatenate([noise, up.numpy()], 1),
                                                   "timestep": np.full(len(x), 999)})
    mse = ((np.clip(x0, -1, 1) - x.numpy()) ** 2).mean(axis=(1, 2, 3)) / 4   # in [0, 1] units
    psnr = 10 * np.log10(1 / mse)
    assert psnr.min() > 20, psnr
