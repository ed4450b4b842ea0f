"""Conjugate gradients preconditioned by an aggregation multigrid V-cycle, for systems
whose unknowns are image pixels (any subset of the grid) coupled within a 5x5 stencil,
such as the matting Laplacian.

Why aggregation with several candidate vectors: with a small epsilon the matting
Laplacian is nearly zero on every function that is locally affine in the colour
(alpha = a^T I + b), not only on constants.  Bilinear or coefficient-weighted
interpolation cannot represent those, and CG then needs 50-100 iterations.  Here each
coarse node is a block of pixels carrying up to 4 unknowns that span the candidates
[1, R, G, B] restricted to the block (orthonormalised per block: the tentative
prolongator of smoothed aggregation, Vanek, Mandel, Brezina 1996, with the colour
channels as near-kernel vectors).  Coarse operators are Galerkin products R A P.

The smoother is multicolour Gauss-Seidel: unknowns that can never be coupled share a
colour and are updated together with one sparse product (pixels: (y mod 3, x mod 3) for
the 5x5 stencil; coarse nodes couple only with adjacent nodes: (Y mod 2, X mod 2,
candidate)).  Forward sweeps before and backward sweeps after the coarse correction
keep the preconditioner symmetric, as CG needs.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

DIRECT_SIZE = 15000  # unknowns at which the coarsest level is factorised directly
FIRST_BLOCK = 5      # pixels per side of a first-level aggregate (coupling radius 2 < 5)
BLOCK = 2            # nodes per side of a coarser aggregate (coupling radius 1 < 2)
DROP = 1e-4          # candidate directions weaker than this (relative) are dropped


def _tentative(ny, nx, cand, block):
    """Aggregate nodes in block x block tiles; per tile an orthonormal basis of the
    candidates.  Returns P, the coarse nodes' tile coordinates, coarse candidates and the
    candidate index of each coarse unknown."""
    n, nc = cand.shape
    key = (ny // block) * (int(nx.max()) // block + 2) + nx // block
    order = np.argsort(key, kind="stable")
    tiles, start, counts = np.unique(key[order], return_index=True, return_counts=True)
    nt = tiles.size
    slot = np.arange(n) - np.repeat(start, counts)
    tile_of = np.repeat(np.arange(nt), counts)
    stacked = np.zeros((nt, int(counts.max()), nc))
    stacked[tile_of, slot] = cand[order]
    Q, R, kept = _orthonormalise(stacked)
    ti, j = np.nonzero(kept)
    col_of = np.full((nt, nc), -1, dtype=np.int64)
    col_of[ti, j] = np.arange(ti.size)
    rows, cols, vals = [], [], []
    for jj in range(nc):
        ok = kept[tile_of, jj]
        rows.append(order[ok])
        cols.append(col_of[tile_of[ok], jj])
        vals.append(Q[tile_of[ok], slot[ok], jj])
    P = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, ti.size))
    # the fine candidates seen from the coarse unknowns: Q^T B = R
    coarse_cand = R[ti, j, :]
    first = order[start]  # any member gives the tile coordinates
    return P, ny[first][ti] // block, nx[first][ti] // block, coarse_cand, j


def _orthonormalise(B: np.ndarray):
    """Batched Gram-Schmidt (two passes) of the columns of B (tiles x rows x k): Q, R, kept.

    Vectorised across tiles instead of one LAPACK call per tile; a column whose remainder
    is below DROP of its own norm (a flat tile's colour) is dropped."""
    nt, m, k = B.shape
    Q = np.zeros_like(B)
    R = np.zeros((nt, k, k))
    kept = np.zeros((nt, k), bool)
    for c in range(k):
        v = B[:, :, c].copy()
        size = np.sqrt(np.einsum("tm,tm->t", v, v))
        for _ in range(2):
            for j in range(c):
                coef = np.einsum("tm,tm->t", Q[:, :, j], v)
                v -= coef[:, None] * Q[:, :, j]
                R[:, j, c] += coef
        norm = np.sqrt(np.einsum("tm,tm->t", v, v))
        ok = norm > DROP * size
        Q[:, :, c] = np.where(ok[:, None], v / np.where(ok, norm, 1.0)[:, None], 0.0)
        R[:, c, c] = np.where(ok, norm, 0.0)
        kept[:, c] = ok
    return Q, R, kept


class _Level:
    def __init__(self, A, colour, dtype):
        # the V-cycle is only a preconditioner: single precision halves its memory traffic.
        # A is kept only as its colour groups' rows (together they are A: no second copy)
        inv_diag = (1.0 / A.diagonal()).astype(dtype)
        self.groups = []
        for c in np.unique(colour):
            g = np.flatnonzero(colour == c)
            self.groups.append((g, A[g].astype(dtype), inv_diag[g]))
        self.P = self.R = None

    @staticmethod
    def sweep(x, b, groups):
        for g, Ag, dinv in groups:
            x[g] += (b[g] - Ag @ x) * dinv

    def residual(self, x, b):
        r = np.empty_like(b)
        for g, Ag, _ in self.groups:
            r[g] = b[g] - Ag @ x
        return r


def _dot(a, b) -> float:
    # einsum, not BLAS: a threaded BLAS dot wakes its thread pool, ~1 ms per call under load
    return float(np.einsum("i,i->", a, b))


def _norm(a) -> float:
    return _dot(a, a) ** 0.5


class MultigridSolver:
    """V-cycle preconditioned CG for an SPD matrix ``A`` over pixels at (ys, xs) whose
    near-kernel is spanned by the columns of ``candidates`` (n x k, e.g. [1, R, G, B])."""

    def __init__(self, A: sp.csr_matrix, ys: np.ndarray, xs: np.ndarray, candidates: np.ndarray,
                 direct_size: int = DIRECT_SIZE, dtype=np.float32):
        if not A.has_canonical_format:
            A = sp.csr_matrix(A)
            A.sum_duplicates()
        self.levels: list[_Level] = []
        ny, nx, cand = ys, xs, np.asarray(candidates, dtype=np.float64)
        colour = (ny % 3) * 3 + nx % 3
        block = FIRST_BLOCK
        while A.shape[0] > direct_size:
            P, ny, nx, cand, k = _tentative(ny, nx, cand, block)
            if P.shape[1] >= 0.8 * A.shape[0]:  # coarsening stalled
                break
            level = _Level(A, colour, dtype)
            level.P, level.R = P.astype(dtype), P.T.tocsr().astype(dtype)
            self.levels.append(level)
            A = (P.T.tocsr() @ A @ P).tocsr()
            colour = ((ny % 2) * 2 + nx % 2) * cand.shape[1] + k
            block = BLOCK
        self.coarse = sla.splu(sp.csc_matrix(A))

    def precondition(self, r: np.ndarray) -> np.ndarray:
        dtype = self.levels[0].groups[0][1].dtype if self.levels else r.dtype
        return self.vcycle(r.astype(dtype)).astype(np.float64)

    def vcycle(self, b: np.ndarray, k: int = 0) -> np.ndarray:
        if k == len(self.levels):
            return self.coarse.solve(b.astype(np.float64)).astype(b.dtype)
        lv = self.levels[k]
        x = np.zeros_like(b)
        lv.sweep(x, b, lv.groups)
        x += lv.P @ self.vcycle(lv.R @ lv.residual(x, b), k + 1)
        lv.sweep(x, b, lv.groups[::-1])
        return x

    def solve(self, A, b, x0=None, tol: float = 1e-4, max_iter: int = 200, check_cancel=None, report=None,
              stats: dict | None = None):
        """x with |b - A x| <= tol |b|; ``report(i, max_iter)`` and cancel checks every 2 iterations;
        ``stats["iterations"]`` receives the number of CG iterations."""
        x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=np.float64)
        nb = _norm(b)
        if nb == 0:
            return np.zeros_like(b)
        r = b - A @ x
        z = self.precondition(r)
        p = z.copy()
        rz = _dot(r, z)
        done = 0
        for i in range(max_iter):
            if _norm(r) <= tol * nb:
                break
            done = i + 1
            Ap = A @ p
            curvature = _dot(p, Ap)
            if not curvature > 0.0:  # breakdown (rounding on a nearly singular system): keep x
                break
            step = rz / curvature
            x += step * p
            r -= step * Ap
            z = self.precondition(r)
            rz_new = _dot(r, z)
            p *= rz_new / rz
            p += z
            rz = rz_new
            if i % 2 == 1:
                if check_cancel is not None:
                    check_cancel()
                if report is not None:
                    report(i, max_iter)
        if stats is not None:
            stats["iterations"] = done
        return x
