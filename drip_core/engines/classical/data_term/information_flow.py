"""Known-to-unknown information flow (Aksoy, Aydin, Pollefeys, CVPR 2017, the "K-to-U" term).

Every unknown pixel p is written as a local linear embedding (LLE) of K_F known-foreground
and K_B known-background pixels that are its nearest neighbours in the feature space
[R, G, B, s x / W, s y / H] (s = 10, W x H the crop):

    w = argmin |c_p - sum_q w_q c_q|^2 + reg |w|^2   subject to   sum_q w_q = 1,

with c the colours.  With D the K x 3 matrix of colour differences c_q - c_p the solution
is w = G^-1 1 / (1^T G^-1 1), G = D D^T + reg I.  G is K x K but D D^T has rank <= 3, so
by the Woodbury identity G^-1 1 = (1 - D (D^T D + reg I)^-1 D^T 1) / reg: one 3x3 solve per
pixel, and the 1 / reg cancels in the normalisation.

The weights give an alpha estimate and a confidence
    alpha_hat_p = sum_{q in F} w_q,
    eta_p = |sum_{q in F} w_q c_q - sum_{q in B} w_q c_q|^2 / 3,
(eta is large when the flows come from clearly different foreground and background
colours), and the energy term  sum_p sigma eta_p (alpha_p - alpha_hat_p)^2  adds only a
diagonal sigma eta and a right-hand side sigma eta alpha_hat to the closed-form system.
(The engine weights the term by its own per-pixel confidence instead of eta: priors.confidence.)

The same weights give a foreground / background colour estimate for each unknown pixel
(the weighted means of its foreground and background neighbours), which the foreground
stage can use as a prior.

Only known pixels within ``band`` pixels of the unknown region are searched, so the cost
follows the size of the unknown region.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.spatial import cKDTree

from ....trimaps.values import UNKNOWN

K_FG = 7
K_BG = 7
SPATIAL = 10.0   # weight of the normalised pixel coordinates in the feature space
LLE_REG = 1e-10  # regulariser of the LLE Gram matrix
WEAK_DET = 1e-6  # a Gram matrix whose det is below this share of its diagonal's product: solved by LAPACK
BAND = 32        # known pixels this close (Chebyshev distance) to an unknown pixel are searched ...
STRIDE = 2       # ... on every STRIDE-th row and column (a quarter of them: 4x smaller trees)
SEARCH_EPS = 0.0  # exact k-d searches: an approximate one answers from the tree's shape, so a brush
                  # stroke anywhere would move the flow everywhere (local_resolve.py could not
                  # reproduce a full solve)
WORKERS = -1     # k-d searches on every core
GROUP_PX = 3     # unknown pixels in one GROUP_PX x GROUP_PX block share one neighbour search (each
                 # keeps its own LLE weights): 9x fewer searches, as accurate
GROUP_COLOUR = 0.0  # > 0: ... only those whose colours agree within GROUP_COLOUR (off)


@dataclass
class Flow:
    """K-to-U flow of the unknown pixels ``idx`` (flat indices into the crop)."""
    idx: np.ndarray        # (n,) flat indices of the unknown pixels
    alpha_hat: np.ndarray  # (n,) sum of the foreground weights
    eta: np.ndarray        # (n,) confidence
    fg: np.ndarray         # (n, 3) weighted mean colour of the foreground neighbours
    bg: np.ndarray         # (n, 3) weighted mean colour of the background neighbours
    nf: np.ndarray         # (n, K_F) flat indices of the foreground neighbours
    nb: np.ndarray         # (n, K_B) flat indices of the background neighbours


def near_unknown(unknown: np.ndarray, band: int) -> np.ndarray:
    """Pixels within Chebyshev distance ``band`` of an unknown pixel (separable max filter)."""
    return maximum_filter(unknown.view(np.uint8), size=2 * band + 1, mode="constant") > 0


def features(image: np.ndarray, idx: np.ndarray,
             spatial: float | tuple[float, float] = SPATIAL) -> np.ndarray:
    """[R, G, B, s x / W, s y / H] of the flat pixels ``idx`` of ``image`` (H x W x 3); ``spatial``
    s, or (s_x, s_y) for a window that must weigh positions as a larger crop does."""
    h, w = image.shape[:2]
    sx, sy = (spatial, spatial) if np.isscalar(spatial) else spatial
    ys, xs = np.divmod(idx, w)
    out = np.empty((idx.size, 5))
    out[:, :3] = image.reshape(-1, 3)[idx]
    out[:, 3] = xs * (sx / w)
    out[:, 4] = ys * (sy / h)
    return out


def lle_weights(centre: np.ndarray, neighbours: np.ndarray, reg: float = LLE_REG) -> np.ndarray:
    """LLE weights (n, K), rows summing to 1: centre (n, 3) from neighbours (n, K, 3)."""
    c = np.asarray(centre, dtype=np.float64)
    D = [neighbours[:, :, i] - c[:, i:i + 1] for i in range(3)]  # colour differences per channel, (n, K)
    m = {(i, j): np.einsum("nk,nk->n", D[i], D[j]) for i in range(3) for j in range(i, 3)}
    a, b, cc, d, e, f = m[0, 0] + reg, m[0, 1], m[0, 2], m[1, 1] + reg, m[1, 2], m[2, 2] + reg
    s = [Di.sum(axis=1) for Di in D]
    # t = M^-1 s by the cofactors of the symmetric 3x3 M (2x faster than a LAPACK call per pixel) ...
    A, B, C = d * f - e * e, cc * e - b * f, b * e - cc * d
    DD, E, F = a * f - cc * cc, b * cc - a * e, a * d - b * b
    det = a * A + b * B + cc * C
    t = np.stack([(A * s[0] + B * s[1] + C * s[2]) / det, (B * s[0] + DD * s[1] + E * s[2]) / det,
                  (C * s[0] + E * s[1] + F * s[2]) / det], axis=1)
    # ... except where M is nearly singular (neighbours on a line in colour space: a two-colour
    # mix), where the cofactors cancel: there LAPACK's pivoted solve (0.4 % of GT13's pixels)
    weak = ~(det > WEAK_DET * a * d * f)
    if weak.any():
        M = np.stack([x[weak] for x in (a, b, cc, b, d, e, cc, e, f)], axis=1).reshape(-1, 3, 3)
        t[weak] = np.linalg.solve(M, np.stack([x[weak] for x in s], axis=1)[..., None])[..., 0]
    u = D[0] * t[:, 0:1]
    u += D[1] * t[:, 1:2]
    u += D[2] * t[:, 2:3]
    np.subtract(1.0, u, out=u)
    total = u.sum(axis=1, keepdims=True)
    # total = K - s^T M^-1 s > 0 unless 1 lies in D's column space (neighbours on a plane
    # that misses c_p); fall back to equal weights there
    bad = ~(np.abs(total) > 1e-12)
    if bad.any():
        u[bad[:, 0]] = 1.0
        total[bad] = u.shape[1]
    u /= total
    return u


def grouped_query(tree: cKDTree, points: np.ndarray, k: int, key: np.ndarray | None = None,
                  eps: float = 0.0) -> np.ndarray:
    """Indices (n, k) of the k nearest tree points of each of ``points``; points sharing
    a ``key`` (an int64 per point: e.g. quantised colour and position) share the answer of
    the first of them, so near-duplicate queries are searched once."""
    if key is None:
        first, inverse = np.arange(points.shape[0]), None
    else:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    _, nb = tree.query(points[first], k=k, eps=eps, workers=WORKERS)
    nb = nb.reshape(first.size, k)
    return nb if inverse is None else nb[inverse.reshape(-1)]


def colour_key(colours: np.ndarray, step: float, extra: np.ndarray | None = None) -> np.ndarray:
    """int64 key of colours quantised to ``step`` (and of the int array ``extra``, e.g. a block index)."""
    q = np.floor(np.asarray(colours) / step).astype(np.int64)
    levels = int(1.0 / step) + 2
    key = (q[:, 0] * levels + q[:, 1]) * levels + q[:, 2]
    if extra is not None:
        key = key + extra.astype(np.int64) * levels ** 3
    return key


def known_to_unknown(image: np.ndarray, trimap: np.ndarray, k_fg: int = K_FG, k_bg: int = K_BG,
                     band: int = BAND, spatial: float = SPATIAL, reg: float = LLE_REG,
                     stride: int = STRIDE, search_eps: float = SEARCH_EPS,
                     group_px: int = GROUP_PX, group_colour: float = GROUP_COLOUR) -> Flow | None:
    """The K-to-U flow of every unknown pixel of the crop (``image`` float in [0, 1],
    ``trimap`` uint8 0 / 128 / 255), or None when foreground or background is missing."""
    image = np.asarray(image)  # taken to double precision pixel by pixel as gathered (no crop-sized copy)
    unknown = trimap == UNKNOWN
    near = near_unknown(unknown, band)
    u_idx = np.flatnonzero(unknown)
    f_idx, b_idx = (_sampled((trimap == v) & near, stride) for v in (255, 0))
    if u_idx.size == 0 or f_idx.size == 0 or b_idx.size == 0:
        return None
    kf, kb = min(k_fg, f_idx.size), min(k_bg, b_idx.size)
    fu = features(image, u_idx, spatial)
    key = None
    if group_px > 1 or group_colour > 0:
        w = trimap.shape[1]
        ys, xs = np.divmod(u_idx, w)
        block = (ys // group_px) * (w // group_px + 1) + xs // group_px
        key = colour_key(fu[:, :3], group_colour, block) if group_colour > 0 else block
    nf = f_idx[grouped_query(cKDTree(features(image, f_idx, spatial)), fu, kf, key, search_eps)]
    nb = b_idx[grouped_query(cKDTree(features(image, b_idx, spatial)), fu, kb, key, search_eps)]
    flat = image.reshape(-1, 3)
    colours = flat[np.concatenate([nf, nb], axis=1)].astype(np.float64)  # (n, kf + kb, 3)
    w = lle_weights(fu[:, :3], colours, reg)
    wf, wb = w[:, :kf], w[:, kf:]
    sf, sb = wf.sum(axis=1), wb.sum(axis=1)
    mix_f = (wf[:, :, None] * colours[:, :kf]).sum(axis=1)
    mix_b = (wb[:, :, None] * colours[:, kf:]).sum(axis=1)
    eta = ((mix_f - mix_b) ** 2).sum(axis=1) / 3.0
    # colour estimates: the neighbours' weighted means (plain means where the weights of a
    # side sum to about zero or below)
    fg = np.where(sf[:, None] > 0.05, mix_f / np.where(sf > 0.05, sf, 1.0)[:, None],
                  colours[:, :kf].mean(axis=1))
    bg = np.where(sb[:, None] > 0.05, mix_b / np.where(sb > 0.05, sb, 1.0)[:, None],
                  colours[:, kf:].mean(axis=1))
    return Flow(u_idx, sf, eta, np.clip(fg, 0.0, 1.0), np.clip(bg, 0.0, 1.0), nf, nb)


def distance_to_side(image: np.ndarray, side: np.ndarray, idx: np.ndarray, colours: np.ndarray,
                     k: int = K_BG, band: int = BAND, spatial: float = SPATIAL) -> np.ndarray:
    """Per pixel ``idx`` (flat) of colour ``colours`` (n x 3), the colour distance to the closest of
    its k nearest pixels of ``side`` (bool H x W: known foreground or background, those within
    ``band`` of ``idx`` searched, every STRIDE-th) in this flow's feature space (colour and
    position, so a side that changes across the picture is compared where it is); inf without
    any such pixel. ``image`` is read only at ``side``'s pixels. Only the box around ``idx``
    (plus ``band``) is looked at: a few specks in a 27-MP crop cost no crop-sized filter."""
    h, w = side.shape
    if idx.size == 0:
        return np.zeros(0)
    ys, xs = np.divmod(idx, w)
    # the box starts on the sampling grid, so the same side pixels are sampled as in the crop
    y0, x0 = (max(int(v.min()) - band, 0) // STRIDE * STRIDE for v in (ys, xs))
    y1, x1 = min(int(ys.max()) + band + 1, h), min(int(xs.max()) + band + 1, w)
    near = np.zeros((y1 - y0, x1 - x0), bool)
    near[ys - y0, xs - x0] = True
    local = _sampled(side[y0:y1, x0:x1] & near_unknown(near, band), STRIDE)
    if local.size == 0:
        return np.full(idx.size, np.inf)
    sy, sx = np.divmod(local, x1 - x0)
    s_idx = (sy + y0) * w + sx + x0
    kk = min(k, s_idx.size)
    query = np.column_stack([np.asarray(colours, np.float64), xs * (spatial / w), ys * (spatial / h)])
    _, nb = cKDTree(features(image, s_idx, spatial)).query(query, k=kk)
    found = np.asarray(image).reshape(-1, 3)[s_idx[nb.reshape(idx.size, kk)]]
    return np.linalg.norm(found - query[:, None, :3], axis=2).min(axis=1)


def mixture_residual(image: np.ndarray, flow: Flow, floor: float = 0.02) -> np.ndarray:
    """Per unknown pixel, how far its colour c lies from the line between its flows' foreground
    and background colours, relative to their distance (Chuang et al.'s / Wang and Cohen's
    distance ratio):  |c - (a F + (1 - a) B)| / (|F - B| + floor),  a = clip(alpha_hat).
    Small for a true mix of the two; large for a colour neither side explains (a flag in the
    unknown region whose colours appear in no known region), where alpha_hat is an
    extrapolation and should not be trusted."""
    c = np.asarray(image).reshape(-1, 3)[flow.idx].astype(np.float64)
    a = np.clip(flow.alpha_hat, 0.0, 1.0)[:, None]
    miss = np.linalg.norm(c - (a * flow.fg + (1 - a) * flow.bg), axis=1)
    return miss / (np.linalg.norm(flow.fg - flow.bg, axis=1) + floor)


def _sampled(mask: np.ndarray, stride: int) -> np.ndarray:
    """Flat indices of ``mask``'s pixels on every stride-th row and column (all of them when
    that leaves fewer than 8: tiny crops)."""
    if stride > 1:
        sub = np.zeros_like(mask)
        sub[::stride, ::stride] = mask[::stride, ::stride]
        if np.count_nonzero(sub) >= 8:
            return np.flatnonzero(sub)
    return np.flatnonzero(mask)
