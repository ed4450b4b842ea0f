"""Local re-solve of the classical engine: after a small trimap edit, only the changed pixels'
neighbourhood is solved again; everything else keeps the previous job's result.

    changed = the pixels whose trimap value differs from the previous job's
    inner   = their bounding box widened by ``reach``: its unknown pixels within ``reach`` of a
              changed pixel are solved again
    crop    = inner widened by MARGIN: colours for the K-to-U flow, trimming and the
              foreground; every other pixel is held at the previous solution (Dirichlet
              boundary values, which are also the solver's starting point), so a pixel farther
              than ``reach`` from the edit keeps its result exactly

The closed-form solution's response to a local change decays with distance (the K-to-U data
term makes it decay faster), so a neighbourhood of ``reach`` pixels reproduces a full solve of
the edited trimap within a few grey levels (bench/refine_rerun.py measures it). What the full
solve decides for the whole region is taken from the whole region, not the crop:
- the transparency decision: a small crop must not flip it;
- the scale: a job solved at 1/f size (coarse_to_fine.py) is re-solved at 1/f size too, on the
  same block grid, and carried back up the same way;
- the known patches trimming compares with (trimming.KnownPatchSet): the previous job's, with
  those the edit can change (within trimming's band of it) taken from the crop; the crop's
  own would miss the colours found elsewhere in the region, and trimming decides too much;
- the K-to-U flow's scale of positions (normalised by the crop's size in the flow).
With exact k-d searches (information_flow.py, trimming.py) these make the crop's priors the
full solve's, and the rest is the solver's tolerance (ClassicalEngine.tol).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...blocks import reduce_image, reduce_trimap, whole_blocks
from ...boxes import Box, area, hull, intersect, mask_bbox, relative, widen, width
from ...region import JobRegion
from ...trimaps.values import FOREGROUND, UNKNOWN
from ..base import Rerun
from .data_term import deep_unknown, information_flow, trimming
from .data_term.information_flow import SPATIAL
from .data_term.priors import alpha_priors, foreground_prior
from .foreground import estimate_foreground
from .scale.coarse_to_fine import carried_pixels, carry_up
from .solve.closed_form import closed_form_alpha

REACH = 96       # px around the changed pixels that are solved again (at the solve's scale)
# px of context around inner (at the solve's scale): deep_unknown's reach, so that no pixel of
# inner looks farther from the known ones than it is (the flow needs less)
MARGIN = deep_unknown.FAR + deep_unknown.WINDOW
# an edit whose neighbourhood exceeds this share of the previous region: a full run (from the
# cached image: a small layer's full solve costs little more than its local one, and is exact)
MAX_SHARE = 0.25
# windows start on the job's grid of the flow's sampled known pixels and shared-search blocks
ALIGN = math.lcm(information_flow.STRIDE, information_flow.GROUP_PX)
DIRECT_SIZE = 2000  # the local solve's coarsest level (multigrid.py's default factorises ~15k directly)


@dataclass(frozen=True)
class Solution:
    """What a finished classical job leaves for a local re-solve of the next one (the engine's
    rerun state; the server holds it without looking inside)."""
    trimap: np.ndarray   # the layer's trimap it was solved with (uint8 H x W)
    box: Box             # the region the engine solved
    alpha: np.ndarray    # the engine's float32 alpha of ``box`` (trimmed pixels 0 / 1)
    transparent: bool    # the engine's transparency decision for the whole region
    factor: int = 1      # the engine solved at 1/factor size (coarse_to_fine.py) ...
    grid: tuple[int, int] = (0, 0)  # ... on blocks whose corner is this layer pixel (row, column)
    known: trimming.KnownPatchSet | None = None  # trimming's known patches, at the solve's scale,
                                                 # positions from the grid's corner

    @property
    def nbytes(self) -> int:
        """What it holds beyond the job's result (whose trimap it shares)."""
        return self.alpha.nbytes + (self.known.nbytes if self.known is not None else 0)

    def alpha_in(self, window: Box, dtype=np.float64) -> np.ndarray:
        """The previous alpha over any window: the solved values inside ``box``, 0 / 1 outside."""
        out = (self.trimap[window] == FOREGROUND).astype(dtype)
        overlap = intersect(window, self.box)
        if overlap is not None:
            out[relative(overlap, window)] = self.alpha[relative(overlap, self.box)]
        return out


