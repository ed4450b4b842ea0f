"""Classical engine: closed-form alpha (Levin et al. 2008) + multilevel foreground (Germer et al. 2020).

Only the bounding box of the unknown region plus a margin is solved; the rest of the
image is already known from the trimap.
"""
from __future__ import annotations

import numpy as np

from .base import Engine, EngineError, Matte

MARGIN = 16  # known pixels around the unknown region that constrain the solve


def unknown_bbox(trimap: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(trimap == 128)
    h, w = trimap.shape
    y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, h)
    x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, w)
    return slice(y0, y1), slice(x0, x1)


class ClassicalEngine(Engine):
    name = "classical"

    def _matte(self, image, trimap, progress, check_cancel) -> Matte:
        from pymatting import estimate_alpha_cf, estimate_foreground_ml

        rows, cols = unknown_bbox(trimap, MARGIN)
        img = image[rows, cols].astype(np.float64) / 255.0
        tri = trimap[rows, cols].astype(np.float64) / 255.0
        progress(0.05, "alpha", "closed-form alpha")
        if min(tri.shape) < 2:
            raise EngineError("bad_image", "the unknown region must be at least 2 pixels wide")
        alpha_roi = estimate_alpha_cf(img, tri)
        check_cancel()
        progress(0.7, "foreground", "foreground estimation")
        fg_roi = estimate_foreground_ml(img, alpha_roi)
        check_cancel()

        alpha = (trimap == 255).astype(np.float32)
        alpha[rows, cols] = alpha_roi
        foreground = image.astype(np.float32) / 255.0
        foreground[rows, cols] = fg_roi
        return Matte(foreground, alpha, self.name)
