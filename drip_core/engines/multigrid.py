"""Conjugate gradients preconditioned by a geometric multigrid V-cycle, for systems whose
unknowns are pixels of an image (any subset of the grid) coupled within a 5x5 stencil.

Coarse grids take every second pixel; prolongation is bilinear; coarse operators are
Galerkin products R A P, so the hierarchy follows the matting Laplacian's coefficients
(Lee and Wu, "Scalable matting", 2014, use the same V-cycle).  The smoother is a
multicolour Gauss-Seidel sweep: pixels whose (y mod 3, x mod 3) agree are never coupled
in a 5x5 stencil (Galerkin coarse operators keep that width), so each of the 9 colours
is updated at once with one sparse product.  Forward sweeps before and backward sweeps
after the coarse correction keep the preconditioner symmetric, as CG needs.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

DIRECT_SIZE = 2500  # unknowns at which the coarsest level is factorised directly


def _prolongation(ys: np.ndarray, xs: np.ndarray):
    """Bilinear interpolation from the coarse grid (even pixels) onto the pixels (ys, xs).

    Returns P (n_fine x n_coarse) and the coarse pixels' coordinates."""
    n = ys.size
    rows, cols, vals = [], [], []
    cw = int(xs.max()) // 2 + 2
    ry, rx = ys % 2, xs % 2
    for oy in (0, 1):
        for ox in (0, 1):
            # an even coordinate sits on a coarse pixel (weight 1); an odd one between two (1/2 each)
            wy = np.where(ry == 1, 0.5, 1.0 - oy)
            wx = np.where(rx == 1, 0.5, 1.0 - ox)
            wgt = wy * wx
            keep = wgt > 0
            rows.append(np.flatnonzero(keep))
            cols.append(((ys // 2 + oy * ry) * cw + (xs // 2 + ox * rx))[keep])
            vals.append(wgt[keep])
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    coarse, cols = np.unique(cols, return_inverse=True)
    P = sp.csr_matrix((vals, (rows, cols)), shape=(n, coarse.size))
    return P, coarse // cw, coarse % cw


class _Level:
    def __init__(self, A, ys, xs):
        self.A = A
        inv_diag = 1.0 / A.diagonal()
        colour = (ys % 3) * 3 + xs % 3
        self.groups = []
        for c in range(9):
            g = np.flatnonzero(colour == c)
            if g.size:
                self.groups.append((g, A[g], inv_diag[g]))
        self.P = self.R = None

    def sweep(self, x, b, groups):
        for g, Ag, dinv in groups:
            x[g] += (b[g] - Ag @ x) * dinv


class MultigridSolver:
    """V-cycle preconditioned CG for an SPD matrix ``A`` over pixels at (ys, xs)."""

    def __init__(self, A: sp.csr_matrix, ys: np.ndarray, xs: np.ndarray, direct_size: int = DIRECT_SIZE):
        A = sp.csr_matrix(A)
        A.sum_duplicates()
        self.levels: list[_Level] = []
        while A.shape[0] > direct_size:
            level = _Level(A, ys, xs)
            P, ys, xs = _prolongation(ys, xs)
            if P.shape[1] >= A.shape[0]:  # nothing left to coarsen
                break
            level.P, level.R = P, P.T.tocsr()
            self.levels.append(level)
            A = (level.R @ A @ P).tocsr()
        self.coarse = sla.splu(sp.csc_matrix(A))

    def vcycle(self, b: np.ndarray, k: int = 0) -> np.ndarray:
        if k == len(self.levels):
            return self.coarse.solve(b)
        lv = self.levels[k]
        x = np.zeros_like(b)
        lv.sweep(x, b, lv.groups)
        x += lv.P @ self.vcycle(lv.R @ (b - lv.A @ x), k + 1)
        lv.sweep(x, b, lv.groups[::-1])
        return x

    def solve(self, A, b, x0=None, tol: float = 1e-4, max_iter: int = 300, check_cancel=None, report=None):
        """x with |b - A x| <= tol |b|; ``report(i, max_iter)`` and cancel checks every 5 iterations."""
        x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=np.float64)
        nb = np.linalg.norm(b)
        if nb == 0:
            return np.zeros_like(b)
        r = b - A @ x
        z = self.vcycle(r)
        p = z.copy()
        rz = r @ z
        for i in range(max_iter):
            if np.linalg.norm(r) <= tol * nb:
                break
            Ap = A @ p
            step = rz / (p @ Ap)
            x += step * p
            r -= step * Ap
            z = self.vcycle(r)
            rz_new = r @ z
            p *= rz_new / rz
            p += z
            rz = rz_new
            if i % 5 == 4:
                if check_cancel is not None:
                    check_cancel()
                if report is not None:
                    report(i, max_iter)
        return x
