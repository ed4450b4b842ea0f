"""Patch-based trimming (Aksoy, Aydin, Pollefeys, CVPR 2017, section on trimap trimming).

Each pixel's 3x3 patch is summarised by a colour Gaussian (mean mu, covariance
Sigma + reg I).  For an unknown pixel the nearest known-foreground and known-background
patches by mean colour are compared with its own patch by the Bhattacharyya distance

    D = 1/8 (mu_1 - mu_2)^T S^-1 (mu_1 - mu_2) + 1/2 ln(det S / sqrt(det S_1 det S_2)),
    S = (S_1 + S_2) / 2.

The pixel is marked foreground when its closest foreground patch is close
(min D_F < near) and its closest background patch is far (min D_B > far), and
background in the mirrored case.  Only the unknown pixels and the known pixels within
``band`` of them are fitted and searched.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .information_flow import _sampled, colour_key, grouped_query, near_unknown

K = 5            # nearest known patches (by mean colour) compared on each side
NEAR = 0.25      # min D on the own side below this ...
FAR = 0.9        # ... and min D on the other side above this: trimmed
COV_REG = 1e-8   # added to every patch covariance
BAND = 16               # known patches this close to the unknown region are searched
GROUP_COLOUR = 0.0      # > 0: unknown patches with mean colours in one cell this wide share one search ...
CANDIDATES = 16         # ... for this many nearest known means, among which each keeps its own K nearest
SEARCH_EPS = 1.0        # approximate k-d tree search (0: exact; 1: 1 % of the decisions change, 2-3x faster)
DEDUP = True
STRIDE = 1              # > 1: known patches on every STRIDE-th row and column only
RADIUS = 0.05           # search radius in mean colour; known patches farther away count as infinitely far
FAR_MU = 0.0            # guard: trimmed only when the other side's nearest mean colour is farther than this

_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def patch_gaussians(image: np.ndarray, idx: np.ndarray, reg: float = COV_REG):
    """(mu (n, 3), cov (n, 6) as [xx, xy, xz, yy, yz, zz]) of the 3x3 patches centred on the
    flat pixels ``idx`` of ``image`` (H x W x 3, float); borders are replicated."""
    h, w = image.shape[:2]
    flat = np.asarray(image).reshape(-1, 3)
    ys, xs = np.divmod(idx, w)
    # replicated borders by clamped coordinates (no padded, double-precision copy of the crop)
    rows = [np.clip(ys + d, 0, h - 1) * w for d in (-1, 0, 1)]
    cols = [np.clip(xs + d, 0, w - 1) for d in (-1, 0, 1)]
    pix = np.stack([flat[r + c] for r in rows for c in cols], axis=1).astype(np.float64)
    mu = pix.mean(axis=1)
    d = pix - mu[:, None, :]
    cov = np.stack([(d[..., i] * d[..., j]).mean(axis=1) for i, j in _PAIRS], axis=1)
    cov[:, [0, 3, 5]] += reg
    return mu, cov


def _det(c):
    a, b, cc, d, e, f = (c[..., k] for k in range(6))
    return a * (d * f - e * e) - b * (b * f - cc * e) + cc * (b * e - cc * d)


def bhattacharyya(mu1, cov1, mu2, cov2):
    """Bhattacharyya distance between Gaussians (broadcasting over leading axes; covariances
    as 6 packed entries, see patch_gaussians)."""
    s = 0.5 * (cov1 + cov2)
    a, b, c, d, e, f = (s[..., k] for k in range(6))
    # adjugate of the symmetric 3x3 matrix: inverse = adj / det
    A, B, C = d * f - e * e, c * e - b * f, b * e - c * d
    D, E, F = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * A + b * B + c * C
    m = mu1 - mu2
    x, y, z = m[..., 0], m[..., 1], m[..., 2]
    quad = (A * x * x + D * y * y + F * z * z + 2 * (B * x * y + C * x * z + E * y * z)) / det
    return quad / 8.0 + 0.5 * (np.log(det) - 0.5 * (np.log(_det(cov1)) + np.log(_det(cov2))))


def min_distances(image: np.ndarray, trimap: np.ndarray, k: int = K, band: int = BAND, reg: float = COV_REG):
    """See _distances (without the mean-colour distances)."""
    return _distances(image, trimap, k, band, reg)[:3]


def _distances(image: np.ndarray, trimap: np.ndarray, k: int = K, band: int = BAND, reg: float = COV_REG):
    """(idx, d_fg, d_bg): for each unknown pixel (flat index), the smallest Bhattacharyya
    distance to the k known-foreground / -background patches nearest in mean colour
    (inf where a side has no known pixel near the unknown region).  Unknown patches whose
    mean colours agree within GROUP_COLOUR share one search (their distances stay their own)."""
    unknown = trimap == 128
    near = near_unknown(unknown, band)
    u_idx = np.flatnonzero(unknown)
    mu_u, cov_u = patch_gaussians(image, u_idx, reg)
    key = colour_key(mu_u, GROUP_COLOUR) if GROUP_COLOUR > 0 else None
    out, gap = [], []
    for value in (255, 0):
        k_idx = _sampled((trimap == value) & near, STRIDE)
        if k_idx.size == 0:
            out.append(np.full(u_idx.size, np.inf))
            gap.append(np.full(u_idx.size, np.inf))
            continue
        mu_k, cov_k = patch_gaussians(image, k_idx, reg)
        if DEDUP:
            # identical means (flat or saturated areas) would pile up in k-d tree leaves that
            # cannot be split and make every search near them slow: keep one patch per mean
            # (the smallest covariance: the one most likely to decide)
            q = np.round(mu_k * (255 * 9)).astype(np.int64)
            key_k = (q[:, 0] * 2304 + q[:, 1]) * 2304 + q[:, 2]
            order = np.lexsort((_det(cov_k), key_k))
            keep = order[np.r_[True, key_k[order][1:] != key_k[order][:-1]]]
            mu_k, cov_k, k_idx = mu_k[keep], cov_k[keep], k_idx[keep]
        kk = min(k, k_idx.size)
        if key is None:
            # far-away means cannot match (D >= |d mu|^2 / (8 lambda_max)): bounding the search
            # radius saves the long searches of pixels whose colour that side lacks
            dmu, nb = cKDTree(mu_k).query(mu_u, k=kk, eps=SEARCH_EPS, distance_upper_bound=RADIUS)
            nb, dmu = nb.reshape(-1, kk), dmu.reshape(-1, kk)
        else:
            kc = min(max(CANDIDATES, kk), k_idx.size)
            cand = grouped_query(cKDTree(mu_k), mu_u, kc, key, SEARCH_EPS)
            d2 = ((mu_k[cand] - mu_u[:, None, :]) ** 2).sum(axis=2)
            pick = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            nb = np.take_along_axis(cand, pick, axis=1)
            dmu = np.sqrt(np.take_along_axis(d2, pick, axis=1))
        missing = nb >= k_idx.size  # nothing within RADIUS: infinitely far
        nb = np.where(missing, 0, nb)
        dist = bhattacharyya(mu_u[:, None, :], cov_u[:, None, :], mu_k[nb], cov_k[nb])
        dist[missing] = np.inf
        out.append(dist.min(axis=1))
        gap.append(dmu.min(axis=1))
    return u_idx, out[0], out[1], gap[0], gap[1]


def neighbour_distances(image: np.ndarray, idx: np.ndarray, nf: np.ndarray, nb: np.ndarray,
                        reg: float = COV_REG):
    """(d_fg, d_bg): smallest Bhattacharyya distance from the patches of the flat pixels ``idx``
    to those of their given foreground / background neighbours (nf, nb: (n, k) flat indices,
    e.g. information_flow's K-to-U neighbours, so that no second search is needed)."""
    mu_u, cov_u = patch_gaussians(image, idx, reg)
    out = []
    for nbr in (nf, nb):
        uniq, inv = np.unique(nbr, return_inverse=True)
        mu_k, cov_k = patch_gaussians(image, uniq, reg)
        inv = inv.reshape(nbr.shape)
        out.append(bhattacharyya(mu_u[:, None, :], cov_u[:, None, :], mu_k[inv], cov_k[inv]).min(axis=1))
    return out[0], out[1]


def decide(d_fg: np.ndarray, d_bg: np.ndarray, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """int8 per pixel: 1 trimmed to foreground, 0 to background, -1 left unknown."""
    label = np.full(d_fg.shape, -1, np.int8)
    label[(d_fg < near) & (d_bg > far)] = 1
    label[(d_bg < near) & (d_fg > far)] = 0
    return label


def trim(image: np.ndarray, trimap: np.ndarray, near: float = NEAR, far: float = FAR, k: int = K,
         band: int = BAND, reg: float = COV_REG) -> np.ndarray:
    """The trimap with the unknown pixels that patch-based trimming decides set to 0 / 255
    (``image`` float in [0, 1], ``trimap`` uint8 0 / 128 / 255; returns a new array)."""
    out = trimap.copy()
    if not (trimap == 128).any():
        return out
    idx, d_fg, d_bg, g_fg, g_bg = _distances(image, trimap, k, band, reg)
    label = decide(d_fg, d_bg, near, far)
    # colour-ambiguity guard: the other side's nearest mean colour must also be FAR_MU away
    # (with tiny patch covariances D_other > far holds for almost any colour offset)
    label[(label == 1) & (g_bg <= FAR_MU)] = -1
    label[(label == 0) & (g_fg <= FAR_MU)] = -1
    flat = out.reshape(-1)
    flat[idx[label == 1]] = 255
    flat[idx[label == 0]] = 0
    return out
