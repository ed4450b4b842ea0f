"""Latent transparency decoder D_trans (DRIP section 3.3), LayerDiffuse-style.

    (F, alpha) = D_trans(X, Tri, D(z_F), D(z_alpha), z_F, z_alpha)

A pixel-space U-Net. Its pixel input is the image, the trimap and the plain VAE decodes of the
predicted foreground and alpha (3 + 1 + 3 + 1 = 8 channels, all in [-1, 1]); the predicted
latents (4 + 4 = 8 channels) enter through zero-initialised 1x1 convolutions, added to the
hidden state at the latent grid's scale (1/8) and, average-pooled, at every deeper scale
("several learnable zero-conv layers").

It predicts a *residual* over the plain decode, and its output convolution is zero-initialised,
so a fresh decoder returns exactly the plain VAE decode (foreground = D(z_F), alpha = channel
mean of D(z_alpha), mapped to [0, 1]): stage 1 alone already gives a usable model, and stage 2
training starts from the baseline the paper improves on.

Default widths follow LayerDiffuse's UNet1024: (32, 32, 64, 128, 256, 512, 512), 2 layers per
level, GroupNorm(4), attention in the three deepest levels, no time embedding. Inputs must be
a multiple of 2 ** (levels - 1) (64 by default) in each side; the pipeline pads to 64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class _SelfAttention(nn.Module):
    def __init__(self, ch: int, groups: int, head_dim: int):
        super().__init__()
        self.heads = max(1, ch // head_dim)
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class _Level(nn.Module):
    def __init__(self, cin: int, cout: int, layers: int, groups: int, attention: bool, head_dim: int):
        super().__init__()
        blocks = []
        for i in range(layers):
            blocks.append(_ResBlock(cin if i == 0 else cout, cout, groups))
            if attention:
                blocks.append(_SelfAttention(cout, groups, head_dim))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(x)


class TransparencyDecoder(ModelMixin, ConfigMixin):
    config_name = "config.json"

    @register_to_config
    def __init__(self, pixel_in_channels: int = 8, latent_channels: int = 8, out_channels: int = 4,
                 block_out_channels: tuple = (32, 32, 64, 128, 256, 512, 512), layers_per_block: int = 2,
                 norm_num_groups: int = 4, attention_levels: tuple = (4, 5, 6), attention_head_dim: int = 64,
                 latent_level: int = 3):
        super().__init__()
        chs = list(block_out_channels)
        if not 0 <= latent_level < len(chs):
            raise ValueError("latent_level must index one of block_out_channels")
        self.conv_in = nn.Conv2d(pixel_in_channels, chs[0], 3, padding=1)
        self.downsamplers = nn.ModuleList(nn.Conv2d(chs[i - 1], chs[i], 3, stride=2, padding=1)
                                          for i in range(1, len(chs)))
        self.down = nn.ModuleList(_Level(c, c, layers_per_block, norm_num_groups, i in attention_levels,
                                         attention_head_dim) for i, c in enumerate(chs))
        # zero convs: the latents start with no influence and are learnt in
        self.latent_convs = nn.ModuleDict()
        for i in range(latent_level, len(chs)):
            conv = nn.Conv2d(latent_channels, chs[i], 1)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.latent_convs[str(i)] = conv
        deepest = chs[-1]
        self.mid = nn.Sequential(_ResBlock(deepest, deepest, norm_num_groups),
                                 _SelfAttention(deepest, norm_num_groups, attention_head_dim),
                                 _ResBlock(deepest, deepest, norm_num_groups))
        self.up = nn.ModuleList(_Level(2 * c, c, layers_per_block, norm_num_groups, i in attention_levels,
                                       attention_head_dim) for i, c in enumerate(chs))
        self.upsamplers = nn.ModuleList(nn.Conv2d(chs[i], chs[i - 1], 3, padding=1)
                                        for i in range(1, len(chs)))
        self.norm_out = nn.GroupNorm(norm_num_groups, chs[0])
        self.conv_out = nn.Conv2d(chs[0], out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # residual starts at zero: fresh decoder == plain VAE decode
        nn.init.zeros_(self.conv_out.bias)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    @staticmethod
    def base_output(fg_decoded: torch.Tensor, alpha_decoded: torch.Tensor) -> torch.Tensor:
        """The plain-VAE answer in [0, 1] units: RGB foreground + channel-mean alpha (B, 4, H, W)."""
        alpha = alpha_decoded.mean(dim=1, keepdim=True) if alpha_decoded.shape[1] != 1 else alpha_decoded
        return torch.cat([fg_decoded, alpha], dim=1) * 0.5 + 0.5

    def forward(self, image, trimap, fg_decoded, alpha_decoded, fg_latent, alpha_latent) -> torch.Tensor:
        """All pixel inputs in [-1, 1]. Returns (B, 4, H, W): foreground RGB then alpha, in [0, 1]
        units but not clamped (training keeps the gradient; callers clamp)."""
        base = self.base_output(fg_decoded, alpha_decoded)
        alpha1 = base[:, 3:] * 2 - 1
        x = torch.cat([image, trimap[:, :1], fg_decoded, alpha1], dim=1).to(self.dtype)
        latent = torch.cat([fg_latent, alpha_latent], dim=1).to(self.dtype)
        h = self.conv_in(x)
        skips = []
        for i, level in enumerate(self.down):
            if i > 0:
                h = self.downsamplers[i - 1](h)
            conv = self.latent_convs[str(i)] if str(i) in self.latent_convs else None
            if conv is not None:
                lat = latent
                if lat.shape[-2:] != h.shape[-2:]:
                    lat = F.adaptive_avg_pool2d(lat, h.shape[-2:]) if lat.shape[-1] > h.shape[-1] else \
                        F.interpolate(lat, size=h.shape[-2:], mode="nearest")
                h = h + conv(lat)
            h = level(h)
            skips.append(h)
        h = self.mid(h)
        for i in reversed(range(len(self.up))):
            h = self.up[i](torch.cat([h, skips[i]], dim=1))
            if i > 0:
                h = self.upsamplers[i - 1](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        residual = self.conv_out(F.silu(self.norm_out(h)))
        return base + residual.to(base.dtype)
