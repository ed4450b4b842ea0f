"""Cross-domain self-attention (DRIP section 3.2.2).

Every self-attention (``attn1``) of the U-Net is replaced by
    AttCD(Q_i, K_i, V_i) = Att(W_q h_i, W_k (h_F (+) h_alpha), W_v (h_F (+) h_alpha)),  i in {F, alpha}
with the pretrained projections and no new parameters: each domain's queries see the tokens of
both domains, which is how foreground and alpha stay consistent.

Batch layout contract: dim 0 is [foreground half ; alpha half], the same samples in the same
order in both halves, so sample b pairs with sample b + B.

The processor is installed explicitly on every ``attn1`` (GeoWizard only installs its version
through the xformers switch, so without xformers it silently runs plain self-attention).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class CrossDomainAttnProcessor:
    """A diffusers attention processor: self-attention over both domains' tokens (SDPA)."""

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args, **kwargs) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise ValueError("CrossDomainAttnProcessor is for self-attention (attn1) only")
        if attention_mask is not None:
            raise ValueError("CrossDomainAttnProcessor does not support attention masks")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch, tokens, _ = hidden_states.shape
        if batch % 2:
            raise ValueError(f"cross-domain attention needs a [foreground; alpha] batch of even size, "
                             f"got {batch}")
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        heads = attn.heads
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        head_dim = key.shape[-1] // heads
        query = query.view(batch, -1, heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        # Join both domains' tokens (dim 2 = tokens) and give every sample of both halves the
        # joined set: K, V go from (2B, H, N, d) to (2B, H, 2N, d).
        half = batch // 2
        key = torch.cat([key[:half], key[half:]], dim=2).repeat(2, 1, 1, 1)
        value = torch.cat([value[:half], value[half:]], dim=2).repeat(2, 1, 1, 1)

        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False,
                                             scale=attn.scale)
        out = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)
        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install_cross_domain_attention(unet) -> int:
    """Put a CrossDomainAttnProcessor on every ``attn1`` of ``unet``; returns how many.

    Other attention layers (``attn2``, the cross-attention to the empty-text tokens) keep
    plain SDPA attention.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = {}
    count = 0
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            processors[name] = CrossDomainAttnProcessor()
            count += 1
        else:
            processors[name] = AttnProcessor2_0()
    if count == 0:
        raise ValueError("the U-Net has no self-attention (attn1) layers")
    unet.set_attn_processor(processors)
    return count


def count_cross_domain(unet) -> int:
    return sum(isinstance(p, CrossDomainAttnProcessor) for p in unet.attn_processors.values())
