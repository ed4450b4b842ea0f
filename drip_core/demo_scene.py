"""A generated, licence-clean demo scene with exact ground truth.

A furry ball with hundreds of thin, semi-transparent hairs over a colourful, blurred
background: hard for matting (fine strands, colour spill) and fully known, because we
composite it ourselves (I = alpha * F + (1 - alpha) * B).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN

SUPERSAMPLE = 4


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    bg = np.stack([0.25 + 0.5 * xx, 0.35 + 0.3 * yy, 0.6 - 0.3 * xx], axis=-1)
    blobs = np.zeros((h, w, 3))
    for _ in range(40):  # out-of-focus highlights
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 45)
        colour = rng.uniform(0.2, 1.0, 3)
        blobs += (colour * (((yy * max(h, w) - cy) ** 2 + (xx * max(h, w) - cx) ** 2) < r * r)[..., None]
                  * 0.25)
    bg = bg + ndimage.gaussian_filter(blobs, sigma=(6, 6, 0))
    return np.clip(bg, 0, 1)


def _alpha(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    s = SUPERSAMPLE
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, radius = w * 0.5, h * 0.52, min(h, w) * 0.26
    draw.ellipse([(cx - radius) * s, (cy - radius) * s, (cx + radius) * s, (cy + radius) * s], fill=255)
    for _ in range(900):  # hairs: curved polylines leaving the body
        angle = rng.uniform(0, 2 * np.pi)
        start = radius * rng.uniform(0.8, 0.98)
        length = rng.uniform(0.15, 0.55) * radius
        bend = rng.normal(0, 0.6)
        ts = np.linspace(0, 1, 8)
        a = angle + bend * ts ** 2
        r = start + length * ts
        pts = [((cx + ri * np.cos(ai)) * s, (cy + ri * np.sin(ai)) * s) for ri, ai in zip(r, a)]
        draw.line(pts, fill=int(rng.uniform(120, 255)), width=max(1, int(rng.uniform(0.6, 1.6) * s)))
    return np.asarray(canvas.resize((w, h), Image.Resampling.BOX), dtype=np.float64) / 255.0


def _foreground(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    fur = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 2.0)
    fur = (fur - fur.min()) / (np.ptp(fur) + 1e-9)
    base = np.stack([0.95 - 0.2 * yy, 0.65 - 0.25 * xx + 0.1 * fur, 0.25 + 0.15 * fur], axis=-1)
    return np.clip(base, 0, 1)


def make_scene(width: int = 640, height: int = 427, seed: int = 7, band: int = 8):
    """Returns (image uint8 HxWx3, trimap uint8 HxW, alpha_gt float HxW, foreground_gt float HxWx3)."""
    rng = np.random.default_rng(seed)
    alpha = _alpha(height, width, rng)
    fg = _foreground(height, width, rng)
    bg = _background(height, width, rng)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    image_u8 = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    # A user-like trimap: a band around everything that is neither surely in nor surely out.
    sure_fg = ndimage.distance_transform_edt(alpha >= 0.999) > band
    sure_bg = ndimage.distance_transform_edt(alpha <= 0.001) > band
    trimap = np.full((height, width), UNKNOWN, np.uint8)
    trimap[sure_fg] = FOREGROUND
    trimap[sure_bg] = BACKGROUND
    return image_u8, trimap, alpha.astype(np.float32), fg.astype(np.float32)


def checkerboard(h: int, w: int, cell: int = 12) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // cell + xx // cell) % 2).astype(np.float32)
    return (0.75 + 0.2 * board)[..., None].repeat(3, axis=2)


def side_by_side(image, trimap, alpha, foreground) -> Image.Image:
    """image | trimap | alpha | cut-out over a checkerboard, with a thin gap."""
    h, w = trimap.shape
    a = np.asarray(alpha, np.float32)[..., None]
    cut = a * foreground + (1 - a) * checkerboard(h, w)
    panels = [np.asarray(image, np.float32) / 255, np.repeat(trimap[..., None] / 255.0, 3, 2),
              np.repeat(a, 3, 2), cut]
    gap = np.ones((h, 6, 3), np.float32)
    row = np.concatenate(sum(([p, gap] for p in panels), [])[:-1], axis=1)
    out = Image.fromarray(np.clip(np.rint(row * 255), 0, 255).astype(np.uint8))
    return out
