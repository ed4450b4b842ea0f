"""Patch-based trimming (Aksoy, Aydin, Pollefeys, CVPR 2017, section on trimap trimming).

Each pixel's 3x3 patch is summarised by a colour Gaussian (mean mu, covariance
Sigma + reg I).  For an unknown pixel the nearest known-foreground and known-background
patches by mean colour are compared with its own patch by the Bhattacharyya distance

    D = 1/8 (mu_1 - mu_2)^T S^-1 (mu_1 - mu_2) + 1/2 ln(det S / sqrt(det S_1 det S_2)),
    S = (S_1 + S_2) / 2.

The pixel is marked foreground when its closest foreground patch is close
(min D_F < near) and its closest background patch is far (min D_B > far), and
background in the mirrored case.  Only the known pixels within ``band`` of the unknown region
are searched, and only for the unknown pixels whose decision is still open (``trim``'s
may_be_fg / may_be_bg; the own side first, the other side only where the own side is near).

The searches are exact: an approximate k-d search answers from the tree's shape, so adding a
few known patches anywhere (a brush stroke) would change decisions all over the region, and a
local re-solve could not reproduce a full one (bench/refine_rerun.py). The known patches a job
compared with (``KnownPatchSet``) are what a local re-solve compares its window with.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.spatial import cKDTree

from ....trimaps.values import FOREGROUND, UNKNOWN
from .information_flow import near_unknown

K = 5            # nearest known patches (by mean colour) compared on each side
NEAR = 0.25      # min D on the own side below this ...
FAR = 0.9        # ... and min D on the other side above this: trimmed
COV_REG = 1e-8   # added to every patch covariance
BAND = 16        # known patches this close to the unknown region are searched
RADIUS = 0.05    # search radius in mean colour; known patches farther away count as infinitely far
                 # (< 0.1 % change)
WORKERS = max(1, os.cpu_count() or 1)  # chunks of queries searched and compared at once (threads)
QUERY_CHUNK = 1 << 16  # query patches per chunk: the (chunk, K) temporaries bound the memory, not (n, K)

_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


CHUNK_PIXELS = 1 << 20  # patch moments are box-filtered a slab of rows of about this many pixels at a time


def patch_gaussians(image: np.ndarray, idx: np.ndarray, reg: float = COV_REG):
    """(mu (n, 3), cov (n, 6) as [xx, xy, xz, yy, yz, zz]) of the 3x3 patches centred on the
    flat pixels ``idx`` of ``image`` (H x W x 3, float); borders are replicated.
    Box-filtered moments, cov = E[x y] - E[x] E[y] over the patch, in double precision (the
    covariances are ~1e-8 where the image is flat), one slab of rows at a time and only in the
    slabs that hold a pixel of ``idx``: memory follows the slab (WORKERS of them at once), not the crop."""
    h, w = image.shape[:2]
    idx = np.asarray(idx, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    rows_of = idx[order] // w
    mu = np.empty((idx.size, 3))
    cov = np.empty((idx.size, 6))
    step = max(1, CHUNK_PIXELS // max(w, 1))

    def slab_of(r0):
        lo, hi = np.searchsorted(rows_of, (r0, r0 + step))
        if lo == hi:
            return
        s0, s1 = max(r0 - 1, 0), min(r0 + step + 1, h)  # one row of halo on each side
        slab = np.asarray(image[s0:s1], dtype=np.float64)
        local = idx[order[lo:hi]] - s0 * w
        mean = uniform_filter(slab, size=(3, 3, 1), mode="nearest").reshape(-1, 3)[local]
        for k, (i, j) in enumerate(_PAIRS):
            cov[order[lo:hi], k] = (uniform_filter(slab[..., i] * slab[..., j], size=3, mode="nearest")
                                    .reshape(-1)[local] - mean[:, i] * mean[:, j])
        mu[order[lo:hi]] = mean

    starts = range(0, h, step)
    if len(starts) == 1:
        slab_of(0)
    else:  # slabs write disjoint rows of mu / cov; the filters release the GIL
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(slab_of, starts))
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


class KnownPatches:
    """The 3x3-patch Gaussians of one side's known pixels, searchable by mean colour."""

    def __init__(self, mu: np.ndarray, cov: np.ndarray, mask: np.ndarray):
        """mu, cov: patch Gaussians (patch_gaussians); mask: which of them are the side's."""
        idx = np.flatnonzero(mask)
        self.mu, self.cov = mu[idx], cov[idx]
        if idx.size:
            # identical means (flat or saturated areas) would pile up in k-d tree leaves that
            # cannot be split and make every search near them slow: keep one patch per mean
            # (the smallest covariance: the one most likely to decide)
            q = np.round(self.mu * (255 * 9)).astype(np.int64)
            key = (q[:, 0] * 2304 + q[:, 1]) * 2304 + q[:, 2]
            order = np.lexsort((_det(self.cov), key))
            keep = order[np.r_[True, key[order][1:] != key[order][:-1]]]
            self.mu, self.cov = self.mu[keep], self.cov[keep]
        self._tree = None

    def min_distance(self, mu: np.ndarray, cov: np.ndarray, k: int = K) -> np.ndarray:
        """Per query patch, the smallest Bhattacharyya distance to the k known patches nearest
        in mean colour (inf where none lies within RADIUS, or the side has no patch)."""
        n = self.mu.shape[0]
        if n == 0 or mu.shape[0] == 0:
            return np.full(mu.shape[0], np.inf)
        if self._tree is None:
            self._tree = cKDTree(self.mu)
        kk = min(k, n)
        out = np.empty(mu.shape[0])

        def chunk(lo, search_workers=1):
            part = slice(lo, lo + QUERY_CHUNK)
            # far-away means cannot match (D >= |d mu|^2 / (8 lambda_max)): bounding the search
            # radius saves the long searches of pixels whose colour this side lacks
            _, nb = self._tree.query(mu[part], k=kk, distance_upper_bound=RADIUS,
                                     workers=search_workers)
            nb = nb.reshape(-1, kk)
            missing = nb >= n
            nb = np.where(missing, 0, nb)
            dist = bhattacharyya(mu[part, None, :], cov[part, None, :], self.mu[nb], self.cov[nb])
            dist[missing] = np.inf
            out[part] = dist.min(axis=1)

        starts = range(0, mu.shape[0], QUERY_CHUNK)
        if len(starts) == 1:  # one chunk: its search on every core
            chunk(0, -1)
        else:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                list(pool.map(chunk, starts))
        return out


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


