"""Edge controls applied to a finished matte (drip_protocol.EdgeSettings), and previews.

The order is a photographer's: feather (soften), contrast (harden what is soft), shift (move
the edge), then the colours. Each works on the whole matte, so a control never depends on where
a rerun happened to re-solve.
"""
from __future__ import annotations

import numpy as np

from drip_protocol import EdgeSettings

from .samples import from_float, to_float

MAX_CONTRAST_GAIN = 10.0   # contrast 100 %: a 10 % wide ramp around alpha 0.5 spans 0..1
CHECKER_CELL = 8
CHECKER_GREYS = (0.6, 0.8)


def apply_edges(foreground: np.ndarray, alpha: np.ndarray, image: np.ndarray,
                edge: EdgeSettings) -> tuple[np.ndarray, np.ndarray]:
    """The matte (``foreground`` H x W x 3, ``alpha`` H x W, any sample type) with ``edge``
    applied, at the same sample types; ``image`` is the photo (for the colour clean-up)."""
    if edge.is_identity:
        return foreground, alpha
    a = to_float(alpha)
    if edge.feather > 0:
        from scipy import ndimage  # only a job that feathers pays for the import
        a = ndimage.gaussian_filter(a, sigma=edge.feather / 2.0, mode="nearest")
    if edge.contrast > 0:
        gain = 1.0 + (MAX_CONTRAST_GAIN - 1.0) * edge.contrast / 100.0
        a = (a - 0.5) * np.float32(gain) + 0.5
    if edge.shift:
        a = shift_edge(np.clip(a, 0.0, 1.0), edge.shift)
    out_fg = foreground
    if edge.colour_cleanup < 100:
        k = np.float32(edge.colour_cleanup / 100.0)
        mixed = to_float(foreground) * k + to_float(image) * (1 - k)
        out_fg = from_float(mixed, foreground.dtype)
    return out_fg, from_float(a, alpha.dtype)


def shift_edge(alpha: np.ndarray, pixels: float) -> np.ndarray:
    """Grow (pixels > 0) or shrink the alpha by ``pixels``: one-pixel steps that alternate a
    cross and a square (an octagon, close to a disc), the fraction blended from the next step."""
    grow = pixels > 0
    steps, fraction = divmod(abs(pixels), 1.0)
    out = alpha
    for i in range(int(steps)):
        out = _step(out, grow, i)
    if fraction > 1e-6:
        out = out * np.float32(1 - fraction) + _step(out, grow, int(steps)) * np.float32(fraction)
    return out


def _step(alpha: np.ndarray, grow: bool, i: int) -> np.ndarray:
    """One pixel of growth or shrinkage: a cross on even steps, a square on odd ones, each from
    one-dimensional filters (far faster than a two-dimensional footprint)."""
    from scipy import ndimage  # only a job that shifts its edge pays for the import
    along = ndimage.maximum_filter1d if grow else ndimage.minimum_filter1d
    down = along(alpha, 3, axis=0, mode="nearest")
    if i % 2:
        return along(down, 3, axis=1, mode="nearest")
    across = along(alpha, 3, axis=1, mode="nearest")
    return np.maximum(down, across) if grow else np.minimum(down, across)


def composite(foreground: np.ndarray, alpha: np.ndarray, image: np.ndarray, background: str) -> np.ndarray:
    """The cut-out over ``background`` (drip_protocol.PREVIEW_BACKGROUNDS) as 8-bit RGB;
    "original" shows the photo with the background half dimmed, so what is cut stays visible."""
    fg, a = to_float(foreground), to_float(alpha)[..., None]
    h, w = a.shape[:2]
    if background == "checkerboard":
        cells = (np.arange(h)[:, None] // CHECKER_CELL + np.arange(w)[None, :] // CHECKER_CELL) % 2
        behind = np.where(cells, *CHECKER_GREYS).astype(np.float32)[..., None]
    elif background == "original":
        behind = to_float(image) * np.float32(0.35)
    else:
        behind = np.float32(0.0 if background == "black" else 1.0)
    return from_float(fg * a + behind * (1 - a), np.uint8)


def grown_window(window: tuple[slice, slice], reach: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """``window`` (rows, cols) grown by ``reach`` pixels, inside ``shape``: what an edit's
    edge controls can change."""
    rows, cols = window
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return window
    return (slice(max(0, rows.start - reach), min(shape[0], rows.stop + reach)),
            slice(max(0, cols.start - reach), min(shape[1], cols.stop + reach)))
