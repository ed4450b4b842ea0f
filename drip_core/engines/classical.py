"""Classical engine: closed-form alpha (Levin et al. 2008) + multilevel foreground (Germer et al. 2020).

Both run in vectorised NumPy / SciPy (no JIT compilation, so the first call is as fast
as the next). The engine sees only the job region's crop (drip_core.region): the unknown
pixels' box plus ``context_margin`` known pixels of colour context for the foreground.
"""
from __future__ import annotations

import numpy as np

from .base import Engine, EngineError, Matte
from .closed_form import closed_form_alpha
from .foreground import estimate_foreground

class ClassicalEngine(Engine):
    name = "classical"
    context_margin = 16  # known pixels around the unknown region: colour context for the foreground
    eps = 1e-7   # Levin's regulariser; larger values smooth across edges (GT01-04, Trimap1: SAD 5.8 -> 7.5 at 1e-5)
    tol = 1e-3   # relative CG residual: SAD T1/T2 5.19/7.50 (1e-4: 5.29/7.56, 1e-2: 5.42/8.28)

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
        img, tri = image, trimap  # float32: closed_form takes only its windows to double precision
        progress(0.02, "alpha", "closed-form alpha")
        try:
            alpha_roi = closed_form_alpha(img, tri, self.eps, self.tol, check_cancel,
                                          lambda f: progress(0.02 + 0.68 * f, "alpha", "closed-form alpha"))
        except (FloatingPointError, RuntimeError) as exc:  # RuntimeError: SuperLU on a singular matrix
            raise EngineError("engine_failed", f"the classical solver failed: {exc}") from None
        check_cancel()
        progress(0.7, "foreground", "foreground estimation")
        fg_roi = estimate_foreground(img, alpha_roi, check_cancel=check_cancel,
                                     report=lambda f: progress(0.7 + 0.3 * f, "foreground", "foreground estimation"))
        return Matte(fg_roi.astype(np.float32, copy=False), alpha_roi.astype(np.float32, copy=False), self.name)
