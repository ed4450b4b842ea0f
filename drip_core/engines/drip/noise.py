"""Annealed multi-resolution noise (DRIP appendix A.1, Algorithm 1; after Marigold/GeoWizard).

Algorithm 1, level by level from i = 0:
  r = 2 + 2 * rand (a fresh ratio per level, shared by the batch);
  level size = (max(1, floor(H / r**i)), max(1, floor(W / r**i))), so level 0 is full size;
  noise += nearest-upsampled Gaussian of that size * (t / T) * discount**i;
  stop after 10 levels or once the level is 1x1 in *both* directions.
The sum is divided by its global standard deviation (one number for the whole batch, as the
algorithm's ``noise / noise.std``), so samples with small t come out slightly below unit
variance. "Annealed": at small t every extra level fades and the noise is plain Gaussian.
The paper does not give ``discount``: we use 0.9 (Marigold's and GeoWizard's value).

Line 13 of the algorithm as printed maps an output column x to x * (w_ori / w), which would
index past the small level; we read it as the usual nearest lookup x * (w / w_ori), which is
what ``F.interpolate(mode="nearest")`` does.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pyramid_sizes(h: int, w: int, ratios, levels: int = 10) -> list[tuple[int, int]]:
    """Sizes of the levels Algorithm 1 adds, given the ratio drawn at each level."""
    sizes = []
    for i, r in zip(range(levels), ratios):
        hh, ww = max(1, math.floor(h / r ** i)), max(1, math.floor(w / r ** i))
        sizes.append((hh, ww))
        if hh <= 1 and ww <= 1:
            break
    return sizes


def level_weights(timesteps: torch.Tensor, count: int, *, num_train_timesteps: int = 1000,
                  discount: float = 0.9) -> torch.Tensor:
    """(B, count): level i of sample b is weighted (t_b / T) * discount**i."""
    strength = timesteps.to(torch.float32).view(-1, 1) / num_train_timesteps
    return strength * discount ** torch.arange(count, dtype=torch.float32, device=timesteps.device)


def multi_res_noise(shape, timesteps: torch.Tensor, *, num_train_timesteps: int = 1000, discount: float = 0.9,
                    levels: int = 10, generator: torch.Generator | None = None, device=None,
                    dtype=torch.float32, ratios=None) -> torch.Tensor:
    """Algorithm 1 for latents of ``shape`` (B, C, H, W); ``ratios`` fixes r per level (tests)."""
    b, c, h, w = shape
    device = device if device is not None else timesteps.device
    noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    if ratios is None:
        ratios = (2.0 + 2.0 * torch.rand(levels, generator=generator, device=device)).tolist()
    sizes = pyramid_sizes(h, w, ratios, levels)
    weights = level_weights(timesteps.to(device), len(sizes), num_train_timesteps=num_train_timesteps,
                            discount=discount)
    for i, size in enumerate(sizes):
        low = torch.randn((b, c, *size), generator=generator, device=device, dtype=torch.float32)
        noise = noise + F.interpolate(low, size=(h, w), mode="nearest") * weights[:, i].view(b, 1, 1, 1)
    noise = noise / noise.std().clamp_min(1e-6)
    return noise.to(dtype)
