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

The previous result is the rerun's starting point and its prior, so that a correct hint never
collapses a region (issue 23's buckle, tests/test_refine_ring.py), except where the edit says
that result was wrong: a changed pixel painted against its previous alpha puts the whole side
(alpha above or below 1/2) it is connected to in doubt (in_doubt), where coloured like the
painted pixels. Outside that doubt the pixels
the previous job decided (alpha exactly 0 or 1) stay decided (decided_pixels), and the others are
pulled towards their previous alpha by a data term that is nil on the changed pixels and grows
with the distance from them (previous_prior); in doubt the crop is solved afresh. Every brush
edit is re-solved locally, however large a share of the region its neighbourhood is (a full
solve would move pixels anywhere); only a new band is run in full (is_new_band).

A stroke painted over known pixels (black or grey on white, white or grey on black) also says the
trimap was wrong there, and a rough lasso's mistakes repeat nearby in the same colours (holes in
hair taken as solid): the known pixels of that side near the stroke and coloured like it are
solved as unknown too (reopened), and stay so in later reruns until painted (Solution.reopened).
The same mistake just beyond the reopening radius is not trimming's evidence for its side in
that rerun (suspect_known): its patches would veto every decision in the stroke's colours.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ...blocks import any_blocks, expand_blocks, reduce_image, reduce_trimap, whole_blocks
from ...boxes import Box, area, hull, intersect, mask_bbox, relative, widen, width
from ...region import JobRegion
from ...trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN
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
# a trimap whose known->unknown and unknown->known changes both exceed this share of the previous
# unknown pixels is a new band (a new selection: 8-30 % on the simulated lasso's seeds), not an edit
NEW_BAND = 0.05
# weight of the previous alpha as a data term (the rerun's prior), at REACH and beyond from the
# changed pixels; it grows linearly from 0 on them (see previous_prior)
PREVIOUS = 0.03
# windows start on the job's grid of the flow's sampled known pixels and shared-search blocks
ALIGN = math.lcm(information_flow.STRIDE, information_flow.GROUP_PX)
DIRECT_SIZE = 2000  # the local solve's coarsest level (multigrid.py's default factorises ~15k directly)
# a stroke painted over known pixels (black or grey on white, white or grey on black) reopens the
# known pixels of that side within REOPEN px (at the solve's scale) whose colour is within
# REOPEN_COLOUR (RGB distance, 0-1) of a painted pixel's (see reopened)
REOPEN = 48
REOPEN_COLOUR = 0.06
REOPEN_BLACK = REACH  # the same for black on white: holes in hair or foliage come in numbers
REOPEN_GREY = 32  # the same for grey (px): grey says "unsure", not "the other side"
REOPEN_RADIUS = {BACKGROUND: REOPEN_BLACK, FOREGROUND: REOPEN, UNKNOWN: REOPEN_GREY}  # by the paint
REOPEN_RIM = 3  # px around the matched pixels reopened with them
REOPEN_SAMPLES = 4096  # painted colours compared with, at most (an even subsample of a large stroke)


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
    reopened: np.ndarray | None = None  # flat indices of the known pixels earlier strokes reopened
                                        # (solved as unknown; see reopened)

    @property
    def nbytes(self) -> int:
        """What it holds beyond the job's result (whose trimap it shares)."""
        return (self.alpha.nbytes + (self.known.nbytes if self.known is not None else 0)
                + (self.reopened.nbytes if self.reopened is not None else 0))

    def reopened_in(self, window: Box) -> np.ndarray:
        """Over ``window``: the known pixels strokes reopened (the engine solved them as unknown)."""
        out = np.zeros(self.trimap[window].shape, bool)
        if self.reopened is not None and self.reopened.size:
            rows, cols = np.unravel_index(self.reopened, self.trimap.shape)
            inside = ((rows >= window[0].start) & (rows < window[0].stop)
                      & (cols >= window[1].start) & (cols < window[1].stop))
            out[rows[inside] - window[0].start, cols[inside] - window[1].start] = True
        return out

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
    def around(cls, changed: Box, previous: Solution, shape, reach: int, spread: int = 0) -> "Window":
        """The window of an edit, whatever its size: even on a small layer, where the window is
        most of the region, a rerun keeps the user's result beyond the reach (a full solve moves
        pixels anywhere: docs/lab-notes.md, "The refine loop: a simulated user"); ``spread``: px
        (at the solve's scale) around the edit where it may reopen known pixels."""
        f = previous.factor
        inner = _on_grid(widen(changed, reach * f, shape), previous.grid, f * ALIGN, shape)
        crop = _on_grid(widen(inner, MARGIN * f, shape), previous.grid, f * ALIGN, shape)
        corner = ((crop[0].start - previous.grid[0]) // f, (crop[1].start - previous.grid[1]) // f)
        reaches_known = intersect(_at_scale(widen(changed, spread * f, shape), previous.grid, f,
                                            trimming.BAND + 1),
                                  _at_scale(hull(previous.box, inner), previous.grid, f, 0))
        # the flow's coordinates are normalised by the crop's size: scaled so that the small crop
        # has the whole region's
        spatial = (SPATIAL * width(crop, 1) / width(previous.box, 1),
                   SPATIAL * width(crop, 0) / width(previous.box, 0))
        return cls(inner, crop, corner, reaches_known, spatial, reach * f)

    def distance(self, previous: Solution, trimap: np.ndarray) -> np.ndarray:
        """Per crop pixel, the distance (layer px) to the nearest changed pixel."""
        return ndimage.distance_transform_edt(previous.trimap[self.crop] == trimap[self.crop])

    def held(self, previous: Solution, trimap: np.ndarray, distance: np.ndarray | None = None) -> np.ndarray:
        """The crop's pixels that keep the previous solution: outside inner, and inside it those
        farther than the reach from every changed pixel (a local edit stays local: a disc
        around the edit, not the corners of its box, is solved again); ``distance``: the
        crop's ``distance`` when already made."""
        held = (self.distance(previous, trimap) if distance is None else distance) > self.reach_px
        outside = np.ones(held.shape, bool)
        outside[self.inner_in_crop] = False
        return held | outside


def changed_box(previous: Solution, trimap: np.ndarray) -> Box | None:
    """Bounding box of the pixels whose trimap value changed; None if none did."""
    return mask_bbox(previous.trimap != trimap, 0)


def is_new_band(previous: Solution, trimap: np.ndarray) -> bool:
    """Whether ``trimap`` is a new band rather than an edit of the previous one: the unknown
    region both grew and shrank by more than NEW_BAND of it (a new selection moves the band's
    two edges everywhere; a brush stroke only paints one value). A new band is a new job: run in
    full, not held at the previous result."""
    before, after = previous.trimap == UNKNOWN, trimap == UNKNOWN
    grew, shrank = np.count_nonzero(after & ~before), np.count_nonzero(before & ~after)
    return min(grew, shrank) > NEW_BAND * np.count_nonzero(before)


def resolve_locally(engine, image: np.ndarray, trimap: np.ndarray, previous: Solution, changed: Box,
                    foreground: np.ndarray, alpha: np.ndarray, check_cancel=None,
                    reach: int = REACH, previous_weight: float = PREVIOUS,
                    keep_decided: bool = True) -> Rerun:
    """The edited trimap's result; outside the returned ``changed`` box the result is the
    previous one.

    ``image`` is the layer at its own depth, ``trimap`` the new one, ``foreground`` / ``alpha``
    the previous job's whole-image result (not modified: copies are returned). ``engine`` is
    the ClassicalEngine whose parameters the previous job used.
    """
    window = Window.around(changed, previous, trimap.shape, reach, max(REOPEN_RADIUS.values()))
    stats = {}
    t0 = time.perf_counter()
    img, _ = JobRegion(image, trimap, window.crop).engine_inputs()
    tri = _solved_trimap(previous, trimap, window.crop)
    fresh = reopened(previous, trimap, window.crop, img)
    tri[fresh] = UNKNOWN
    stats["reopened"] = int(np.count_nonzero(fresh))
    suspect = suspect_known(previous, trimap, window.crop, img, fresh)
    distance = window.distance(previous, trimap)
    held = window.held(previous, trimap, distance)
    doubt = in_doubt(previous, trimap, window.crop, img)
    if keep_decided:
        held |= decided_pixels(previous, trimap, window.crop) & ~doubt
    prior = previous_prior(distance, window.reach_px, previous_weight) * ~doubt
    new_alpha, new_fg, known = _solve_inner(engine, img, tri, previous, window, held, prior, check_cancel,
                                            stats, suspect)
    inner, inside = window.inner, window.inner_in_crop
    fg_out, alpha_out = foreground.copy(), alpha.copy()
    open_now = (tri == UNKNOWN) & (trimap[window.crop] != UNKNOWN)  # reopened, earlier or now
    whole_solved = trimap
    if open_now.any():
        whole_solved = trimap.copy()
        whole_solved[window.crop] = tri
    JobRegion(image, whole_solved, inner).paste_into(fg_out, alpha_out, new_fg[inside], new_alpha[inside])
    keep = held[inside]  # the held pixels' result is the previous one, foreground colours included
    fg_out[inner][keep], alpha_out[inner][keep] = foreground[inner][keep], alpha[inner][keep]
    # the next edit starts from this one: the solved region grows to cover inner if need be
    box = hull(previous.box, inner)
    solved = previous.alpha_in(box, np.float32)
    solved[relative(inner, box)] = new_alpha[inside]
    stats.update(local=True, inner=area(inner), seconds=time.perf_counter() - t0)
    solution = Solution(trimap, box, solved, previous.transparent, previous.factor, previous.grid, known,
                        _reopened_after(previous, open_now, window.crop, trimap.shape))
    return Rerun(fg_out, alpha_out, inner, solution, stats)


def _solve_inner(engine, img, tri, previous: Solution, window: Window, held, prior, check_cancel, stats,
                 suspect):
    """(alpha, foreground, trimming's known patches after the edit) of the window's crop: the
    pixels near the edit solved again at the previous job's scale, the ``held`` ones at the
    previous alpha; ``prior``: the previous alpha's data-term weight (previous_prior)."""
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
        return _solve_window(engine, img, tri, held, start, prior, previous, window, check_cancel, stats,
                             suspect=suspect)
    # at the previous job's scale: reduced, solved, carried up as coarse_to_fine does
    coarse_img, coarse_tri = reduce_image(img, f), reduce_trimap(tri, f)
    coarse_start = reduce_image(start[..., None], f)[..., 0].astype(np.float64)
    background = np.zeros_like(coarse_img)
    coarse_prior = reduce_image(prior[..., None], f)[..., 0].astype(np.float64)
    alpha_c, fg_c, known = _solve_window(engine, coarse_img.copy(), coarse_tri, whole_blocks(held, f),
                                         coarse_start, coarse_prior, previous, window, check_cancel, stats,
                                         background, any_blocks(suspect, f))
    alpha = carry_up(img, tri, coarse_img, alpha_c, fg_c, background, f)
    alpha[held] = start[held]  # carried up from the coarse solve, a held pixel would move a little
    return alpha, img, known


def _solve_window(engine, img, tri, held, start, prior, previous: Solution, window: Window, check_cancel,
                  stats, background=None, suspect=None):
    """(alpha, foreground, trimming's known patches after the edit) of a window whose ``held``
    pixels keep ``start`` (boundary values and starting point; the previous alpha, also the
    data term's target with weight ``prior``); ``background``: receives the background estimate
    (the window's unknown pixels and one pixel around them) when given."""
    t0 = time.perf_counter()
    patches = known = None  # without the region's known patches (no trimming): alpha_priors decides
    if previous.known is not None:  # trimming compares with the whole region's known patches
        patches = trimming.patches_near_unknown(img, tri)
        if suspect is not None and suspect.any():
            patches = patches._replace(known=patches.known.without(suspect))
        known = _known_after_edit(previous.known, patches.known, window.corner, window.reaches_known)
        patches = patches._replace(known=known.shifted(-window.corner[0], -window.corner[1]))
    priors = alpha_priors(img, tri, engine.sigma, engine.trim, transparent=previous.transparent,
                          spatial=window.spatial, patches=patches)
    weight, target = _with_previous(priors.weight, priors.alpha, prior, start.copy())
    solve_trimap = priors.trimap.copy()
    decided = ~held & (solve_trimap != UNKNOWN)
    start[decided] = solve_trimap[decided] == FOREGROUND   # painted or trimmed pixels: 0 / 1
    solve_trimap[held & (solve_trimap == UNKNOWN)] = FOREGROUND  # any known value: start holds it
    stats["priors"] = time.perf_counter() - t0
    # its own coarsest level: a neighbourhood has a few thousand unknowns, which the default
    # would factorise directly (~0.7 s here); two levels over a small direct solve take ~0.05 s
    alpha = closed_form_alpha(img, solve_trimap, engine.eps, engine.tol, check_cancel, None, weight, target,
                              stats, boundary=start, direct_size=DIRECT_SIZE)
    stats["solve"] = time.perf_counter() - t0
    where = None if background is None else carried_pixels(tri)
    fg = estimate_foreground(img, alpha, check_cancel=check_cancel, prior=foreground_prior(img, priors.flow),
                             where=where, background=background)
    stats["foreground"] = time.perf_counter() - t0
    return alpha, fg, known


def in_doubt(previous: Solution, trimap: np.ndarray, crop: Box, img: np.ndarray) -> np.ndarray:
    """The crop's pixels whose previous result the edit puts in doubt: on the side (alpha above
    or below 1/2, 8-connected) of every changed pixel that now says otherwise than the previous
    result there, the pixels coloured like the painted ones (coloured_like; ``img``: the crop's
    colours, 0-1). Black painted where alpha was above 1/2 doubts the opaque-looking pixels of
    its colours in the area it belongs to, white where it was below the transparent-looking
    ones, grey painted over known pixels their side's. A black dot in a hole the previous result
    already made transparent (or a white one on opaque) doubts nothing: the user confirmed it.
    Pixels of other colours keep the previous result's hold (decided_pixels, previous_prior):
    a black stroke on haze beside fur says nothing about the fur (issue 23's GT15 stroke)."""
    before = previous.alpha_in(crop, np.float32)
    now = trimap[crop]
    changed = previous.trimap[crop] != now
    out = np.zeros(now.shape, bool)
    for side, label in ((before > 0.5, FOREGROUND), (before < 0.5, BACKGROUND)):
        seeds = changed & side & (now != label)
        if seeds.any():
            parts, _ = ndimage.label(side, np.ones((3, 3), int))
            touched = np.unique(parts[seeds])
            area = np.isin(parts, touched[touched > 0])
            out |= coloured_like(img, seeds, area, previous.factor) | seeds
    return out


def _strokes_over_known(previous: Solution, trimap: np.ndarray, crop: Box):
    """(side, paint, its pixels painted over that side's known ones, unchanged known pixels of
    that side) for each paint that covers known pixels of another value in the crop."""
    before, now = previous.trimap[crop], trimap[crop]
    changed = before != now
    for side in (FOREGROUND, BACKGROUND):
        for paint in (BACKGROUND, FOREGROUND, UNKNOWN):
            seeds = changed & (before == side) & (now == paint)
            if seeds.any():
                yield side, paint, seeds, (now == side) & ~changed


def reopened(previous: Solution, trimap: np.ndarray, crop: Box, img: np.ndarray) -> np.ndarray:
    """The crop's known pixels, untouched by the edit, that a stroke painted over known pixels
    of their side reopens: within REOPEN_RADIUS of the paint (at the solve's scale) of such
    painted pixels, with a colour within REOPEN_COLOUR of one of theirs (``img``: the crop's
    colours, 0-1).

    Why: a rough lasso's band leaves wrong known areas (a hole in hair taken as solid, a strand
    outside the band); a stroke there says the trimap was wrong, and the same mistake usually
    repeats nearby in the same colours. Left known, only the painted pixels would change."""
    out = np.zeros(img.shape[:2], bool)
    for _, paint, seeds, known in _strokes_over_known(previous, trimap, crop):
        out |= _near_and_alike(img, seeds, known, REOPEN_RADIUS[paint], previous.factor)
    return out


def suspect_known(previous: Solution, trimap: np.ndarray, crop: Box, img: np.ndarray,
                  fresh: np.ndarray) -> np.ndarray:
    """The crop's known pixels, not reopened, that a black or white stroke over known pixels of
    their side makes suspect as that side's evidence: coloured like the stroke, within its
    reopening radius plus trimming's band (the same mistake just beyond the reopened ones, whose
    patches would otherwise enter trimming's known set and veto every decision of the stroke's
    colours)."""
    out = np.zeros(img.shape[:2], bool)
    for _, paint, seeds, known in _strokes_over_known(previous, trimap, crop):
        if paint != UNKNOWN:  # grey says "unsure": no side's evidence is in question
            out |= _near_and_alike(img, seeds, known & ~fresh, REOPEN_RADIUS[paint] + trimming.BAND + 1,
                                   previous.factor)
    return out


def _near_and_alike(img, seeds, known, radius: int, factor: int) -> np.ndarray:
    """The ``known`` pixels within ``radius`` px (at the solve's scale) of ``seeds`` and coloured
    like them; ``factor`` > 1: found on the solve's f x f blocks."""
    if factor > 1:
        return _on_blocks(_near_and_alike, img, seeds, known, factor, radius, 1)
    candidates = (ndimage.distance_transform_edt(~seeds) <= radius) & known
    return coloured_like(img, seeds, candidates) if candidates.any() else candidates


def coloured_like(img: np.ndarray, seeds: np.ndarray, candidates: np.ndarray,
                  factor: int = 1) -> np.ndarray:
    """The ``candidates`` whose colour is within REOPEN_COLOUR of a ``seeds`` pixel's, with their
    rims (REOPEN_RIM px, within the candidates): a texture's matches are scattered, and a speck
    walled in by pixels held at another value is solved back to that value. ``factor`` > 1: on
    the solve's f x f blocks (their mean colours), as the crop is solved (a 27-MP crop's million
    pixels would cost seconds)."""
    if factor > 1:
        return _on_blocks(coloured_like, img, seeds, candidates, factor)
    colours = img[seeds][:, :3]
    colours = colours[:: max(1, len(colours) // REOPEN_SAMPLES)]
    distance, _ = cKDTree(colours).query(img[candidates][:, :3], distance_upper_bound=REOPEN_COLOUR)
    matched = np.zeros(seeds.shape, bool)
    matched[candidates] = np.isfinite(distance)
    return ndimage.binary_dilation(matched, np.ones((3, 3), bool), REOPEN_RIM) & candidates


def _on_blocks(search, img, seeds, candidates, factor: int, *args) -> np.ndarray:
    """``search(img, seeds, candidates, *args)`` run on the solve's f x f blocks (mean colours; a
    block is a seed or a candidate when any of its pixels is), its answer spread back over the
    blocks' ``candidates``."""
    coarse = search(reduce_image(img, factor), any_blocks(seeds, factor), any_blocks(candidates, factor),
                    *args)
    return expand_blocks(coarse, factor, seeds.shape) & candidates


def _solved_trimap(previous: Solution, trimap: np.ndarray, crop: Box) -> np.ndarray:
    """The crop of ``trimap`` as the engine solves it: the pixels earlier strokes reopened stay
    unknown unless this edit painted them."""
    out = trimap[crop].copy()
    out[previous.reopened_in(crop) & (previous.trimap[crop] == out)] = UNKNOWN
    return out


def _reopened_after(previous: Solution, open_now: np.ndarray, crop: Box, shape) -> np.ndarray | None:
    """The flat indices of the reopened pixels after this edit: the earlier ones outside the
    crop, and the crop's own (``open_now``)."""
    if not open_now.any() and (previous.reopened is None or not previous.reopened.size):
        return None
    flat = np.zeros(shape, bool)
    if previous.reopened is not None:
        flat.flat[previous.reopened] = True
    flat[crop] = open_now
    return np.flatnonzero(flat)


def decided_pixels(previous: Solution, trimap: np.ndarray, crop: Box) -> np.ndarray:
    """The crop's unknown pixels that the previous job decided (alpha exactly 0 or 1: trimmed,
    or solved to the limit), still unknown and unpainted.

    Why they are held (outside in_doubt): the previous job decided them with more than the crop
    shows (its K-to-U flow and trimming saw the whole region); the rerun's own trimming is gated
    by the crop's flow, which may see one side only (previous_prior's buckle)."""
    before = previous.alpha_in(crop, np.float32)
    now = trimap[crop]
    return (previous.trimap[crop] == UNKNOWN) & (now == UNKNOWN) & ((before == 0) | (before == 1))


def previous_prior(distance: np.ndarray, reach_px: float, weight: float = PREVIOUS) -> np.ndarray:
    """The previous alpha's data-term weight over a crop (``distance``: to the nearest changed
    pixel, Window.distance): ``weight`` from ``reach_px`` on, falling linearly to 0 on the
    changed pixels.

    Why: a local solve sees only its crop. Where the crop holds no known pixel of one side (a
    buckle deep in a wide unknown band, two black dots painted in its holes), its K-to-U flow
    finds only the other side, and the pixels near the new dots are no longer "deep", so the
    trimming that made the buckle opaque in the first run (it searched the whole region) is
    gated off; with nothing pulling it to 1 the closed form lets the whole buckle fade
    (tests/test_refine_ring.py). Nothing in the crop's energy tells an opaque buckle from a
    faded one there, so the previous result decides, as the user saw it: the pixels it decided
    stay decided (decided_pixels), and this term holds the others (both outside in_doubt), weak against
    the Laplacian next to the stroke, so that the hint moves what it touches, firmer farther
    away, where the previous result was the user's and the edit says nothing. (On the tuning
    photos it weighs little: 0, 0.03 and 0.1 gave SAD curves within 0.1; docs/lab-notes.md.)"""
    return weight * np.minimum(distance / reach_px, 1.0)


def _with_previous(weight, target, prior, previous):
    """The K-to-U data term (``weight``, ``target``; None: none) and the previous alpha's
    (``prior``, ``previous``) as one: weights add, targets average by weight."""
    if weight is None:
        return prior, previous
    total = weight + prior
    mixed = np.divide(weight * target + prior * previous, total, out=previous.copy(), where=total > 0)
    return total, mixed


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


