"""Composites: a matted object over another background, with exact ground truth (issue 24).

An alphamatting.com photo gives an object's alpha (its ground truth) but only one background.  To
see the object over other backgrounds, its foreground colours F are estimated from the photo and
the ground-truth alpha with drip_core's own multilevel estimator (the classical engine's, Germer et
al.), and the new image is I' = alpha F + (1 - alpha) B.  The alpha is then exact for I' by
construction; F is an estimate (a little of the old background may stay in the strands' colour,
as in every composite data set built this way).

Backgrounds: any photo (fitted to the object's size by scaling and a centred crop), smooth and
textured synthetic ones, and a camouflage background made of the object's own darkest or
lightest colours (dark-on-dark, light-on-light: the case where colour cannot tell object from
background and only the selection can).
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from ..samples import to_float


def object_foreground(image: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Foreground colours (H x W x 3 float32 in [0, 1]) of a photo (uint8) under its alpha (uint8)."""
    from ..engines.classical.foreground import estimate_foreground
    return estimate_foreground(to_float(image), gt.astype(np.float32) / 255.0)


def composite(foreground: np.ndarray, gt: np.ndarray, background: np.ndarray) -> np.ndarray:
    """I' = alpha F + (1 - alpha) B as uint8 (alpha: uint8 ground truth, F and B float in [0, 1])."""
    a = (gt.astype(np.float32) / 255.0)[..., None]
    mixed = a * foreground + (1.0 - a) * background
    return np.clip(np.round(mixed * 255.0), 0, 255).astype(np.uint8)


def fit_background(photo: np.ndarray, shape) -> np.ndarray:
    """A photo (grey, RGB or RGBA, any dtype) scaled to cover ``shape`` (h, w) and cropped at its
    centre: float32 H x W x 3 in [0, 1]."""
    img = np.asarray(photo)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = shape[:2]
    k = max(h / img.shape[0], w / img.shape[1])
    size = (max(w, int(np.ceil(img.shape[1] * k))), max(h, int(np.ceil(img.shape[0] * k))))
    big = np.asarray(Image.fromarray(img.astype(np.uint8)).resize(size, Image.BICUBIC))
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return to_float(np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w]))


def smooth_field(shape, rng, sigma: float) -> np.ndarray:
    """Smooth random field, zero mean, unit std."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape[:2]).astype(np.float32), sigma)
    return (f - f.mean()) / max(float(f.std()), 1e-9)


def smooth_background(shape, seed: int) -> np.ndarray:
    """A smooth two-colour gradient with slow blotches (sky, studio backdrop)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    c0, c1 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    ramp = np.linspace(0, 1, h)[:, None] * np.ones((1, w))
    t = np.clip(ramp + 0.15 * smooth_field(shape, rng, h / 6), 0, 1)
    return (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.float32)


def textured_background(shape, seed: int) -> np.ndarray:
    """Blobs of a few random colours at several scales plus grain (foliage, fabric, gravel)."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.0, 1.0, (5, 3)).astype(np.float32)
    return blend_colours(shape, rng, colours, grain=0.04)


def camouflage_background(shape, seed: int, foreground: np.ndarray, gt: np.ndarray, side: str) -> np.ndarray:
    """A textured background made of the object's own darkest (``side`` "dark") or lightest
    ("light") solid colours: dark-on-dark or light-on-light."""
    rng = np.random.default_rng(seed)
    solid = foreground[gt >= 250]
    if solid.shape[0] < 10:
        solid = foreground.reshape(-1, 3)
    lum = solid @ np.array([0.299, 0.587, 0.114], np.float32)
    order = np.argsort(lum)
    third = order[: max(1, len(order) // 3)] if side == "dark" else order[-max(1, len(order) // 3):]
    colours = solid[rng.choice(third, 6)].astype(np.float32)
    return blend_colours(shape, rng, colours, grain=0.02)


def blend_colours(shape, rng, colours: np.ndarray, grain: float) -> np.ndarray:
    """Blobs of ``colours`` (K x 3) at several scales, blended softly, plus grain."""
    h, w = shape[:2]
    scale = min(h, w)
    weights = np.stack([np.exp(2.5 * (smooth_field(shape, rng, scale * rng.uniform(0.01, 0.08))))
                        for _ in colours], axis=-1)
    weights /= weights.sum(axis=-1, keepdims=True)
    img = weights @ colours + grain * rng.standard_normal((h, w, 3)).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def solid_side(foreground: np.ndarray, gt: np.ndarray) -> str:
    """"dark" when more of the object's solid pixels are dark than light, else "light"."""
    solid = foreground[gt >= 250]
    if not solid.size:
        return "dark"
    lum = solid @ np.array([0.299, 0.587, 0.114], np.float32)
    return "dark" if np.mean(lum < 0.3) >= np.mean(lum > 0.7) else "light"
