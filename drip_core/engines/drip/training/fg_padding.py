"""Foreground padding (paper App. A.2, Algorithm 2): blur the foreground 64 times with a 13x13
Gaussian (OpenCV's sigma for sigma = 0), writing the blur back only where alpha == 0, so the
object's colours continue smoothly into the transparent area.

The data loader runs this on every crop, on one CPU thread per worker, so it must be cheap.
The fast path is a numba kernel (numba comes with the 'drip' extra) that keeps the separable
blur row by row in cache, folds the symmetric kernel (7 multiplies instead of 13), skips rows
with nothing to update and writes only hole pixels.
Without numba the torch reference below is used. Both pad the image border by replication.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba comes with the 'drip' extra
    njit = None


def gaussian_kernel1d(size: int = 13) -> np.ndarray:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for sigma=0
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-x ** 2 / (2 * sigma ** 2))
    return (k / k.sum()).astype(np.float32)


def pad_foreground_torch(fg: np.ndarray, alpha: np.ndarray, iterations: int = 64,
                         kernel: int = 13) -> np.ndarray:
    """Reference: two depthwise convolutions per pass (slow on one CPU thread: see
    bench/fg_padding_speed.py)."""
    k = torch.from_numpy(gaussian_kernel1d(kernel))
    kx = k.view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    ky = k.view(1, 1, -1, 1).repeat(3, 1, 1, 1)
    x = torch.from_numpy(np.ascontiguousarray(fg.transpose(2, 0, 1), dtype=np.float32))[None]
    hole = torch.from_numpy(alpha <= 0)[None, None].expand_as(x)
    r = kernel // 2
    for _ in range(iterations):
        b = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kx, groups=3)
        b = F.conv2d(F.pad(b, (0, 0, r, r), mode="replicate"), ky, groups=3)
        x = torch.where(hole, b, x)
    return x[0].numpy().transpose(1, 2, 0)


if njit is not None:
    @njit(cache=True, fastmath=True, boundscheck=False)
    def _row_blur(padded, out, half, c):
        # padded: one row with r replicated pixels each side; loops over slices so the
        # compiler sees non-negative unit-stride indices and vectorises them
        n = out.shape[0]
        r = half.shape[0] - 1
        centre = padded[r * c:r * c + n]
        for i in range(n):
            out[i] = half[0] * centre[i]
        for j in range(1, r + 1):
            left = padded[(r - j) * c:(r - j) * c + n]
            right = padded[(r + j) * c:(r + j) * c + n]
            kj = half[j]
            for i in range(n):
                out[i] += kj * (left[i] + right[i])

    @njit(cache=True, fastmath=True, boundscheck=False)
    def _column_blur_into_holes(tmp, x, hole, y, half, acc):
        h = tmp.shape[0]
        r = half.shape[0] - 1
        n = acc.shape[0]
        centre = tmp[y]
        for i in range(n):
            acc[i] = half[0] * centre[i]
        for j in range(1, r + 1):
            up = tmp[max(y - j, 0)]
            down = tmp[min(y + j, h - 1)]
            kj = half[j]
            for i in range(n):
                acc[i] += kj * (up[i] + down[i])
        row = x[y]
        mask = hole[y]
        for i in range(n):
            if mask[i]:
                row[i] = acc[i]

    @njit(cache=True, fastmath=True, boundscheck=False)
    def _pad_rows(x, hole, half, c, iterations):
        """x, hole: (H, W*C) float32 / bool, updated in place."""
        h, n = x.shape
        r = half.shape[0] - 1
        hole_row = np.zeros(h, np.bool_)
        for y in range(h):
            hole_row[y] = hole[y].any()
        need = np.zeros(h, np.bool_)  # rows the column pass of some hole row reads
        for y in range(h):
            if hole_row[y]:
                need[max(y - r, 0):min(y + r, h - 1) + 1] = True
        tmp = np.empty_like(x)
        padded = np.empty(n + 2 * r * c, np.float32)
        acc = np.empty(n, np.float32)
        for _ in range(iterations):
            for y in range(h):
                if need[y]:
                    row = x[y]
                    padded[r * c:r * c + n] = row
                    for p in range(r):
                        padded[p * c:(p + 1) * c] = row[:c]
                        padded[r * c + n + p * c:r * c + n + (p + 1) * c] = row[n - c:]
                    _row_blur(padded, tmp[y], half, c)
            for y in range(h):  # reads tmp only, so x can be written row by row
                if hole_row[y]:
                    _column_blur_into_holes(tmp, x, hole, y, half, acc)


def pad_foreground(fg: np.ndarray, alpha: np.ndarray, iterations: int = 64, kernel: int = 13) -> np.ndarray:
    """Paper Alg. 2 on an HxWxC float foreground and HxW alpha; returns a new float32 array."""
    if iterations <= 0 or not (alpha <= 0).any():
        return fg
    if njit is None:
        return pad_foreground_torch(fg, alpha, iterations, kernel)
    h, w, c = fg.shape
    x = np.array(fg, dtype=np.float32, order="C", copy=True).reshape(h, w * c)
    hole = np.ascontiguousarray(np.repeat((alpha <= 0)[:, :, None], c, axis=2).reshape(h, w * c))
    half = np.ascontiguousarray(gaussian_kernel1d(kernel)[kernel // 2:])
    _pad_rows(x, hole, half, c, int(iterations))
    return x.reshape(h, w, c)
