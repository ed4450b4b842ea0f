"""Classical engine: closed-form alpha (Levin et al. 2008) with the known-to-unknown information
flow and patch-based trimming of Aksoy et al. (CVPR 2017) + multilevel foreground (Germer et al. 2020).

Both run in vectorised NumPy / SciPy (no JIT compilation, so the first call is as fast
as the next). The engine sees only the job region's crop (drip_core.region): the unknown
pixels' box plus ``context_margin`` known pixels of colour context for the foreground.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from drip_protocol import Stage

from ...blocks import reduce_trimap
from ...region import JobRegion
from ...trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN
from ..base import Engine, EngineError, Matte, Rerun, canceller
from . import chroma, cleanup, fine_structure
from . import rerun as local_rerun
from .data_term import deep_unknown, trimming
from .data_term.information_flow import Flow, known_to_unknown
from .data_term.priors import SIGMA, alpha_priors, foreground_prior, mark_agreeing
from .data_term.transparency import THRESHOLD, transparency_score
from .foreground import estimate_foreground
from .scale.coarse_to_fine import carried_pixels, carry_up, choose_factor
from .scale.tiling import needs_tiles, plan, run_tiles, solve_tiled
from .solve.closed_form import closed_form_alpha


@dataclass
class SolvedCrop(Matte):
    """A crop's matte and the known patches trimming compared it with (trimming.KnownPatchSet, at
    the solve's scale): what a local re-solve of the next job needs besides the alpha."""
    known: trimming.KnownPatchSet | None = None


