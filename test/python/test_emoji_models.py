"""Training shortcuts of the emoji unCLIP that must be exact: short text sequences instead of 77 tokens."""

from __future__ import annotations

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