@dataclass(frozen=True)
class KnownPatchSet:
    """The patch Gaussians of the known pixels within ``band`` of the unknown region, both sides,
    with their positions: what the unknown patches are compared with. A finished job keeps it so
    that a local re-solve compares its window's unknown patches with the whole region's known
    ones, as the full solve does (local_resolve.py)."""
    rows: np.ndarray   # (n,) int32 position (row, column) in the crop's, or a caller's, frame
    cols: np.ndarray
    fg: np.ndarray     # (n,) bool: a foreground patch (else background)
    mu: np.ndarray     # (n, 3)
    cov: np.ndarray    # (n, 6), as patch_gaussians packs it

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.rows, self.cols, self.fg, self.mu, self.cov))

    def side(self, fg: bool) -> KnownPatches:
        return KnownPatches(self.mu, self.cov, self.fg == fg)

    def shifted(self, rows: int, cols: int) -> "KnownPatchSet":
        """The same patches, positions moved by (rows, cols)."""
        return KnownPatchSet(self.rows + np.int32(rows), self.cols + np.int32(cols), self.fg, self.mu,
                             self.cov)

    def without(self, mask: np.ndarray) -> "KnownPatchSet":
        """This set less the patches on ``mask``'s pixels (bool, in this set's frame)."""
        keep = ~mask[self.rows, self.cols]
        return KnownPatchSet(self.rows[keep], self.cols[keep], self.fg[keep], self.mu[keep], self.cov[keep])

    def replaced(self, box: tuple[slice, slice], other: "KnownPatchSet") -> "KnownPatchSet":
        """This set outside ``box`` and ``other``'s patches inside it, in row-major order (the
        order a whole crop lists them in, so that the same patches give the same set)."""
        def inside(s):
            return ((s.rows >= box[0].start) & (s.rows < box[0].stop)
                    & (s.cols >= box[1].start) & (s.cols < box[1].stop))
        keep, add = ~inside(self), inside(other)
        parts = [(getattr(self, k)[keep], getattr(other, k)[add])
                 for k in ("rows", "cols", "fg", "mu", "cov")]
        rows, cols, fg, mu, cov = (np.concatenate(p) for p in parts)
        order = np.lexsort((cols, rows))
        return KnownPatchSet(rows[order], cols[order], fg[order], mu[order], cov[order])