@dataclass(frozen=True)
class Window:
    """Where a local re-solve works, in layer pixels and at the solve's scale."""
    inner: Box                # the changed pixels' box widened by the reach: solved again
    crop: Box                 # inner widened by MARGIN: colour context, held at the previous solution
    corner: tuple[int, int]   # the crop's corner from the grid's, at the solve's scale
    reaches_known: Box | None  # trimming's known patches the edit can change, at the solve's scale
    spatial: tuple[float, float]  # the K-to-U flow's scale of positions: the whole region's
    reach_px: float           # layer pixels farther than this from every changed pixel keep their result

    @property
    def inner_in_crop(self) -> Box:
        return relative(self.inner, self.crop)

    @classmethod
    def around(cls, changed: Box, previous: Solution, shape, reach: int) -> "Window | None":
        """The window of an edit, or None when it would be too large a share of the region."""
        f = previous.factor
        inner = _on_grid(widen(changed, reach * f, shape), previous.grid, f * ALIGN, shape)
        if area(inner) > MAX_SHARE * area(previous.box):
            return None
        crop = _on_grid(widen(inner, MARGIN * f, shape), previous.grid, f * ALIGN, shape)
        corner = ((crop[0].start - previous.grid[0]) // f, (crop[1].start - previous.grid[1]) // f)
        reaches_known = intersect(_at_scale(changed, previous.grid, f, trimming.BAND + 1),
                                  _at_scale(hull(previous.box, inner), previous.grid, f, 0))
        # the flow's coordinates are normalised by the crop's size: scaled so that the small crop
        # has the whole region's
        spatial = (SPATIAL * width(crop, 1) / width(previous.box, 1),
                   SPATIAL * width(crop, 0) / width(previous.box, 0))
        return cls(inner, crop, corner, reaches_known, spatial, reach * f)

    def held(self, previous: Solution, trimap: np.ndarray) -> np.ndarray:
        """The crop's pixels that keep the previous solution: outside inner, and inside it those
        farther than the reach from every changed pixel (a local edit stays local: a disc
        around the edit, not the corners of its box, is solved again)."""
        changed = previous.trimap[self.crop] != trimap[self.crop]
        held = ndimage.distance_transform_edt(~changed) > self.reach_px
        outside = np.ones(held.shape, bool)
        outside[self.inner_in_crop] = False
        return held | outside


def changed_box(previous: Solution, trimap: np.ndarray) -> Box | None:
    """Bounding box of the pixels whose trimap value changed; None if none did."""
    return mask_bbox(previous.trimap != trimap, 0)


def resolve_locally(engine, image: np.ndarray, trimap: np.ndarray, previous: Solution, changed: Box,
                    foreground: np.ndarray, alpha: np.ndarray, check_cancel=None,
                    reach: int = REACH) -> Rerun | None:
    """The edited trimap's result, or None when the edit is too large; outside the returned
    ``changed`` box the result is the previous one.

    ``image`` is the layer at its own depth, ``trimap`` the new one, ``foreground`` / ``alpha``
    the previous job's whole-image result (not modified: copies are returned). ``engine`` is
    the ClassicalEngine whose parameters the previous job used.
    """
    window = Window.around(changed, previous, trimap.shape, reach)
    if window is None:
        return None
    stats = {}
    t0 = time.perf_counter()
    img, tri = JobRegion(image, trimap, window.crop).engine_inputs()
    held = window.held(previous, trimap)
    new_alpha, new_fg, known = _solve_inner(engine, img, tri, previous, window, held, check_cancel, stats)
    inner, inside = window.inner, window.inner_in_crop
    fg_out, alpha_out = foreground.copy(), alpha.copy()
    JobRegion(image, trimap, inner).paste_into(fg_out, alpha_out, new_fg[inside], new_alpha[inside])
    keep = held[inside]  # the held pixels' result is the previous one, foreground colours included
    fg_out[inner][keep], alpha_out[inner][keep] = foreground[inner][keep], alpha[inner][keep]
    # the next edit starts from this one: the solved region grows to cover inner if need be
    box = hull(previous.box, inner)
    solved = previous.alpha_in(box, np.float32)
    solved[relative(inner, box)] = new_alpha[inside]
    stats.update(local=True, inner=area(inner), seconds=time.perf_counter() - t0)
    solution = Solution(trimap, box, solved, previous.transparent, previous.factor, previous.grid, known)
    return Rerun(fg_out, alpha_out, inner, solution, stats)


def _solve_inner(engine, img, tri, previous: Solution, window: Window, held, check_cancel, stats):
    """(alpha, foreground, trimming's known patches after the edit) of the window's crop: the
    pixels near the edit solved again at the previous job's scale, the ``held`` ones at the
    previous alpha."""
    start = previous.alpha_in(window.crop)         # boundary values and starting point
    f = previous.factor
    if not (tri[window.inner_in_crop] == UNKNOWN).any():
        # nothing to solve near the edit; the known patches are updated all the same
        known = None
        if previous.known is not None:
            img_s, tri_s = (reduce_image(img, f), reduce_trimap(tri, f)) if f > 1 else (img, tri)
            known = _known_after_edit(previous.known, trimming.patches_near_unknown(img_s, tri_s).known,
                                      window.corner, window.reaches_known)
        return start, img, known
    if f == 1:
        return _solve_window(engine, img, tri, held, start, previous, window, check_cancel, stats)
    # at the previous job's scale: reduced, solved, carried up as coarse_to_fine does
    coarse_img, coarse_tri = reduce_image(img, f), reduce_trimap(tri, f)
    coarse_start = reduce_image(start[..., None], f)[..., 0].astype(np.float64)
    background = np.zeros_like(coarse_img)
    alpha_c, fg_c, known = _solve_window(engine, coarse_img.copy(), coarse_tri, whole_blocks(held, f),
                                         coarse_start, previous, window, check_cancel, stats, background)
    alpha = carry_up(img, tri, coarse_img, alpha_c, fg_c, background, f)
    alpha[held] = start[held]  # carried up from the coarse solve, a held pixel would move a little
    return alpha, img, known


def _solve_window(engine, img, tri, held, start, previous: Solution, window: Window, check_cancel, stats,
                  background=None):
    """(alpha, foreground, trimming's known patches after the edit) of a window whose ``held``
    pixels keep ``start`` (boundary values and starting point); ``background``: receives the
    background estimate (the window's unknown pixels and one pixel around them) when given."""
    t0 = time.perf_counter()
    patches = known = None  # without the region's known patches (no trimming): alpha_priors decides
    if previous.known is not None:  # trimming compares with the whole region's known patches
        patches = trimming.patches_near_unknown(img, tri)
        known = _known_after_edit(previous.known, patches.known, window.corner, window.reaches_known)
        patches = patches._replace(known=known.shifted(-window.corner[0], -window.corner[1]))
    priors = alpha_priors(img, tri, engine.sigma, engine.trim, transparent=previous.transparent,
                          spatial=window.spatial, patches=patches)
    solve_trimap = priors.trimap.copy()
    decided = ~held & (solve_trimap != UNKNOWN)
    start[decided] = solve_trimap[decided] == FOREGROUND   # painted or trimmed pixels: 0 / 1
    solve_trimap[held & (solve_trimap == UNKNOWN)] = FOREGROUND  # any known value: start holds it
    stats["priors"] = time.perf_counter() - t0
    # its own coarsest level: a neighbourhood has a few thousand unknowns, which the default
    # would factorise directly (~0.7 s here); two levels over a small direct solve take ~0.05 s
    alpha = closed_form_alpha(img, solve_trimap, engine.eps, engine.tol, check_cancel, None, priors.weight,
                              priors.alpha, stats, boundary=start, direct_size=DIRECT_SIZE)
    stats["solve"] = time.perf_counter() - t0
    where = None if background is None else carried_pixels(tri)
    fg = estimate_foreground(img, alpha, check_cancel=check_cancel, prior=foreground_prior(img, priors.flow),
                             where=where, background=background)
    stats["foreground"] = time.perf_counter() - t0
    return alpha, fg, known


def _known_after_edit(known: trimming.KnownPatchSet, window: trimming.KnownPatchSet, corner, reach: Box):
    """The previous job's known patches with those in ``reach`` (the pixels within trimming's
    band of the edit: only their membership can change) taken from the window's own set
    (``window``: positions from the window's corner at ``corner``)."""
    return known if reach is None else known.replaced(reach, window.shifted(*corner))


def _at_scale(box: Box, grid: tuple[int, int], f: int, margin: int) -> Box:
    """``box`` (layer pixels) as the blocks of the 1/f grid at ``grid`` that it touches, widened
    by ``margin`` blocks (positions from the grid's corner)."""
    return (slice((box[0].start - grid[0]) // f - margin, -((grid[0] - box[0].stop) // f) + margin),
            slice((box[1].start - grid[1]) // f - margin, -((grid[1] - box[1].stop) // f) + margin))


def _on_grid(box: Box, grid: tuple[int, int], f: int, shape) -> Box:
    """``box`` widened to whole f x f blocks of the grid whose corner is ``grid`` (within the layer)."""
    (r0, r1), (c0, c1) = (box[0].start, box[0].stop), (box[1].start, box[1].stop)
    r0 = grid[0] + (r0 - grid[0]) // f * f
    c0 = grid[1] + (c0 - grid[1]) // f * f
    r1 = grid[0] - (grid[0] - r1) // f * f
    c1 = grid[1] - (grid[1] - c1) // f * f
    return slice(max(r0, 0), min(r1, shape[0])), slice(max(c0, 0), min(c1, shape[1]))