class ClassicalEngine(Engine):
    name = "classical"
    context_margin = 16  # known pixels around the unknown region: colour context (flow, trimming, foreground)
    eps = 1e-8   # Levin's regulariser (docs/lab-notes.md: the values tried)
    # relative CG residual: a looser one leaves pixels far from the exact minimum, and a local
    # re-solve, starting elsewhere, would stop at another point than the full solve
    tol = 1e-4
    sigma = SIGMA  # weight of the K-to-U term (priors.py); 0 with trim = False: plain closed form
    trim = True    # patch-based trimming

    def rerun(self, state, image, trimap, foreground, alpha, progress=None, cancel=None) -> Rerun | None:
        """After a trimap edit, re-solve only the edit's neighbourhood (rerun.py); None (a full run)
        for a new band."""
        if not isinstance(state, local_rerun.Solution):
            return None
        changed = local_rerun.changed_box(state, trimap)
        if changed is None or local_rerun.is_new_band(state, trimap):
            return None
        if progress is not None:
            progress(0.05, Stage.ALPHA, "re-solving the edited part")
        check_cancel = canceller(cancel)
        return local_rerun.resolve_locally(self, image, trimap, state, changed, foreground, alpha,
                                           check_cancel)

    def _rerun_state(self, region: JobRegion, matte: Matte):
        return local_rerun.Solution(region.trimap, region.box, matte.alpha,
                                    bool(matte.stats.get("transparent", False)),
                                    int(matte.stats.get("factor", 1)),
                                    (region.box[0].start, region.box[1].start),
                                    getattr(matte, "known", None))

    def _matte(self, image, trimap, progress, check_cancel) -> Matte:
        trimap, notes = self._usable_trimap(image, trimap, progress)
        stepped = chroma.restore(image)  # colour stored in two-pixel steps: interpolated (chroma.py)
        matte = self._matte_any_scale(image, trimap, progress, check_cancel)
        matte.stats["chroma_steps"] = stepped
        matte.notes = notes
        return matte

    def _usable_trimap(self, image, trimap, progress) -> tuple[np.ndarray, list[str]]:
        """(the trimap to solve with, notes): a trimap with no definite foreground gets the unknown
        pixels least like the background as foreground (fine_structure.py); a refusal when a side
        is missing otherwise."""
        has_fg, has_bg = (trimap == FOREGROUND).any(), (trimap == BACKGROUND).any()
        if has_bg and not has_fg:
            made = fine_structure.provisional_foreground(image, trimap)
            if made is not None:
                progress(0.01, Stage.ALPHA, "no definite foreground: the pixels least like the background")
                return made[0], [fine_structure.note(made[1])]
        if not has_fg or not has_bg:
            # the closed-form energy is then minimised by a constant alpha: useless, say so
            missing = "foreground" if not has_fg else "background"
            colour, where = (("white", "the object surely is") if not has_fg
                             else ("black", "the background surely is"))
            raise EngineError("bad_trimap",
                              f"the trimap marks no definite {missing} near the unsure region: the "
                              f"classical engine needs some {missing} pixels to propagate from",
                              hint=f"Paint {colour} on the trimap where {where}, or use a narrower band "
                                   "(the smart band off, a smaller band radius).")
        return trimap, []

    def _matte_any_scale(self, image, trimap, progress, check_cancel) -> Matte:
        factor, coarse_img = choose_factor(image, trimap)
        if factor > 1:
            coarse_tri = reduce_trimap(trimap, factor)
            if (coarse_tri == FOREGROUND).any() and (coarse_tri == BACKGROUND).any():
                return self._matte_coarse(image, trimap, factor, coarse_img, coarse_tri, progress,
                                          check_cancel)
        # the solve writes the foreground over the unknown pixels' colours: the dust test needs them
        unknown_colours = cleanup.unknown_colours(image, trimap)
        if needs_tiles(trimap.shape):
            matte = self._matte_tiled(image, trimap, progress, check_cancel)
        else:
            alpha_roi, fg_roi, stats, known = self._solve(image, trimap, progress, check_cancel)
            matte = SolvedCrop(fg_roi, alpha_roi, self.name, stats, known=known)
        matte.stats["specks"] = cleanup.remove_specks(matte.alpha, trimap, image, unknown_colours)
        return matte

    def _matte_coarse(self, img, trimap, f, coarse_img, coarse_tri, progress, check_cancel) -> Matte:
        """A crop whose band has no detail below the scale f (coarse_to_fine.py): solved at 1/f
        size, alpha and foreground carried back to full resolution."""
        def coarse_progress(frac, stage=Stage.ALPHA, message=None):
            progress(0.9 * frac, stage, f"{message or stage}, at 1/{f} size")

        near = carried_pixels(coarse_tri)
        background = np.zeros_like(coarse_img)
        if needs_tiles(coarse_tri.shape):
            tiled = self._matte_tiled(coarse_img.copy(), coarse_tri, coarse_progress, check_cancel)
            alpha_c, known, stats = tiled.alpha, tiled.known, tiled.stats
            # the tiles return no background, so the (coarse, cheap) foreground runs once more here
            fg_c = estimate_foreground(coarse_img, alpha_c, check_cancel=check_cancel, where=near,
                                       background=background)
        else:
            alpha_c, fg_c, stats, known = self._solve(coarse_img.copy(), coarse_tri, coarse_progress,
                                                      check_cancel, where=near, background=background)
        check_cancel()
        # dust removed before the carry (the coarse image is intact: the solves had copies)
        specks = cleanup.remove_specks(alpha_c, coarse_tri, coarse_img,
                                       cleanup.unknown_colours(coarse_img, coarse_tri))
        t0 = time.perf_counter()
        alpha = carry_up(img, trimap, coarse_img, alpha_c, fg_c, background, f,
                         lambda frac: progress(0.9 + 0.1 * frac, Stage.ALPHA, "back to full size"))
        stats = dict(stats, factor=f, carry_up=time.perf_counter() - t0, specks=specks * f * f)
        return SolvedCrop(img, alpha, self.name, stats, known=known)

    def _solve(self, img, trimap, progress, check_cancel, transparent: bool | None = None, flow=None,
               trimmed=None, where=None, background=None):
        """(alpha, foreground, stats, the known patches trimming compared with) of a crop (``img``
        float32, overwritten with the foreground);
        ``transparent``: the transparency decision when already made (tiles share the crop's);
        ``flow`` / ``trimmed``: the tile's K-to-U flow and trimmed trimap when already made;
        ``where``: the pixels whose foreground is estimated (the unknown ones unless given);
        ``background``: an H x W x 3 float32 array that receives the background estimate there."""
        progress(0.02, Stage.ALPHA, "information flow and trimming")
        priors = alpha_priors(img, trimap, self.sigma, self.trim, transparent=transparent, flow=flow,
                              trimmed=trimmed)
        stats = dict(priors.seconds, transparent=priors.transparent, trimmed=priors.trimmed, deep=priors.deep)
        check_cancel()
        progress(0.2, Stage.ALPHA, "closed-form alpha")
        t0 = time.perf_counter()
        try:
            alpha_roi = closed_form_alpha(img, priors.trimap, self.eps, self.tol, check_cancel,
                                          lambda f: progress(0.2 + 0.5 * f, Stage.ALPHA, "closed-form alpha"),
                                          prior_weight=priors.weight, prior_alpha=priors.alpha, stats=stats)
        except (FloatingPointError, RuntimeError) as exc:  # RuntimeError: SuperLU on a singular matrix
            raise EngineError("engine_failed", f"the classical solver failed: {exc}") from None
        stats["solve"] = time.perf_counter() - t0
        check_cancel()
        t0 = time.perf_counter()
        progress(0.7, Stage.FOREGROUND, "foreground estimation")
        # only the unknown pixels' foreground is pasted: estimated there (plus context), written
        # into the crop itself, which nothing reads afterwards
        fg_roi = estimate_foreground(img, alpha_roi, check_cancel=check_cancel,
                                     report=lambda f: progress(0.7 + 0.3 * f, Stage.FOREGROUND,
                                                               "foreground estimation"),
                                     prior=foreground_prior(img, priors.flow),
                                     where=trimap == UNKNOWN if where is None else where, out=img,
                                     background=background)
        stats["foreground"] = time.perf_counter() - t0
        return alpha_roi.astype(np.float32, copy=False), fg_roi, stats, priors.known

    def _matte_tiled(self, img, trimap, progress, check_cancel) -> Matte:
        """A large crop in tiles (tiling.py), two at a time; one transparency decision and one
        trimming for all: the tiles' K-to-U flows first, then the whole crop's patch-based
        trimming (a tile's own known patches are too few to tell that the other side is far),
        then the tiles' solves."""
        progress(0.01, Stage.ALPHA, "transparency check")
        transparent = (self.sigma > 0 or self.trim) and transparency_score(img, trimap) > THRESHOLD
        tiles = plan(trimap)
        totals: dict = {}
        lock = threading.Lock()

        def add(stats):
            with lock:  # seconds summed over tiles (thread time, not wall time)
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0) + v

        flows, trimmed, known, after = [None] * len(tiles), None, None, 0.02
        if self.trim and not transparent:
            flows, trimmed, known = self._trim_whole(img, trimap, tiles, progress, check_cancel, add)
            after = 0.4

        def solve(i, image, tri, report, cancelled):
            box = tiles[i][1]
            alpha, fg, stats, _ = self._solve(image, tri, lambda f, *a: report(f), cancelled, transparent,
                                              flows[i], None if trimmed is None else trimmed[box])
            flows[i] = None  # its memory is not needed any more
            add(stats)
            return alpha, fg

        idx, alpha_u, fg_u = solve_tiled(img, trimap, solve,
                                         lambda f: progress(after + (1 - after) * f, Stage.ALPHA,
                                                            "alpha and foreground, in tiles"),
                                         check_cancel, tiles=tiles)
        if trimmed is not None:
            totals["trimmed"] = int(np.count_nonzero(trimmed != trimap))
        alpha = (trimap == FOREGROUND).astype(np.float32)
        alpha.reshape(-1)[idx] = alpha_u
        img.reshape(-1, 3)[idx] = fg_u  # the crop becomes the foreground (known pixels: their own colour)
        return SolvedCrop(img, alpha, self.name, totals, known=known)

    def _trim_whole(self, img, trimap, tiles, progress, check_cancel, add):
        """(per-tile K-to-U flows, the whole crop's trimmed trimap, the known patches it compared
        with): the flows in tiles (each
        core's alpha_hat marks where trimming may decide), the trimming on the whole crop
        (its memory follows the band: trimming.py)."""
        w = trimap.shape[1]
        may_be = [np.zeros(trimap.shape, bool) for _ in range(2)]  # crop-sized, but bool

        def flow_of(i, report, cancelled):
            core, box = tiles[i]
            t0 = time.perf_counter()
            flow = known_to_unknown(img[box], trimap[box])
            add({"flow": time.perf_counter() - t0})
            if flow is None:
                return None
            bw = box[1].stop - box[1].start
            ys, xs = np.divmod(flow.idx, bw)
            ys, xs = ys + box[0].start, xs + box[1].start
            in_core = ((ys >= core[0].start) & (ys < core[0].stop)
                       & (xs >= core[1].start) & (xs < core[1].stop))
            mark_agreeing(may_be, (ys * w + xs)[in_core], flow.alpha_hat[in_core])  # cores do not overlap
            # kept until the tile's solve: only what the data term and the foreground prior read
            return Flow(flow.idx.astype(np.int32), flow.alpha_hat, None, flow.fg.astype(np.float32),
                        flow.bg.astype(np.float32), None, None)

        flows = run_tiles([int(np.count_nonzero(trimap[core] == UNKNOWN)) for core, _ in tiles], flow_of,
                          lambda f: progress(0.02 + 0.28 * f, Stage.ALPHA, "information flow, in tiles"),
                          check_cancel)
        check_cancel()
        progress(0.3, Stage.ALPHA, "trimming")
        t0 = time.perf_counter()
        patches = trimming.patches_near_unknown(img, trimap)
        # the same rule as a whole-crop solve (priors.py)
        trimmed, deep = deep_unknown.trim(img, trimap, *may_be, patches=patches)
        add({"trim": time.perf_counter() - t0, "deep": deep})
        check_cancel()
        return flows, trimmed, patches.known

