"""Losses.

Stage 1 (diffusion): L = MSE(U-Net fg half, target_F) + MSE(U-Net alpha half, target_alpha), the
target being the noise (epsilon) or the velocity (v), whichever the scheduler config says.

Stage 2 (transparency decoder), the paper's "combined matting loss" on both alpha and
foreground: L = L_sep-l1 + L_l2 + L_lap + L_grad, weights 1:1:1:1 (not given in the paper).
Definitions after ViTMatte's criterion:
  separate L1   L1 on the unknown region + L1 on the known region, each normalised by its own
                pixel count (so a thin unknown band is not drowned by the known area);
  L2            mean squared error over the image;
  Laplacian     sum over the 5 band-pass levels of 2**i * L1(level i), divided by 5, no
                low-pass residual (the definition of ViTMatte, GCA and MG-Matting);
  gradient      L1 between Sobel gradients on the unknown region + 0.01 * |grad pred|.
For the foreground the same terms are weighted by the ground-truth alpha > 0 (the colour of
fully transparent pixels is irrelevant).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def diffusion_loss(pred: torch.Tensor, target_fg: torch.Tensor, target_alpha: torch.Tensor) -> dict:
    b = target_fg.shape[0]
    l_fg = F.mse_loss(pred[:b].float(), target_fg.float())
    l_alpha = F.mse_loss(pred[b:].float(), target_alpha.float())
    return {"loss": l_fg + l_alpha, "loss_fg": l_fg, "loss_alpha": l_alpha}


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.expand_as(x)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def separate_l1(pred, gt, unknown, weight=None):
    err = (pred - gt).abs()
    if weight is not None:
        err = err * weight
    return _masked_mean(err, unknown) + _masked_mean(err, 1 - unknown)


def _gauss_kernel(channels: int, device, dtype) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    k = torch.outer(k, k) / 256.0
    return k.expand(channels, 1, 5, 5).contiguous()


def _blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=x.shape[1])


def _expand(x: torch.Tensor, size, k: torch.Tensor) -> torch.Tensor:
    """Burt-Adelson expand: zeros between the samples, then the 5x5 Gaussian times 4 (the
    zeros carry a quarter of the weight), cropped to ``size`` for odd sizes."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4 * k)[:, :, :size[0], :size[1]]


def laplacian_bands(x: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """The band-pass levels of a Laplacian pyramid, finest first; the low-pass residual is
    not returned (the matting Laplacian loss ignores it: L1 already covers coarse error)."""
    k = _gauss_kernel(x.shape[1], x.device, x.dtype)
    bands, cur = [], x
    for _ in range(levels):
        if min(cur.shape[-2:]) < 3:  # reflect padding by 2 needs 3 pixels
            break
        down = _blur(cur, k)[:, :, ::2, ::2]
        bands.append(cur - _expand(down, cur.shape[-2:], k))
        cur = down
    return bands


def laplacian_loss(pred, gt, levels: int = 5, weight=None):
    """sum_i 2**i * mean|band_i(pred) - band_i(gt)| / levels (ViTMatte / GCA / MG-Matting)."""
    if weight is not None:
        pred, gt = pred * weight, gt * weight
    pairs = zip(laplacian_bands(pred, levels), laplacian_bands(gt, levels))
    return sum((2 ** i) * (a - b).abs().mean() for i, (a, b) in enumerate(pairs)) / levels


def _sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype)
    c = x.shape[1]
    kx = kx.expand(c, 1, 3, 3).contiguous()
    ky = kx.transpose(-1, -2).contiguous()
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, kx, groups=c), F.conv2d(xp, ky, groups=c)


def gradient_loss(pred, gt, unknown, weight=None):
    if weight is not None:
        pred, gt = pred * weight, gt * weight
    pgx, pgy = _sobel(pred)
    ggx, ggy = _sobel(gt)
    diff = _masked_mean((pgx - ggx).abs() + (pgy - ggy).abs(), unknown)
    return diff + 0.01 * _masked_mean(pgx.abs() + pgy.abs(), unknown)


def matting_loss(pred, gt, unknown, weight=None) -> torch.Tensor:
    """L_sep-l1 + L_l2 + L_lap + L_grad for one quantity (alpha or foreground), values in [0, 1]."""
    l2 = ((pred - gt) ** 2 if weight is None else ((pred - gt) * weight) ** 2).mean()
    return separate_l1(pred, gt, unknown, weight) + l2 + laplacian_loss(pred, gt, weight=weight) \
        + gradient_loss(pred, gt, unknown, weight)


def decoder_loss(pred: torch.Tensor, fg_gt: torch.Tensor, alpha_gt: torch.Tensor,
                 unknown: torch.Tensor) -> dict:
    """pred (B,4,H,W) in [0,1]; fg_gt (B,3,H,W), alpha_gt (B,1,H,W) in [0,1]; unknown (B,1,H,W) {0,1}."""
    pred = pred.float()
    l_alpha = matting_loss(pred[:, 3:], alpha_gt, unknown)
    l_fg = matting_loss(pred[:, :3], fg_gt, unknown, weight=(alpha_gt > 0).float())
    return {"loss": l_alpha + l_fg, "loss_alpha": l_alpha, "loss_fg": l_fg}