class NearUnknown(NamedTuple):
    """A crop's patch Gaussians for trimming, from one pass of patch moments: the known patches
    to compare with, and the unknown pixels' own."""
    known: KnownPatchSet
    idx: np.ndarray   # (n,) flat indices of the unknown pixels
    mu: np.ndarray    # (n, 3)
    cov: np.ndarray   # (n, 6)


def patches_near_unknown(image: np.ndarray, trimap: np.ndarray, band: int = BAND,
                         reg: float = COV_REG) -> NearUnknown:
    """The patches of the unknown pixels and of the known ones within ``band`` of them (positions
    of the known ones in the crop's frame)."""
    unknown = trimap == UNKNOWN
    need = np.flatnonzero(unknown | near_unknown(unknown, band))
    mu, cov = patch_gaussians(image, need, reg)
    label = trimap.reshape(-1)[need]
    known, u = label != UNKNOWN, label == UNKNOWN
    rows, cols = np.divmod(need[known], trimap.shape[1])
    return NearUnknown(KnownPatchSet(rows.astype(np.int32), cols.astype(np.int32), label[known] == FOREGROUND,
                                     mu[known], cov[known]), need[u], mu[u], cov[u])


def trim(image: np.ndarray, trimap: np.ndarray, may_be_fg: np.ndarray | None = None,
         may_be_bg: np.ndarray | None = None, near: float = NEAR, far: float = FAR, k: int = K,
         band: int = BAND, reg: float = COV_REG, patches: NearUnknown | None = None) -> np.ndarray:
    """The trimap with the unknown pixels that patch-based trimming decides set to 0 / 255
    (``image`` float in [0, 1], ``trimap`` uint8 0 / 128 / 255; returns a new array).
    ``may_be_fg`` / ``may_be_bg`` (bool H x W, optional): only those pixels may become
    foreground / background (the engine passes where the K-to-U alpha agrees): each side is
    searched only for the pixels whose decision is still open, the same decisions as
    trimming every pixel and dropping the others afterwards, at a fraction of the cost.
    ``patches``: patches_near_unknown's answer when already made (the engine makes it while the
    flow runs; a local re-solve puts the whole region's known patches in it)."""
    out = trimap.copy()
    if not (trimap == UNKNOWN).any():
        return out
    known, u_idx, mu_u, cov_u = (patches if patches is not None
                                 else patches_near_unknown(image, trimap, band, reg))
    sides = {255: known.side(True), 0: known.side(False)}
    may = {255: may_be_fg, 0: may_be_bg}
    for own, other in ((255, 0), (0, 255)):
        sel = slice(None) if may[own] is None else may[own].reshape(-1)[u_idx]
        idx, mu, cov = u_idx[sel], mu_u[sel], cov_u[sel]
        # own side first (min D_own < near); the other side only for the pixels that pass it
        close = sides[own].min_distance(mu, cov, k) < near
        idx, mu, cov = idx[close], mu[close], cov[close]
        far_enough = sides[other].min_distance(mu, cov, k) > far
        out.reshape(-1)[idx[far_enough]] = own
    return out
