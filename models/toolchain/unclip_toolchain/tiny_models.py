"""Tiny random unCLIP with the dimensions of diffusers' own unCLIP tests (tests/pipelines/unclip/test_unclip.py and
test_unclip_image_variation.py at 62cce3045d67), changed only where a parity model needs it:

* text encoder vocab 49408 so the real CLIP tokenizer fits (diffusers' tests use a 1000-token random tokenizer);
* prior clip_std = 1 + small noise and clip_mean non-zero (the tests leave them at 0, which makes the prior output
  irrelevant: post_process_latents would return all zeros);
* text_proj's learned classifier-free-guidance embedding is random instead of zeros, so CFG rows are distinguishable.

`width` is the CLIP width (text hidden size = embedding/projection dim, 32 in the tests), `layers` the number of
CLIP encoder layers (5 in the tests), `prior_layers` the prior transformer depth (1 in the tests).
"""

from __future__ import annotations

import torch

from .clip_tokenizer import BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE, build_fast_tokenizer


def _import_unclip():
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPScheduler
    from diffusers.pipelines.deprecated.unclip import UnCLIPImageVariationPipeline, UnCLIPPipeline
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel

    return (PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPScheduler, UnCLIPPipeline,
            UnCLIPImageVariationPipeline, UnCLIPTextProjModel)


def build_tiny_components(seed: int = 0, width: int = 16, layers: int = 5, prior_layers: int = 1) -> dict:
    """All components of both pipelines (text-to-image and image variation), deterministic in `seed`."""
    from transformers import (CLIPImageProcessorPil, CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    (PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPScheduler, _, _, UnCLIPTextProjModel) = _import_unclip()
    time_embed_dim = 128
    cross_attention_dim = 100

    torch.manual_seed(seed)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=width, projection_dim=width, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=layers, pad_token_id=1,
        vocab_size=VOCAB_SIZE, max_position_embeddings=77)).eval()

    torch.manual_seed(seed)
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=width,
                             num_layers=prior_layers).eval()
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        prior.clip_std.copy_(1.0 + 0.1 * torch.rand(prior.clip_std.shape, generator=gen))
        prior.clip_mean.copy_(0.1 * torch.randn(prior.clip_mean.shape, generator=gen))

    torch.manual_seed(seed)
    text_proj = UnCLIPTextProjModel(clip_embeddings_dim=width, time_embed_dim=time_embed_dim,
                                    cross_attention_dim=cross_attention_dim).eval()
    with torch.no_grad():
        text_proj.learned_classifier_free_guidance_embeddings.copy_(
            torch.randn(text_proj.learned_classifier_free_guidance_embeddings.shape, generator=gen))

    torch.manual_seed(seed)
    decoder = UNet2DConditionModel(
        sample_size=32, in_channels=3, out_channels=6,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=cross_attention_dim,
        attention_head_dim=4, resnet_time_scale_shift="scale_shift", class_embed_type="identity").eval()

    sr_kwargs = dict(sample_size=64, layers_per_block=1,
                     down_block_types=("ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D"),
                     up_block_types=("ResnetUpsampleBlock2D", "ResnetUpsampleBlock2D"),
                     block_out_channels=(32, 64), in_channels=6, out_channels=3)
    torch.manual_seed(seed)
    super_res_first = UNet2DModel(**sr_kwargs).eval()
    torch.manual_seed(seed + 1)
    super_res_last = UNet2DModel(**sr_kwargs).eval()

    torch.manual_seed(seed)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=width, projection_dim=width, num_hidden_layers=layers, num_attention_heads=4,
        image_size=32, intermediate_size=37, patch_size=1)).eval()
    feature_extractor = CLIPImageProcessorPil(crop_size=32, size=32)

    return dict(
        prior=prior, decoder=decoder, text_encoder=text_encoder, tokenizer=build_fast_tokenizer(),
        text_proj=text_proj, super_res_first=super_res_first, super_res_last=super_res_last,
        prior_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample",
                                        num_train_timesteps=1000, clip_sample_range=5.0),
        decoder_scheduler=UnCLIPScheduler(variance_type="learned_range", prediction_type="epsilon",
                                          num_train_timesteps=1000),
        super_res_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="epsilon",
                                            num_train_timesteps=1000),
        image_encoder=image_encoder, feature_extractor=feature_extractor,
    )


def build_pipelines(components: dict):
    """(UnCLIPPipeline, UnCLIPImageVariationPipeline) sharing the same modules."""
    *_, UnCLIPPipeline, UnCLIPImageVariationPipeline, _ = _import_unclip()
    c = components
    t2i = UnCLIPPipeline(prior=c["prior"], decoder=c["decoder"], text_encoder=c["text_encoder"],
                         tokenizer=c["tokenizer"], text_proj=c["text_proj"], super_res_first=c["super_res_first"],
                         super_res_last=c["super_res_last"], prior_scheduler=c["prior_scheduler"],
                         decoder_scheduler=c["decoder_scheduler"], super_res_scheduler=c["super_res_scheduler"])
    iv = UnCLIPImageVariationPipeline(decoder=c["decoder"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                                      text_proj=c["text_proj"], feature_extractor=c["feature_extractor"],
                                      image_encoder=c["image_encoder"], super_res_first=c["super_res_first"],
                                      super_res_last=c["super_res_last"],
                                      decoder_scheduler=c["decoder_scheduler"],
                                      super_res_scheduler=c["super_res_scheduler"])
    for p in (t2i, iv):
        p.set_progress_bar_config(disable=True)
    return t2i, iv


__all__ = ["build_tiny_components", "build_pipelines", "BOS_ID", "EOS_ID", "PAD_ID"]
