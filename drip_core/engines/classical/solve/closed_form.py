"""Closed-form matting (Levin, Lischinski, Weiss 2008) in vectorised NumPy / SciPy.

The matting Laplacian of 3x3 windows couples pixels at most 2 apart, so each row is 25
"stencil" values L[i, i + d] for the offsets d in [-2, 2]^2.  Known trimap pixels are
Dirichlet boundary values: only the rows and columns of unknown pixels form the linear
system L_uu a_u = -L_uk a_k, which is smaller and better conditioned than pymatting's
soft-constraint system (L + lambda C) a = lambda C t over the whole image, and only the
windows touching an unknown pixel are ever built.  The system is solved by multigrid-
preconditioned CG (multigrid.py).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ....trimaps.values import FOREGROUND, UNKNOWN
from .multigrid import DIRECT_SIZE, MultigridSolver

OFFSETS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
WINDOW = [(dy, dx) for dy in range(-1, 2) for dx in range(-1, 2)]
CHUNK = 1 << 17  # windows built at a time (bounds the double-precision temporaries)
MAX_ITERATIONS = 200  # CG iterations at most (the multigrid converges in tens)


def _inv3_sym(a, b, c, d, e, f):
    """Inverse of the symmetric 3x3 matrices [[a,b,c],[b,d,e],[c,e,f]] (elementwise planes)."""
    A = d * f - e * e
    B = c * e - b * f
    C = b * e - c * d
    D = a * f - c * c
    E = b * c - a * e
    F = a * d - b * b
    det = a * A + b * B + c * C
    inv = 1.0 / det
    return A * inv, B * inv, C * inv, D * inv, E * inv, F * inv


def laplacian_stencil(image: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Dense reference: the full Laplacian as planes[25, H, W], planes[k][y, x] =
    L[(y, x), (y, x) + OFFSETS[k]].  Simple and slow; the tests check the fast path with it."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[:2]
    planes = np.zeros((25, h, w))
    if h < 3 or w < 3:
        return planes
    hh, ww = h - 2, w - 2
    # the window-grid view of the pixel at offset (dy, dx) from each window centre
    pix = [img[1 + dy:1 + dy + hh, 1 + dx:1 + dx + ww] for dy, dx in WINDOW]
    mean = sum(pix) / 9.0
    cov = {}
    for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        cov[i, j] = sum(p[..., i] * p[..., j] for p in pix) / 9.0 - mean[..., i] * mean[..., j]
    reg = eps / 9.0
    inv = _inv3_sym(cov[0, 0] + reg, cov[0, 1], cov[0, 2], cov[1, 1] + reg, cov[1, 2], cov[2, 2] + reg)
    m = np.empty((hh, ww, 3, 3))
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = inv[0], inv[1], inv[2]
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = inv[1], inv[3], inv[4]
    m[..., 2, 0], m[..., 2, 1], m[..., 2, 2] = inv[2], inv[4], inv[5]
    centred = [p - mean for p in pix]
    proj = [np.einsum("...ij,...j->...i", m, c) for c in centred]
    index = {o: k for k, o in enumerate(OFFSETS)}
    for a, (ay, ax) in enumerate(WINDOW):
        for b, (by, bx) in enumerate(WINDOW):
            # L_k[a, b] = delta_ab - (1 + (I_a - mu)^T inv (I_b - mu)) / 9   (Levin eq. 12)
            val = (a == b) - (1.0 + np.einsum("...i,...i->...", centred[a], proj[b])) / 9.0
            planes[index[by - ay, bx - ax], 1 + ay:1 + ay + hh, 1 + ax:1 + ax + ww] += val
    return planes


def unknown_rows_stencil(image: np.ndarray, unknown: np.ndarray,
                         eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """(rows[n_u, 25], idx): the Laplacian rows of the unknown pixels only, as stencil values
    (rows[r, k] = L[idx[r], idx[r] + OFFSETS[k]]).

    Only windows that contain an unknown pixel are visited, CHUNK windows at a time, so the
    cost and the memory follow the size of the unknown region, not of its bounding box (only
    the pixels of those windows are taken to double precision; of the image's size only bool
    masks and an int32 table).  Windows must lie inside the image."""
    h, w = unknown.shape
    idx = np.flatnonzero(unknown)
    nu = idx.size
    if h < 3 or w < 3:
        return np.zeros((nu, 25)), idx
    # pixels that are not unknown scatter into a spare row nu, dropped at the end (an int32
    # lookup table: 4 bytes a pixel, much faster than searching idx)
    pos = np.full(h * w, nu, dtype=np.int32)
    pos[idx] = np.arange(nu, dtype=np.int32)
    rows = np.zeros((25, nu + 1))  # planes: each (i, j) pair below writes one plane nearly in order
    # window centres: interior pixels with an unknown pixel in their 3x3 neighbourhood
    near = np.zeros((h, w), bool)
    for dy, dx in WINDOW:
        near[1:-1, 1:-1] |= unknown[1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx]
    centres = np.flatnonzero(near)
    del near
    flat = np.asarray(image).reshape(h * w, 3)
    for start in range(0, centres.size, CHUNK):
        _add_windows(rows, flat, centres[start:start + CHUNK], pos, w, eps)
    return rows[:, :nu].T, idx  # a view: no transposed copy


def _add_windows(rows, flat, centres, pos, w, eps):
    """Adds the 3x3 windows centred on the flat pixels ``centres`` to ``rows`` (see above)."""
    woff = [dy * w + dx for dy, dx in WINDOW]
    pix = [flat[centres + o].astype(np.float64) for o in woff]
    mean = sum(pix) / 9.0
    pix = [p - mean for p in pix]  # centred colours
    cov = {}
    for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        cov[i, j] = sum(p[:, i] * p[:, j] for p in pix) / 9.0
    reg = eps / 9.0
    a, b, c, d, e, f = _inv3_sym(cov[0, 0] + reg, cov[0, 1], cov[0, 2], cov[1, 1] + reg, cov[1, 2],
                                 cov[2, 2] + reg)
    proj = [np.stack([a * p[:, 0] + b * p[:, 1] + c * p[:, 2],
                      b * p[:, 0] + d * p[:, 1] + e * p[:, 2],
                      c * p[:, 0] + e * p[:, 1] + f * p[:, 2]]) for p in pix]
    pixt = [np.ascontiguousarray(p.T) for p in pix]
    row_of = [pos[centres + o] for o in woff]
    index = {o: k for k, o in enumerate(OFFSETS)}
    ninth = 1.0 / 9.0
    for i in range(9):
        for j in range(i, 9):
            # L_k[i, j] = delta_ij - (1 + (I_i - mu)^T inv (I_j - mu)) / 9   (Levin eq. 12)
            pi, qj = pixt[i], proj[j]
            val = pi[0] * qj[0]
            val += pi[1] * qj[1]
            val += pi[2] * qj[2]
            val += 1.0
            val *= -ninth
            if i == j:
                val += 1.0
            dy, dx = WINDOW[j][0] - WINDOW[i][0], WINDOW[j][1] - WINDOW[i][1]
            # within one (i, j) every window hits a different pixel, so += is safe
            rows[index[dy, dx], row_of[i]] += val
            if i != j:  # the symmetric entry, in the row of pixel j
                rows[index[-dy, -dx], row_of[j]] += val


def dirichlet_system(rows: np.ndarray, idx: np.ndarray, shape: tuple[int, int], known_alpha: np.ndarray):
    """(A, b): A = L_uu (canonical CSR, SPD), b = -L_uk a_k, for the unknown pixels ``idx``
    (``known_alpha``: H x W, the known pixels' alpha, 0 on unknown ones; a bool mask will do)."""
    h, w = shape
    n = h * w
    known = known_alpha.reshape(n)
    # an int32 lookup table (4 bytes a pixel) is much faster than searching idx for 25 n_u columns
    pos = np.full(n, -1, dtype=np.int32)
    pos[idx] = np.arange(idx.size, dtype=np.int32)
    planes = rows.T  # (25, n_u): contiguous when rows came from unknown_rows_stencil
    b = np.zeros(idx.size)
    col_pos = np.empty((idx.size, len(OFFSETS)), np.int32)
    for k, (dy, dx) in enumerate(OFFSETS):
        # neighbours past an edge (or wrapped into another row) have weight exactly 0, and
        # known_alpha is 0 on unknown pixels: b needs no masking
        cols = np.clip(idx + (dy * w + dx), 0, n - 1)
        b -= planes[k] * known[cols]
        col_pos[:, k] = pos[cols]
    del pos
    rows = np.ascontiguousarray(rows)  # row-major, as CSR stores it
    keep = (col_pos >= 0) & (rows != 0)
    # OFFSETS ascend in flat order, so each row's columns come out sorted: canonical CSR
    indptr = np.zeros(idx.size + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    A = sp.csr_matrix((rows[keep], col_pos[keep], indptr), shape=(idx.size, idx.size))
    A.has_sorted_indices = True
    A.has_canonical_format = True
    return A, b


def closed_form_alpha(image: np.ndarray, trimap: np.ndarray, eps: float = 1e-7, tol: float = 1e-4,
                      check_cancel=None, report=None, prior_weight: np.ndarray | None = None,
                      prior_alpha: np.ndarray | None = None, stats: dict | None = None,
                      boundary: np.ndarray | None = None, direct_size: int | None = None) -> np.ndarray:
    """Alpha (float32 H x W) minimising a^T L a + sum_p prior_weight_p (a_p - prior_alpha_p)^2
    with the trimap's known pixels held fixed.

    ``image`` is float in [0, 1]; ``trimap`` uint8 {0, 128, 255} with some known pixel.
    ``prior_weight`` / ``prior_alpha`` (H x W, optional) add a data term: a diagonal and a
    right-hand side, nothing else changes (e.g. information_flow's K-to-U term).
    ``boundary`` (H x W, optional): the known pixels' values (fractional allowed) and the solver's
    starting point, instead of 0 / 1 from the trimap (a local re-solve holds the previous
    solution around its neighbourhood: local_resolve.py); ``direct_size``: the multigrid's
    coarsest level (multigrid.DIRECT_SIZE unless given).
    ``report(fraction)`` follows the solver's progress; ``stats`` (a dict) receives the
    CG iteration count."""
    h, w = trimap.shape
    if h < 3 or w < 3:  # 3x3 windows need room: replicate the borders, crop afterwards
        return _on_padded(image, trimap, eps, tol, check_cancel, report, prior_weight, prior_alpha, stats,
                          boundary, direct_size)
    unknown = trimap == UNKNOWN
    # the known alpha: a mask (no image-sized float array) unless the caller gives the values
    known = trimap == FOREGROUND if boundary is None else np.where(unknown, 0.0, boundary)
    if not unknown.any():  # e.g. trimming decided every pixel
        if stats is not None:
            stats["iterations"] = 0
        return known.astype(np.float32)
    rows, idx = unknown_rows_stencil(image, unknown, eps)
    A, b = dirichlet_system(rows, idx, unknown.shape, known)
    del rows
    A, b, x0 = _with_prior(A, b, idx, prior_weight, prior_alpha)
    if boundary is not None:
        x0 = np.asarray(boundary, dtype=np.float64).reshape(-1)[idx]
    if check_cancel:
        check_cancel()
    x = _multigrid_solve(A, b, x0, image, idx, w, tol, check_cancel, report, stats, direct_size)
    alpha = known.astype(np.float32)
    alpha.reshape(-1)[idx] = np.clip(x, 0.0, 1.0)
    return alpha


def _on_padded(image, trimap, eps, tol, check_cancel, report, prior_weight, prior_alpha, stats, boundary,
               direct_size) -> np.ndarray:
    """closed_form_alpha of an image less than 3 pixels high or wide, its borders replicated."""
    h, w = trimap.shape
    ph, pw = max(0, 3 - h), max(0, 3 - w)
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    trimap = np.pad(trimap, ((0, ph), (0, pw)), mode="edge")
    if prior_weight is not None:  # padded pixels carry no prior: they are copies
        prior_weight = np.pad(prior_weight, ((0, ph), (0, pw)))
        prior_alpha = np.pad(prior_alpha, ((0, ph), (0, pw)))
    if boundary is not None:
        boundary = np.pad(boundary, ((0, ph), (0, pw)), mode="edge")
    return closed_form_alpha(image, trimap, eps, tol, check_cancel, report, prior_weight, prior_alpha,
                             stats, boundary, direct_size)[:h, :w]


def _with_prior(A, b, idx, prior_weight, prior_alpha):
    """(A, b, starting point) with the data term added: a diagonal and a right-hand side; the
    start is the prior's alpha where it has weight, 0.5 elsewhere."""
    x0 = np.full(idx.size, 0.5)
    if prior_weight is None:
        return A, b, x0
    pw = np.asarray(prior_weight, dtype=np.float64).reshape(-1)[idx]
    pa = np.asarray(prior_alpha, dtype=np.float64).reshape(-1)[idx]
    A = (A + sp.diags(pw, format="csr")).tocsr()
    A.sort_indices()
    return A, b + pw * pa, np.where(pw > 0, np.clip(pa, 0.0, 1.0), 0.5)


def _multigrid_solve(A, b, x0, image, idx, w, tol, check_cancel, report, stats, direct_size) -> np.ndarray:
    """The unknown pixels' alpha: CG preconditioned by the multigrid whose near-kernel is alpha
    affine in the colour (a constant and three channels)."""
    ys, xs = np.divmod(idx, w)
    colours = image.reshape(-1, 3)[idx]
    solver = MultigridSolver(A, ys, xs, np.column_stack([np.ones(idx.size), colours]),
                             direct_size=DIRECT_SIZE if direct_size is None else direct_size)
    if report:
        report(0.3)
    x = solver.solve(A, b, x0, tol=tol, max_iter=MAX_ITERATIONS, check_cancel=check_cancel,
                     report=(lambda i, n: report(0.3 + 0.7 * min(1.0, i / 20))) if report else None,
                     stats=stats)
    if not np.isfinite(x).all():
        raise FloatingPointError("the closed-form solve did not converge")
    return x
