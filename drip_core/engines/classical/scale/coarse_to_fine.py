"""Large crops whose band holds no pixel-level detail: solve at a coarser scale, then carry alpha
and foreground back to full resolution through the image's own colours.

Why: the v2 engine's cost follows the number of unknown pixels (K-to-U flow, trimming, solve,
foreground); a 27-megapixel photo's 30-px band has ~0.9 M of them. Many large photos are softer
than their pixel grid (upscales, lens blur, demosaicing, noise reduction): their band looks the
same after a 2x, 3x or 4x box reduction and back. ``choose_factor`` measures that on the band
itself and picks the coarsest factor whose round trip changes the band's colours by at most
DETAIL (RMS) beyond what the photo's own noise explains (sensor noise is not detail: it is
lost in the round trip too, and averaging it away makes the matte cleaner: bench/large_photo.py
--grain). A photo with real pixel-level detail keeps factor 1, the full-resolution solve: the
800-px alphamatting photos change by 3.6-26 / 255 at factor 2 against an allowance of 1.6-2.0,
and solving them at half size would cost a quarter more SAD.

Back to full resolution (``carry_up``):
- alpha: closed-form matting rests on alpha being an affine function of the colour in every
  small window (Levin et al. 2008: alpha = a . I + b). The coarse alpha and coarse image give
  (a, b) per coarse window (a regularised least-squares fit, as the guided filter does),
  averaged over the windows covering each pixel, interpolated to full resolution and applied
  to the full-resolution colours, so edges land where the full-resolution image has them.
- foreground: the coarse foreground F^ and background B^, interpolated, corrected per pixel by
  the least change that makes alpha F + (1 - alpha) B reproduce the pixel's colour.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.ndimage import binary_dilation

from ....blocks import reduce_image
from ....trimaps.values import FOREGROUND, UNKNOWN

FACTORS = (4, 3, 2)       # tried coarsest first
DETAIL = 1.5 / 255        # RMS change of the band's colours a reduction may cause
COARSE_ABOVE = 4_000_000  # crops (pixels) below this are solved at full resolution anyway
WINDOW = 1                # radius of the affine fit's windows, at the coarse scale
FIT_EPS = 1e-5            # regulariser of the fit (the guided filter's eps; 1e-7..1e-4 alike)
SAMPLE = 200_000          # band pixels the detail test looks at (and pixels the noise estimate looks at)
# RMS round-trip change of white noise of standard deviation 1 at each factor (measured on
# 512 x 512 x 3 samples; tests/test_coarse_to_fine.py checks them)
NOISE_GAIN = {2: 0.90, 3: 0.96, 4: 0.98}
# Immerkaer's noise mask (a difference of two Laplacians: zero on any locally planar image)
_NOISE_MASK = ((1, -2, 1), (-2, 4, -2), (1, -2, 1))
SLAB = 256                # coarse rows fitted at a time (bounds the fit's temporaries)
CHUNK = 1 << 18           # full-resolution pixels interpolated at a time


def carried_pixels(coarse_trimap: np.ndarray) -> np.ndarray:
    """The coarse pixels whose foreground and background ``carry_up`` interpolates: the unknown
    ones and one pixel around them (bilinear weights reach one block centre further)."""
    return binary_dilation(coarse_trimap == UNKNOWN, np.ones((3, 3), bool))


def _bilinear(field: np.ndarray, ys: np.ndarray, xs: np.ndarray, f: int) -> np.ndarray:
    """``field`` (coarse H x W x C) at full-resolution pixels (ys, xs): bilinear between block
    centres, clamped at the border; (n, C) float32."""
    hc, wc = field.shape[:2]
    flat = field.reshape(hc * wc, -1)
    cy = np.clip((ys + np.float32(0.5)) / np.float32(f) - np.float32(0.5), 0, hc - 1).astype(np.float32)
    cx = np.clip((xs + np.float32(0.5)) / np.float32(f) - np.float32(0.5), 0, wc - 1).astype(np.float32)
    y0 = np.minimum(cy.astype(np.intp), max(hc - 2, 0))
    x0 = np.minimum(cx.astype(np.intp), max(wc - 2, 0))
    wy, wx = (cy - y0)[:, None], (cx - x0)[:, None]
    dy, dx = (wc if hc > 1 else 0), (1 if wc > 1 else 0)
    i00 = y0 * wc + x0
    top = flat.take(i00, axis=0)
    top += wx * (flat.take(i00 + dx, axis=0) - top)
    bottom = flat.take(i00 + dy, axis=0)
    bottom += wx * (flat.take(i00 + dy + dx, axis=0) - bottom)
    top += wy * (bottom - top)
    return top


def round_trip_error(image: np.ndarray, trimap: np.ndarray, coarse: np.ndarray, f: int, rng=None) -> float:
    """RMS colour change of (a sample of) the unknown pixels after the f x reduction ``coarse``
    and a bilinear enlargement back: how much detail the band has below the scale f."""
    ys, xs = np.nonzero(trimap == UNKNOWN)
    if len(ys) > SAMPLE:
        pick = (rng or np.random.default_rng(0)).choice(len(ys), SAMPLE, replace=False)
        ys, xs = ys[pick], xs[pick]
    back = _bilinear(coarse, ys, xs, f)
    return float(np.sqrt(np.mean((back - image[ys, xs]) ** 2)))


def noise_level(image: np.ndarray, rng=None) -> float:
    """The image's noise standard deviation (Immerkaer 1996, with the median absolute response
    instead of the mean so that edges and texture do not count), from SAMPLE random pixels."""
    h, w = image.shape[:2]
    if h < 3 or w < 3:
        return 0.0
    rng = rng or np.random.default_rng(0)
    ys, xs = rng.integers(1, h - 1, SAMPLE), rng.integers(1, w - 1, SAMPLE)
    # read in memory order (the median does not depend on the samples' order): random reads of a
    # 27-MP layer cost most of this function's time
    at = np.sort(ys * w + xs)
    pixels = image.reshape(h * w, image.shape[2])
    response = np.zeros((SAMPLE, image.shape[2]), np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            response += _NOISE_MASK[dy + 1][dx + 1] * pixels.take(at + (dy * w + dx), axis=0)
    # the mask's response to noise sigma has std 6 sigma; a Gaussian's median |x| is 0.6745 std
    return float(np.median(np.abs(response)) / (6 * 0.6745))


def choose_factor(image: np.ndarray, trimap: np.ndarray) -> tuple[int, np.ndarray | None]:
    """(f, the image reduced by f): the coarsest of FACTORS whose round trip keeps the band
    within DETAIL beyond its noise; (1, None) when none does or the crop is small."""
    h, w = trimap.shape
    if h * w < COARSE_ABOVE:
        return 1, None
    noise = noise_level(image)
    for f in FACTORS:
        if min(h, w) < 64 * f:
            continue
        coarse = reduce_image(image, f)
        if round_trip_error(image, trimap, coarse, f) <= np.hypot(DETAIL, NOISE_GAIN[f] * noise):
            return f, coarse
    return 1, None


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return ndimage.uniform_filter(x, size=(2 * r + 1, 2 * r + 1) + (1,) * (x.ndim - 2), mode="nearest")


def _fit_slab(img: np.ndarray, al: np.ndarray, r: int, eps: float) -> np.ndarray:
    """[a | b] (H x W x 4) of alpha = a . I + b fitted in every (2r+1)^2 window, then averaged
    over the windows covering each pixel."""
    mean_i = _box(img, r)
    mean_a = _box(al, r)
    cov_ia = _box(img * al[..., None], r) - mean_i * mean_a[..., None]
    c = {}
    for i in range(3):
        for j in range(i, 3):
            c[i, j] = (_box(img[..., i] * img[..., j], r) - mean_i[..., i] * mean_i[..., j]
                       + (eps if i == j else 0))
    # the symmetric 3 x 3 inverse by cofactors: vectorised, no per-pixel LAPACK call
    i00 = c[1, 1] * c[2, 2] - c[1, 2] ** 2
    i01 = c[0, 2] * c[1, 2] - c[0, 1] * c[2, 2]
    i02 = c[0, 1] * c[1, 2] - c[0, 2] * c[1, 1]
    i11 = c[0, 0] * c[2, 2] - c[0, 2] ** 2
    i12 = c[0, 1] * c[0, 2] - c[0, 0] * c[1, 2]
    i22 = c[0, 0] * c[1, 1] - c[0, 1] ** 2
    det = c[0, 0] * i00 + c[0, 1] * i01 + c[0, 2] * i02
    v = cov_ia / det[..., None]
    coef = np.empty(img.shape[:2] + (4,), np.float64)
    coef[..., 0] = i00 * v[..., 0] + i01 * v[..., 1] + i02 * v[..., 2]
    coef[..., 1] = i01 * v[..., 0] + i11 * v[..., 1] + i12 * v[..., 2]
    coef[..., 2] = i02 * v[..., 0] + i12 * v[..., 1] + i22 * v[..., 2]
    coef[..., 3] = mean_a - np.einsum("hwc,hwc->hw", coef[..., :3], mean_i)
    return _box(coef, r)


def affine_fit(image: np.ndarray, alpha: np.ndarray, r: int | None = None,
               eps: float | None = None) -> np.ndarray:
    """[a | b] per pixel (H x W x 4 float32): the window-averaged coefficients of the local
    affine model alpha = a . I + b. Fitted SLAB rows at a time (each with the 2r rows of
    context its two box filters read), in double precision (variances of ~1e-5 on values ~0.5)."""
    r = WINDOW if r is None else r
    eps = FIT_EPS if eps is None else eps
    h = alpha.shape[0]
    out = np.empty(alpha.shape + (4,), np.float32)
    for y0 in range(0, h, SLAB):
        y1 = min(h, y0 + SLAB)
        lo, hi = max(0, y0 - 2 * r), min(h, y1 + 2 * r)
        coef = _fit_slab(image[lo:hi].astype(np.float64), alpha[lo:hi].astype(np.float64), r, eps)
        out[y0:y1] = coef[y0 - lo:y1 - lo]
    return out


def carry_up(image: np.ndarray, trimap: np.ndarray, coarse_image: np.ndarray, coarse_alpha: np.ndarray,
             coarse_fg: np.ndarray, coarse_bg: np.ndarray, f: int, report=None) -> np.ndarray:
    """Full-resolution alpha (float32, the crop's shape; known pixels from the trimap); the
    unknown pixels' foreground is written into ``image`` (the crop becomes the foreground).
    ``coarse_fg`` / ``coarse_bg``: the coarse foreground and background (H x W x 3), valid at
    least at ``carried_pixels``; interpolated together with the affine fit."""
    fields = np.concatenate([affine_fit(coarse_image, coarse_alpha), coarse_fg, coarse_bg], axis=2,
                            dtype=np.float32)
    alpha = (trimap == FOREGROUND).astype(np.float32)
    flat_alpha, flat_img = alpha.reshape(-1), image.reshape(-1, 3)
    idx = np.flatnonzero(trimap == UNKNOWN)
    w = trimap.shape[1]
    for start in range(0, idx.size, CHUNK):
        part = idx[start:start + CHUNK]
        ys, xs = np.divmod(part, w)
        v = _bilinear(fields, ys, xs, f)
        colour = flat_img[part]
        a = np.clip(np.einsum("nc,nc->n", v[:, :3], colour) + v[:, 3], 0.0, 1.0)
        fg, bg = v[:, 4:7], v[:, 7:10]
        # least change of (F, B) that composites to the pixel's colour: F += a r / n, B += (1 - a) r / n
        residual = colour - (a[:, None] * fg + (1 - a[:, None]) * bg)
        norm = (a * a + (1 - a) * (1 - a))[:, None]
        flat_alpha[part] = a
        flat_img[part] = np.clip(fg + a[:, None] * residual / norm, 0.0, 1.0)
        if report is not None:
            report(min(1.0, (start + CHUNK) / idx.size))
    return alpha
