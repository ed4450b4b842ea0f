"""Synthetic scenes with exact ground truth for the smart band's failure modes (issue 24).

Each scene is I = alpha F + (1 - alpha) B with F, B and alpha drawn here, so alpha is exact:

    dark_parts   a light figure with a dark solid part (a helmet, a sleeve) on a dark background
    white_fur    a white furry object on a white background
    whiskers     a textured face with thin bright strands running well beyond its outline
    border       an object cut by the image border (its lasso touches the border)
    ring_holes   a disk with see-through holes of several sizes

``seed`` changes colours, textures and placements; the shapes' kinds stay.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .composites import blend_colours, textured_background

SIZE = 360


@dataclass
class Scene:
    name: str
    image: np.ndarray   # uint8 H x W x 3
    gt: np.ndarray      # uint8 H x W alpha


def _coverage(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a shape from its signed distance (negative inside), 1-px ramp."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0).astype(np.float32)


def _grid(size=SIZE):
    return np.mgrid[:size, :size].astype(np.float32)


def _disk(cy, cx, r, size=SIZE) -> np.ndarray:
    yy, xx = _grid(size)
    return _coverage(np.hypot(yy - cy, xx - cx) - r)


def _ellipse(cy, cx, ry, rx, size=SIZE) -> np.ndarray:
    yy, xx = _grid(size)
    k = np.hypot((yy - cy) / ry, (xx - cx) / rx)
    return _coverage((k - 1.0) * min(ry, rx))


def _palette(rng, low: float, high: float, n: int = 5) -> np.ndarray:
    return rng.uniform(low, high, (n, 3)).astype(np.float32)


def _finish(name: str, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> Scene:
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    image = np.clip(np.round((a * fg + (1 - a) * bg) * 255.0), 0, 255).astype(np.uint8)
    gt = np.clip(np.round(a[..., 0] * 255.0), 0, 255).astype(np.uint8)
    return Scene(name, image, gt)


def dark_parts(seed: int) -> Scene:
    """A light body under a dark helmet and with a dark sleeve, both reaching the outline, over a
    dark background of nearly the same colours."""
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE)
    dark = _palette(rng, 0.02, 0.16)
    bg = blend_colours(shape, rng, dark, grain=0.015)
    body = _ellipse(240, 180, 110, 95)
    helmet = _disk(110, 180 + rng.uniform(-15, 15), 62)
    sleeve = _ellipse(260, 95, 70, 26)
    alpha = np.maximum.reduce([body, helmet, sleeve])
    fg = blend_colours(shape, rng, _palette(rng, 0.7, 0.95), grain=0.02)
    dark_fg = blend_colours(shape, rng, dark + rng.uniform(-0.02, 0.02, dark.shape).astype(np.float32), 0.015)
    w = np.maximum(helmet, sleeve)[..., None]
    return _finish("dark_parts", alpha, w * dark_fg + (1 - w) * fg, bg)


def _fur(r: np.ndarray, theta: np.ndarray, radius: float, length: float, rng) -> np.ndarray:
    """Alpha of a furry rim: strands (thin angular lobes) whose density thins out with the distance."""
    strands = np.zeros_like(r)
    for freq in (60, 97, 143):
        strands += np.sin(theta * freq + rng.uniform(0, 2 * np.pi) + 0.05 * r) ** 8
    strands = np.clip(strands, 0, 1)
    fade = np.clip(1.0 - (r - radius) / length, 0.0, 1.0)
    return np.where(r <= radius, 1.0, strands * fade).astype(np.float32)


def white_fur(seed: int) -> Scene:
    """A white furry ball on a white background."""
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE)
    yy, xx = _grid()
    cy, cx = 180 + rng.uniform(-10, 10), 180 + rng.uniform(-10, 10)
    r, theta = np.hypot(yy - cy, xx - cx), np.arctan2(yy - cy, xx - cx)
    alpha = _fur(r, theta, 105.0, 35.0, rng)
    fg = blend_colours(shape, rng, _palette(rng, 0.88, 1.0), grain=0.02)
    bg = blend_colours(shape, rng, _palette(rng, 0.8, 0.97), grain=0.01)
    return _finish("white_fur", alpha, fg, bg)


def whiskers(seed: int) -> Scene:
    """A textured face with bright whiskers crossing its outline and running 80 px beyond it."""
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE)
    yy, xx = _grid()
    cy, cx, radius = 180.0, 180.0, 95.0
    face = _disk(cy, cx, radius)
    strands = np.zeros(shape, np.float32)
    for side in (-1, 1):
        for k in range(4):
            angle = np.deg2rad(rng.uniform(-25, 25) + 12 * k - 18) + (0 if side > 0 else np.pi)
            dy, dx = np.sin(angle), np.cos(angle)
            t = (yy - cy) * dy + (xx - cx) * dx                 # along the whisker
            off = np.abs(-(yy - cy) * dx + (xx - cx) * dy)      # across it
            along = (t > 0.6 * radius) & (t < radius + 80)
            strands = np.maximum(strands, np.where(along, 0.9 * _coverage(off - 0.7), 0.0))
    alpha = np.maximum(face, strands)
    fg_face = blend_colours(shape, rng, _palette(rng, 0.25, 0.65), grain=0.03)
    white = np.full(shape + (3,), 0.95, np.float32)
    w = (strands > face)[..., None]
    fg = np.where(w, white, fg_face)
    bg = textured_background(shape, seed + 1000)
    return _finish("whiskers", alpha, fg, bg)


def border(seed: int) -> Scene:
    """An object cut by the left and bottom borders."""
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE)
    alpha = np.maximum(_ellipse(300, 40, 170, 150), _disk(150 + rng.uniform(-10, 10), 120, 55))
    fg = blend_colours(shape, rng, _palette(rng, 0.1, 0.9), grain=0.03)
    bg = textured_background(shape, seed + 2000)
    return _finish("border", alpha, fg, bg)


def ring_holes(seed: int) -> Scene:
    """A disk with six see-through holes of radius 6 to 30 px."""
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE)
    alpha = _disk(180, 180, 150)
    for k, radius in enumerate((6, 10, 15, 20, 25, 30)):
        angle = 2 * np.pi * k / 6 + rng.uniform(-0.2, 0.2)
        dist = 95 if radius > 12 else 120
        hole = _disk(180 + dist * np.sin(angle), 180 + dist * np.cos(angle), radius)
        alpha = np.minimum(alpha, 1.0 - hole)
    fg = blend_colours(shape, rng, _palette(rng, 0.1, 0.9), grain=0.03)
    bg = textured_background(shape, seed + 3000)
    return _finish("ring_holes", alpha, fg, bg)


SCENES = {"dark_parts": dark_parts, "white_fur": white_fur, "whiskers": whiskers, "border": border,
          "ring_holes": ring_holes}
