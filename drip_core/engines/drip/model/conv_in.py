"""Expanding the U-Net's ``conv_in`` from one 4-channel latent to several.

DRIP feeds [z_image, z_trimap, z_fg_t, z_alpha_t] (16 channels; 12 in the GeoWizard-style
variant). The pretrained kernel is repeated once per latent and divided by the number of
copies, so if every latent input were the same the layer would compute exactly what the
pretrained one did: activations keep their scale and the prior is not disturbed at step 0.
"""
from __future__ import annotations

import torch
from torch import nn


def expand_conv_in(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A new Conv2d taking ``in_channels`` (a multiple of conv's input) initialised from ``conv``."""
    old = conv.in_channels
    if in_channels % old:
        raise ValueError(f"in_channels={in_channels} is not a multiple of the original {old}")
    copies = in_channels // old
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(conv.weight.repeat(1, copies, 1, 1) / copies)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)  # the bias is added once, so it is kept as is
    return new.to(device=conv.weight.device, dtype=conv.weight.dtype)
