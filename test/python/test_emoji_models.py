"""Training pieces of the emoji unCLIP that must be exact: short text sequences instead of 77 tokens, loss weights."""

from __future__ import annotations

import pytest
import torch

from unclip_toolchain.emoji.models import Sizes, build_clip, build_prior, prior_forward

SMALL = Sizes(embed=32, text_layers=2, text_heads=2, vision_width=32, vision_layers=1, vision_heads=2,
              prior_layers=2, prior_heads=2, prior_head_dim=16)


def test_truncated_prior_forward_equals_stock_forward_on_77_tokens():
    prior = build_prior(SMALL, 0).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        prior.positional_embedding.normal_(generator=g)
        prior.prd_embedding.normal_(generator=g)
    B, L = 3, 9
    h = torch.randn(B, L, 32, generator=g)
    mask = torch.zeros(B, L, dtype=torch.bool)
    mask[:, :4] = True
    mask[1, :9] = True
    x, proj, t = torch.randn(B, 32, generator=g), torch.randn(B, 32, generator=g), torch.tensor([3, 400, 999])
    with torch.no_grad():
        short = prior_forward(prior, x, t, proj, h, mask)
        h77 = torch.cat([h, torch.randn(B, 77 - L, 32, generator=g)], 1)
        m77 = torch.cat([mask, torch.zeros(B, 77 - L, dtype=torch.bool)], 1)
        full = prior(x, timestep=t, proj_embedding=proj, encoder_hidden_states=h77,
                     attention_mask=m77).predicted_image_embedding
    assert torch.allclose(short, full, atol=1e-5), (short - full).abs().max()


def test_text_encoder_prefix_is_independent_of_padding_length():
    """Captions are padded to the batch's longest (not 77) in training: causal CLIP gives the same states."""
    text, _ = build_clip(SMALL, 0)
    text.eval()
    ids = torch.tensor([[49406, 320, 1929, 49407] + [0] * 4])
    ids77 = torch.cat([ids, torch.zeros(1, 69, dtype=torch.long)], 1)
    with torch.no_grad():
        a, b = text(input_ids=ids), text(input_ids=ids77)
    assert torch.allclose(a.text_embeds, b.text_embeds, atol=1e-5)
    assert torch.allclose(a.last_hidden_state, b.last_hidden_state[:, :8], atol=1e-5)


def test_min_snr_weight_keeps_noisy_steps_and_damps_clean_ones():
    from unclip_toolchain.emoji.diffusion import Schedule

    sch = Schedule()
    w = sch.min_snr_weight(torch.arange(1000), gamma=5.0)
    assert w.shape == (1000,) and float(w.max()) <= 1.0 + 1e-6
    assert float(w[999]) == pytest.approx(1.0) and float(w[500]) == pytest.approx(1.0)  # SNR < 5 there
    assert float(w[0]) < 1e-3 and bool((w[1:] >= w[:-1]).all())  # monotone: cleaner steps weigh less


def test_hybrid_loss_weight_scales_the_eps_term_per_sample():
    from unclip_toolchain.emoji.diffusion import Schedule

    sch = Schedule()
    g = torch.Generator().manual_seed(0)
    x0, noise, out = (torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, torch.randn(4, 3, 8, 8, generator=g),
                      torch.randn(4, 6, 8, 8, generator=g).clamp(-1, 1))
    t = torch.tensor([0, 10, 500, 999])
    xt = sch.q_sample(x0, t, noise)
    mse, vb = sch.hybrid_loss(out, x0, xt, t, noise)
    mse1, vb1 = sch.hybrid_loss(out, x0, xt, t, noise, torch.ones(4))
    assert float(mse1) == pytest.approx(float(mse)) and float(vb1) == float(vb)
    only_last, _ = sch.hybrid_loss(out, x0, xt, t, noise, torch.tensor([0.0, 0.0, 0.0, 4.0]))
    assert float(only_last) == pytest.approx(float((out[3, :3] - noise[3]).pow(2).mean()), rel=1e-5)


def test_first_step_garbage_targets_recover_the_true_x0():
    from unclip_toolchain.emoji.diffusion import Schedule

    sch = Schedule()
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.rand(6, 3, 8, 8, generator=g) * 2 - 1, torch.randn(6, 3, 8, 8, generator=g)
    t = torch.tensor([0, 300, 699, 700, 850, 999])
    xt, target = sch.q_sample_first_step_garbage(x0, t, noise, t_min=700, p=0.0)
    assert torch.equal(xt, sch.q_sample(x0, t, noise)) and torch.equal(target, noise)
    torch.manual_seed(0)
    xt, target = sch.q_sample_first_step_garbage(x0, t, noise, t_min=700, p=1.0)
    assert torch.equal(xt[:3], sch.q_sample(x0[:3], t[:3], noise[:3]))     # below t_min: untouched
    assert not torch.equal(xt[3:], sch.q_sample(x0[3:], t[3:], noise[3:]))
    a = sch.ac[t].float().view(-1, 1, 1, 1)
    x0_hat = (xt - (1 - a).sqrt() * target) / a.sqrt()                     # the sampler's x0 estimate
    assert torch.allclose(x0_hat[:5], x0[:5], atol=1e-4)                   # t = 999 divides by 5e-5: skip


