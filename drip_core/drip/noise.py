"""Annealed multi-resolution noise (DRIP appendix A.1, Algorithm 1; after Marigold/GeoWizard).

Level i (i = 1..levels-1) adds Gaussian noise drawn at size (H, W) / r**i, r = 2 + 2 * rand,
nearest-upsampled, weighted by (t / T) * discount**i; the loop stops once a level reaches 1x1.
The sum is divided by its standard deviation. "Annealed": at small t the low-frequency part
fades away and the noise is plain Gaussian again. The paper does not give ``discount``: we use
0.9 (Marigold and GeoWizard's value).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_res_noise(shape, timesteps: torch.Tensor, *, num_train_timesteps: int = 1000, discount: float = 0.9,
                    levels: int = 10, generator: torch.Generator | None = None, device=None,
                    dtype=torch.float32) -> torch.Tensor:
    b, c, h, w = shape
    device = device if device is not None else timesteps.device
    noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    strength = (timesteps.to(device=device, dtype=torch.float32) / num_train_timesteps).view(b, 1, 1, 1)
    for i in range(1, levels):
        r = 2.0 + 2.0 * torch.rand((), generator=generator, device=device).item()
        hh, ww = max(1, int(h / r ** i)), max(1, int(w / r ** i))
        low = torch.randn((b, c, hh, ww), generator=generator, device=device, dtype=torch.float32)
        noise = noise + F.interpolate(low, size=(h, w), mode="nearest") * strength * (discount ** i)
        if hh == 1 or ww == 1:
            break
    noise = noise / noise.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return noise.to(dtype)
