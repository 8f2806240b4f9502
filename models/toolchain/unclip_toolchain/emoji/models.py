"""Model sizes and builders: Karlo's unCLIP architecture scaled down to 64x64 emoji, in diffusers/transformers classes.

Everything is one of the classes the toolchain exporter serves: CLIPTextModelWithProjection,
CLIPVisionModelWithProjection, PriorTransformer, UnCLIPTextProjModel, UNet2DConditionModel (decoder, 32x32,
6 output channels = eps + learned-range variance), UNet2DModel (super-resolution first/last, 32->64).
Widths are sized for a 2-core CPU (see MODEL_CARD.md for the budget). The CLIP text width equals the embedding
width because PriorTransformer and UnCLIPTextProjModel project the text hidden states from `embedding_dim`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..clip_tokenizer import MAX_LENGTH, VOCAB_SIZE

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Sizes:
    embed: int = 128                 # E = CLIP projection dim = text hidden size
    text_layers: int = 4
    text_heads: int = 4
    vision_width: int = 128
    vision_layers: int = 3
    vision_heads: int = 4
    patch: int = 8
    image: int = 64
    prior_layers: int = 4
    prior_heads: int = 4
    prior_head_dim: int = 32
    decoder_channels: tuple[int, ...] = (32, 64, 128)
    decoder_head_dim: int = 32
    decoder_size: int = 32
    norm_groups: int = 16
    sr_channels: tuple[int, ...] = (32, 64)
    sr_size: int = 64


def sizes_to_json(s: Sizes) -> dict:
    return asdict(s)


def sizes_from_json(d: dict) -> Sizes:
    d = dict(d)
    for k in ("decoder_channels", "sr_channels"):
        d[k] = tuple(d[k])
    return Sizes(**d)


def build_clip(s: Sizes, seed: int):
    from transformers import (CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    torch.manual_seed(seed)
    # eos_token_id=2 selects transformers' legacy pooling (argmax of input_ids = EOS 49407), as Karlo's config.
    text = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=VOCAB_SIZE, hidden_size=s.embed, intermediate_size=4 * s.embed, projection_dim=s.embed,
        num_hidden_layers=s.text_layers, num_attention_heads=s.text_heads, max_position_embeddings=MAX_LENGTH,
        hidden_act="quick_gelu", layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1))
    torch.manual_seed(seed + 1)
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=s.vision_width, intermediate_size=4 * s.vision_width, projection_dim=s.embed,
        num_hidden_layers=s.vision_layers, num_attention_heads=s.vision_heads, image_size=s.image,
        patch_size=s.patch, hidden_act="quick_gelu", layer_norm_eps=1e-5))
    return text, vision


def build_prior(s: Sizes, seed: int):
    from diffusers import PriorTransformer

    torch.manual_seed(seed)
    return PriorTransformer(num_attention_heads=s.prior_heads, attention_head_dim=s.prior_head_dim,
                            embedding_dim=s.embed, num_layers=s.prior_layers, num_embeddings=MAX_LENGTH,
                            additional_embeddings=4)


def build_text_proj(s: Sizes, seed: int):
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel

    torch.manual_seed(seed)
    return UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=s.embed,
                               time_embed_dim=4 * s.decoder_channels[0], cross_attention_dim=s.embed)


def build_decoder(s: Sizes, seed: int):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    n = len(s.decoder_channels)
    # Cross-attention only at the lowest resolution (8x8) and in the mid block: attention at 16x16 costs ~4x
    # the whole UNet on this CPU.
    down = ("ResnetDownsampleBlock2D",) * (n - 1) + ("SimpleCrossAttnDownBlock2D",)
    up = ("SimpleCrossAttnUpBlock2D",) + ("ResnetUpsampleBlock2D",) * (n - 1)
    return UNet2DConditionModel(
        sample_size=s.decoder_size, in_channels=3, out_channels=6, down_block_types=down, up_block_types=up,
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=s.decoder_channels, layers_per_block=1,
        cross_attention_dim=s.embed, attention_head_dim=s.decoder_head_dim, resnet_time_scale_shift="scale_shift",
        class_embed_type="identity", norm_num_groups=s.norm_groups)


# The super-resolution UNets predict the clean 64 px image ("sample"), not eps. With eps at t = 999
# (alpha_bar ~ 2e-9) the first of the 7 sampling steps is amplified noise whatever the network does, and the
# eps-trained SR scored CLIP cosine 0.89 to the original on clean 32 px inputs where plain bicubic scores 0.99.
# UnCLIPScheduler steps either kind; the pack's manifest records it, so the engine follows. train.py's
# SuperResStage.loss trains this target.
SR_PREDICTION_TYPE = "sample"


def build_super_res(s: Sizes, seed: int):
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    n = len(s.sr_channels)
    return UNet2DModel(sample_size=s.sr_size, in_channels=6, out_channels=3, layers_per_block=1,
                       down_block_types=("ResnetDownsampleBlock2D",) * n,
                       up_block_types=("ResnetUpsampleBlock2D",) * n,
                       block_out_channels=s.sr_channels, add_attention=False, norm_num_groups=s.norm_groups)


def clip_pixels(images01: torch.Tensor) -> torch.Tensor:
    """[B,3,64,64] in [0,1] -> CLIP-normalised pixel_values (what CLIPImageProcessor gives for a 64x64 image)."""
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    if images01.device.type != "cpu":
        mean, std = mean.to(images01.device), std.to(images01.device)
    return (images01 - mean) / std


def prior_forward(prior, hidden_states, timestep, proj_embedding, encoder_hidden_states, attention_mask):
    """PriorTransformer.forward for text states shorter than 77 tokens (training speed).

    Exactly equal to the stock forward on the same states padded to 77 with masked tokens: the padded keys are
    masked out everywhere, and the four extra tokens keep their positions 77..80 (positional embedding and causal
    mask rows/columns are gathered, not shifted). Tested in test_emoji_models.py.
    """
    B, L, _ = encoder_hidden_states.shape
    n_text = prior.config.num_embeddings
    if L > n_text:
        raise ValueError(f"encoder_hidden_states: {L} tokens > {n_text}")
    idx = torch.cat([torch.arange(L), torch.arange(n_text, n_text + prior.additional_embeddings)])
    if encoder_hidden_states.device.type != "cpu":
        idx = idx.to(encoder_hidden_states.device)
    t = timestep if torch.is_tensor(timestep) else torch.tensor([timestep])
    t = t.expand(B) if t.ndim == 1 and t.shape[0] == 1 else t
    time_emb = prior.time_embedding(prior.time_proj(t).to(hidden_states.dtype))
    seq = torch.cat([
        prior.encoder_hidden_states_proj(encoder_hidden_states),
        prior.embedding_proj(proj_embedding)[:, None],
        time_emb[:, None],
        prior.proj_in(hidden_states)[:, None],
        prior.prd_embedding.expand(B, -1, -1),
    ], dim=1)
    seq = seq + prior.positional_embedding[:, idx]
    mask = (1 - attention_mask.to(seq.dtype)) * -10000.0
    mask = F.pad(mask, (0, prior.additional_embeddings), value=0.0)
    causal = prior.causal_attention_mask[0][idx][:, idx]
    mask = (mask[:, None, :] + causal).repeat_interleave(prior.config.num_attention_heads, dim=0)
    for block in prior.transformer_blocks:
        seq = block(seq, attention_mask=mask)
    return prior.proj_to_clip_embeddings(prior.norm_out(seq)[:, -1])