def test_all_resumes_against_its_budget(tmp_path):
    """`emoji all` rerun after an interruption trains only what each stage's budget has left."""
    from unclip_toolchain.emoji.__main__ import BUDGET_SHARES
    from unclip_toolchain.emoji.train import ckpt_path, remaining_plan

    assert abs(sum(BUDGET_SHARES.values()) - 1) < 1e-9
    budget = {k: 100 * v for k, v in BUDGET_SHARES.items()}
    assert remaining_plan(budget, tmp_path) == list(budget.items())
    ckpt_path(tmp_path, "clip").parent.mkdir()
    torch.save({"step": 10, "elapsed": 6.0 * 60}, ckpt_path(tmp_path, "clip"))
    torch.save({"step": 10, "elapsed": 99.0 * 60}, ckpt_path(tmp_path, "prior"))
    plan = dict(remaining_plan(budget, tmp_path))
    assert plan["clip"] == budget["clip"] - 6.0
    assert plan["prior"] == 0.0
    assert plan["decoder"] == budget["decoder"]


def test_lr_warms_up_then_cools_down_over_the_last_fifth_of_a_known_budget():
    from unclip_toolchain.emoji.train import COOLDOWN, WARMUP, lr_at

    assert lr_at(0, 1.0) == 1.0 / WARMUP
    assert lr_at(10 * WARMUP, 1.0) == 1.0                   # no budget known: constant after warm-up
    assert lr_at(10 * WARMUP, 1.0, progress=0.5) == 1.0
    assert abs(lr_at(10 * WARMUP, 1.0, progress=1 - COOLDOWN) - 1.0) < 1e-9
    assert abs(lr_at(10 * WARMUP, 1.0, progress=1 - COOLDOWN / 2) - 0.5) < 1e-9
    assert lr_at(10 * WARMUP, 1.0, progress=1.0) == 0.0
    assert lr_at(10 * WARMUP, 1.0, progress=1.3) == 0.0     # a resumed stage past its budget never goes negative


def test_precision_option_is_checked_and_auto_follows_the_cpu():
    from unclip_toolchain.emoji.train import resolve_precision

    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto") == ("bf16" if native else "fp32")
    with pytest.raises(ValueError, match="--precision: 'fp16' is not one of auto, bf16, fp32"):
        resolve_precision("fp16")


def test_bf16_autocast_keeps_float32_weights_and_the_decoder_loss_close_to_float32():
    """Mixed precision as the stages use it: bf16 forward, float32 loss, float32 gradients on float32 weights."""
    from types import SimpleNamespace

    from unclip_toolchain.emoji.diffusion import Schedule
    from unclip_toolchain.emoji.models import build_decoder
    from unclip_toolchain.emoji.train import Stage

    sizes = Sizes(embed=32, decoder_channels=(16, 32), decoder_head_dim=16, norm_groups=8, decoder_size=16)
    dec = build_decoder(sizes, 0)
    g = torch.Generator().manual_seed(0)
    B = 4
    x0 = torch.rand(B, 3, 16, 16, generator=g) * 2 - 1
    noise = torch.randn(B, 3, 16, 16, generator=g)
    t = torch.tensor([10, 300, 600, 990])
    sch = Schedule()
    xt = sch.q_sample(x0, t, noise)
    enc, add = torch.randn(B, 6, 32, generator=g), torch.randn(B, 64, generator=g)
    losses, grads = {}, {}
    for precision in ("fp32", "bf16"):
        dec.zero_grad(set_to_none=True)
        with Stage.autocast(SimpleNamespace(precision=precision)):
            out = dec(xt, t, encoder_hidden_states=enc, class_labels=add).sample
        assert out.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
        mse, vb = sch.hybrid_loss(out.float(), x0, xt, t, noise)
        (mse + vb).backward()
        losses[precision] = mse.item()
        w = dec.conv_in.weight
        assert w.dtype == torch.float32 and w.grad.dtype == torch.float32
        grads[precision] = w.grad.clone()
    assert abs(losses["bf16"] - losses["fp32"]) < 0.02 * losses["fp32"], losses
    cos = torch.nn.functional.cosine_similarity(grads["bf16"].flatten(), grads["fp32"].flatten(), dim=0)
    assert cos > 0.98, float(cos)
