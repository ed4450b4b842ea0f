"""Local re-solve of the classical engine: after a small trimap edit, only the changed pixels'
neighbourhood is solved again; everything else keeps the previous job's result.

    changed = the pixels whose trimap value differs from the previous job's
    inner   = their bounding box widened by ``reach``: its unknown pixels are solved again
    crop    = inner widened by the engine's context margin: colours for the K-to-U flow,
              trimming and the foreground; the pixels outside inner are held at the previous
              solution (Dirichlet boundary values), which is also the solver's starting point

The closed-form solution's response to a local change decays with distance (the K-to-U data
term makes it decay faster), so a neighbourhood of ``reach`` pixels reproduces a full solve of
the edited trimap within a fraction of a grey level (bench/refine_rerun.py measures it). The
transparency decision is the whole job's, not the crop's: a small crop must not flip it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..region import FOREGROUND, UNKNOWN, JobRegion, mask_bbox
from .closed_form import dirichlet_system, unknown_rows_stencil
from .foreground import estimate_foreground
from .information_flow import SPATIAL
from .priors import alpha_priors, foreground_prior

REACH = 48       # px around the changed pixels that are solved again
MAX_SHARE = 0.25  # an edit whose neighbourhood exceeds this share of the previous region: a full run
DIRECT_SIZE = 2000  # the local solve's coarsest level (multigrid.py's default factorises ~15k directly)


Box = tuple[slice, slice]


@dataclass(frozen=True)
class Solution:
    """What a finished classical job leaves for a local re-solve of the next one."""
    trimap: np.ndarray   # the layer's trimap it was solved with (uint8 H x W)
    box: Box             # the region the engine solved
    alpha: np.ndarray    # the engine's float32 alpha of ``box`` (trimmed pixels 0 / 1)
    transparent: bool    # the engine's transparency decision for the whole region

    @property
    def nbytes(self) -> int:
        return self.trimap.nbytes + self.alpha.nbytes

    def alpha_in(self, window: Box, dtype=np.float64) -> np.ndarray:
        """The previous alpha over any window: the solved values inside ``box``, 0 / 1 outside."""
        out = (self.trimap[window] == FOREGROUND).astype(dtype)
        overlap = _intersect(window, self.box)
        if overlap is not None:
            out[_relative(overlap, window)] = self.alpha[_relative(overlap, self.box)]
        return out


def changed_box(previous: Solution, trimap: np.ndarray) -> Box | None:
    """Bounding box of the pixels whose trimap value changed; None if none did."""
    return mask_bbox(previous.trimap != trimap, 0)


def resolve_locally(engine, image: np.ndarray, trimap: np.ndarray, previous: Solution, changed: Box,
                    foreground: np.ndarray, alpha: np.ndarray, check_cancel=None, reach: int = REACH):
    """(foreground, alpha, solution, box) of the edited trimap, or None when the edit is too large;
    outside ``box`` the result is the previous one.

    ``image`` is the layer at its own depth, ``trimap`` the new one, ``foreground`` / ``alpha``
    the previous job's whole-image result (not modified: copies are returned). ``engine`` is
    the ClassicalEngine whose parameters the previous job used.
    """
    h, w = trimap.shape
    inner = _widen(changed, reach, h, w)
    if _area(inner) > MAX_SHARE * _area(previous.box):
        return None
    crop = _widen(inner, engine.context_margin, h, w)
    inner_in_crop = _relative(inner, crop)
    stats = {}
    t0 = time.perf_counter()
    img, tri = JobRegion(image, trimap, crop).engine_inputs()
    held = np.ones(tri.shape, bool)
    held[inner_in_crop] = False                    # outside inner: the previous solution
    start = previous.alpha_in(crop)                # boundary values and starting point
    if (tri[inner_in_crop] == UNKNOWN).any():
        # the flow's coordinates are normalised by the crop's size: scaled so that the small crop
        # has the whole region's (bench: near the edit, the mean difference from a full solve halves)
        spatial = SPATIAL * (_area(crop) / _area(previous.box)) ** 0.5
        priors = alpha_priors(img, tri, engine.sigma, engine.trim, transparent=previous.transparent, spatial=spatial)
        solve_trimap = priors.trimap.copy()
        decided = ~held & (solve_trimap != UNKNOWN)
        start[decided] = solve_trimap[decided] == FOREGROUND   # painted or trimmed pixels: 0 / 1
        solve_trimap[held & (solve_trimap == UNKNOWN)] = FOREGROUND  # any known value: start holds it
        stats["priors"] = time.perf_counter() - t0
        new_alpha = _solve(img, solve_trimap, start, priors, engine, check_cancel, stats)
        stats["solve"] = time.perf_counter() - t0
        new_fg = estimate_foreground(img, new_alpha, check_cancel=check_cancel,
                                     prior=foreground_prior(img, priors.flow))
        stats["foreground"] = time.perf_counter() - t0
    else:  # the edit left no unknown pixel nearby: nothing to solve
        new_alpha, new_fg = start, img
    fg_out, alpha_out = foreground.copy(), alpha.copy()
    JobRegion(image, trimap, inner).paste_into(fg_out, alpha_out, new_fg[inner_in_crop], new_alpha[inner_in_crop])
    # the next edit starts from this one: the solved region grows to cover inner if need be
    box = _hull(previous.box, inner)
    solved = previous.alpha_in(box, np.float32)
    solved[_relative(inner, box)] = new_alpha[inner_in_crop]
    engine.last_stats = dict(stats, local=True, inner=(_area(inner)), seconds=time.perf_counter() - t0)
    return fg_out, alpha_out, Solution(trimap, box, solved, previous.transparent), inner


def _solve(img, trimap, start, priors, engine, check_cancel, stats) -> np.ndarray:
    """closed_form_alpha's system with ``start`` as the known pixels' values and the starting point.

    Its own solver set-up: a neighbourhood has a few thousand unknowns, which closed_form_alpha
    would factorise directly (its coarsest level: ~0.7 s here); two multigrid levels over a
    small direct solve take a few tens of milliseconds."""
    from .multigrid import MultigridSolver
    unknown = trimap == UNKNOWN
    rows, idx = unknown_rows_stencil(img, unknown, engine.eps)
    known = np.where(unknown, 0.0, start)
    A, b = dirichlet_system(rows, idx, unknown.shape, known)
    if priors.weight is not None:
        pw, pa = priors.weight.reshape(-1)[idx], priors.alpha.reshape(-1)[idx]
        A = (A + sp.diags(pw, format="csr")).tocsr()
        A.sort_indices()
        b = b + pw * pa
    ys, xs = np.divmod(idx, unknown.shape[1])
    solver = MultigridSolver(A, ys, xs, np.column_stack([np.ones(idx.size), img.reshape(-1, 3)[idx]]),
                             direct_size=DIRECT_SIZE)
    x = solver.solve(A, b, start.reshape(-1)[idx], tol=engine.tol, check_cancel=check_cancel, stats=stats)
    if not np.isfinite(x).all():
        raise FloatingPointError("the local closed-form solve did not converge")
    alpha = known.ravel()
    alpha[idx] = np.clip(x, 0.0, 1.0)
    return alpha.reshape(unknown.shape)


def _widen(box: Box, margin: int, h: int, w: int) -> Box:
    rows, cols = box
    return (slice(max(rows.start - margin, 0), min(rows.stop + margin, h)),
            slice(max(cols.start - margin, 0), min(cols.stop + margin, w)))


def _area(box: Box) -> int:
    return (box[0].stop - box[0].start) * (box[1].stop - box[1].start)


def _intersect(a: Box, b: Box) -> Box | None:
    r0, r1 = max(a[0].start, b[0].start), min(a[0].stop, b[0].stop)
    c0, c1 = max(a[1].start, b[1].start), min(a[1].stop, b[1].stop)
    return (slice(r0, r1), slice(c0, c1)) if r0 < r1 and c0 < c1 else None


def _hull(a: Box, b: Box) -> Box:
    return (slice(min(a[0].start, b[0].start), max(a[0].stop, b[0].stop)),
            slice(min(a[1].start, b[1].start), max(a[1].stop, b[1].stop)))


def _relative(inner: Box, outer: Box) -> Box:
    """``inner`` in the coordinates of ``outer`` (which contains it)."""
    return (slice(inner[0].start - outer[0].start, inner[0].stop - outer[0].start),
            slice(inner[1].start - outer[1].start, inner[1].stop - outer[1].start))
