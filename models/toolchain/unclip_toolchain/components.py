"""torch.nn wrappers giving each unCLIP network the exact ONNX interface of pack v1 (see models/README.md).

Only the networks go to ONNX; schedulers, classifier-free guidance, bicubic upsampling and clamping stay in the
engine. Every wrapper takes the batch as its first axis (dynamic in the exported graph).
"""

from __future__ import annotations

import torch
from torch import nn


class TextEncoder(nn.Module):
    """CLIPTextModelWithProjection: input_ids → (text_embeds, last_hidden_state). No attention mask (as diffusers)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor):
        out = self.model(input_ids=input_ids)
        return out.text_embeds, out.last_hidden_state


class ImageEncoder(nn.Module):
    """CLIPVisionModelWithProjection: CLIP-normalised pixel_values → image_embeds (not L2-normalised)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor):
        return self.model(pixel_values=pixel_values).image_embeds


class Prior(nn.Module):
    """PriorTransformer: predicted x0 in the normalised embedding space (engine applies clip_std/clip_mean)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, hidden_states, timestep, proj_embedding, encoder_hidden_states, attention_mask):
        return self.model(
            hidden_states,
            timestep=timestep,
            proj_embedding=proj_embedding,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
        ).predicted_image_embedding


class TextProj(nn.Module):
    """UnCLIPTextProjModel without the internal CFG concat.

    diffusers builds the CFG batch inside the model as cat([learned_cfg_embedding × B, image_embeddings]). Here the
    engine sends the already doubled batch and `uncond_mask` (bool [batch]) picks the learned embedding per row, so
    rows with uncond_mask=True reproduce exactly diffusers' unconditional half.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings, uncond_mask, prompt_embeds, text_encoder_hidden_states):
        learned = self.model.learned_classifier_free_guidance_embeddings.unsqueeze(0).to(image_embeddings.dtype)
        image_embeddings = torch.where(uncond_mask.unsqueeze(-1), learned, image_embeddings)
        return self.model(
            image_embeddings=image_embeddings,
            prompt_embeds=prompt_embeds,
            text_encoder_hidden_states=text_encoder_hidden_states,
            do_classifier_free_guidance=False,
        )


class Decoder(nn.Module):
    """UNet2DConditionModel: out_sample [batch,6,D,D] = ε (0-2) and the learned-range variance value (3-5)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sample, timestep, encoder_hidden_states, class_labels, attention_mask):
        return self.model(
            sample=sample,
            timestep=timestep,
            encoder_hidden_states=encoder_hidden_states,
            class_labels=class_labels,
            attention_mask=attention_mask,
        ).sample


class SuperRes(nn.Module):
    """UNet2DModel (super_res_first / super_res_last): ε for cat([noisy x, upscaled decoder image])."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sample, timestep):
        return self.model(sample=sample, timestep=timestep).sample
