"""The one engine interface: a float32 crop and its trimap in, foreground and alpha of the crop out.

Engines never cut, convert or paste: drip_core.region.JobRegion does that once per job, and
forces the known pixels. ``Engine.matte`` is the whole-image convenience built on it (for
the CLI, evaluation and tests); the server calls ``Engine.run`` on its own JobRegion so the
result is pasted straight at the job's depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import Cancelled, EngineError
from ..region import JobRegion

# progress(fraction in [0, 1], stage name, optional human message)
ProgressFn = Callable[..., None]
# cancel() -> True when the caller wants the job stopped
CancelFn = Callable[[], bool]

__all__ = ["CancelFn", "Cancelled", "Engine", "EngineError", "Matte", "ProgressFn"]


@dataclass
class Matte:
    foreground: np.ndarray  # float32 H x W x 3 in [0, 1]
    alpha: np.ndarray       # float32 H x W in [0, 1]
    engine: str = ""
    known: object = None    # classical: the known patches trimming compared with, at the solve
                            # scale (trimming.KnownPatchSet): a local re-solve's context


class Engine:
    """Base class. Subclasses implement ``_matte(image, trimap, progress, check_cancel)`` on the
    region's crop: image float32 H x W x 3 in [0, 1], trimap uint8 0/128/255 with some 128."""

    name = "base"
    context_margin = 16  # known pixels the engine wants around the unknown region

    def run(self, region: JobRegion, progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> Matte:
        """The engine on the region's crop; returns the crop's foreground and alpha."""
        report = progress or (lambda *a, **k: None)
        stop = cancel or (lambda: False)

        def check_cancel():
            if stop():
                raise Cancelled()

        check_cancel()
        image, trimap = region.engine_inputs()
        result = self._matte(image, trimap, report, check_cancel)
        check_cancel()
        result.engine = result.engine or self.name
        report(1.0, "done")
        return result

    def matte(self, image: np.ndarray, trimap: np.ndarray, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None, dtype=np.float32) -> Matte:
        """Whole image in (uint8, uint16 or float32 H x W x 3), whole image out at ``dtype``."""
        region = JobRegion.around_unknown(image, trimap, self.context_margin)
        crop = self.run(region, progress, cancel)
        foreground, alpha = region.paste(crop.foreground, crop.alpha, dtype)
        return Matte(foreground, alpha, crop.engine)

    def _matte(self, image, trimap, progress, check_cancel) -> Matte:  # pragma: no cover - abstract
        raise NotImplementedError
