"""Classical engine: closed-form alpha (Levin et al. 2008) with the known-to-unknown information
flow and patch-based trimming of Aksoy et al. (CVPR 2017) + multilevel foreground (Germer et al. 2020).

Both run in vectorised NumPy / SciPy (no JIT compilation, so the first call is as fast
as the next). The engine sees only the job region's crop (drip_core.region): the unknown
pixels' box plus ``context_margin`` known pixels of colour context for the foreground.
"""
from __future__ import annotations

import time

import numpy as np

from .base import Engine, EngineError, Matte
from .closed_form import closed_form_alpha
from .foreground import estimate_foreground
from .priors import SIGMA, alpha_priors, foreground_prior

class ClassicalEngine(Engine):
    name = "classical"
    context_margin = 16  # known pixels around the unknown region: colour context (flow, trimming, foreground)
    eps = 1e-8   # Levin's regulariser (plain closed form, SAD T1/T2: 1e-7 5.19/7.50, 1e-8 5.10/7.21; 1e-5 much worse)
    tol = 1e-3   # relative CG residual: SAD T1/T2 5.19/7.50 (1e-4: 5.29/7.56, 1e-2: 5.42/8.28)
    sigma = SIGMA  # weight of the K-to-U term (priors.py); 0 with trim = False: plain closed form
    trim = True    # patch-based trimming
    last_stats: dict = {}  # iterations and seconds per stage of the last matte (benchmarks); replaced per call

    def _matte(self, image, trimap, progress, check_cancel) -> Matte:
        has_fg, has_bg = (trimap == 255).any(), (trimap == 0).any()
        if not has_fg or not has_bg:
            # the closed-form energy is then minimised by a constant alpha: useless, say so
            missing = "foreground" if not has_fg else "background"
            colour, where = ("white", "the object surely is") if not has_fg else ("black", "the background surely is")
            raise EngineError("bad_trimap", f"the trimap marks no definite {missing} near the unsure region: the "
                                            f"classical engine needs some {missing} pixels to propagate from",
                              hint=f"Use a smaller band radius (the band may cover the whole selection), or paint "
                                   f"{colour} on the trimap where {where}.")
        img = image  # the region's float32 crop; closed_form takes only its windows to double precision
        progress(0.02, "alpha", "information flow and trimming")
        priors = alpha_priors(img, trimap, self.sigma, self.trim)
        stats = dict(priors.seconds, transparent=priors.transparent, trimmed=priors.trimmed)
        check_cancel()
        progress(0.2, "alpha", "closed-form alpha")
        t0 = time.perf_counter()
        try:
            alpha_roi = closed_form_alpha(img, priors.trimap, self.eps, self.tol, check_cancel,
                                          lambda f: progress(0.2 + 0.5 * f, "alpha", "closed-form alpha"),
                                          prior_weight=priors.weight, prior_alpha=priors.alpha, stats=stats)
        except (FloatingPointError, RuntimeError) as exc:  # RuntimeError: SuperLU on a singular matrix
            raise EngineError("engine_failed", f"the classical solver failed: {exc}") from None
        stats["solve"] = time.perf_counter() - t0
        check_cancel()
        t0 = time.perf_counter()
        progress(0.7, "foreground", "foreground estimation")
        # only the unknown pixels' foreground is pasted: estimated there (plus context), written
        # into the crop itself, which nothing reads afterwards
        fg_roi = estimate_foreground(img, alpha_roi, check_cancel=check_cancel,
                                     report=lambda f: progress(0.7 + 0.3 * f, "foreground", "foreground estimation"),
                                     prior=foreground_prior(img, priors.flow), where=trimap == 128, out=img)
        stats["foreground"] = time.perf_counter() - t0
        self.last_stats = stats
        return Matte(fg_roi.astype(np.float32, copy=False), alpha_roi.astype(np.float32, copy=False), self.name)
