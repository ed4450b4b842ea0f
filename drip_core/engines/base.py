"""The one engine interface: a float32 crop and its trimap in, foreground and alpha of the crop out.

Engines never cut, convert or paste: drip_core.region.JobRegion does that once per job, and
forces the known pixels. ``Engine.matte`` is the whole-image convenience built on it (for
the CLI, evaluation and tests); the server calls ``Engine.run`` on its own JobRegion so the
result is pasted straight at the job's depth.

Everything an engine decides for one job travels with that job's result (``Matte.stats``,
``Matte.rerun_state``): an engine instance is shared by every job and every queue, so it keeps
no per-job state. After a trimap edit on the same image the server offers the previous result's
``rerun_state`` back to ``Engine.rerun``; an engine that can update its previous result locally
does so there, any other answers None and the job is run in full.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from drip_protocol import Stage

from ..boxes import Box
from ..errors import Cancelled, EngineError
from ..region import JobRegion

# progress(fraction in [0, 1], Stage, optional human message)
ProgressFn = Callable[..., None]
# cancel() -> True when the caller wants the job stopped
CancelFn = Callable[[], bool]

__all__ = ["CancelFn", "Cancelled", "Engine", "EngineError", "Matte", "ProgressFn", "Rerun", "canceller"]


@dataclass
class Matte:
    foreground: np.ndarray  # float32 H x W x 3 in [0, 1]
    alpha: np.ndarray       # float32 H x W in [0, 1]
    engine: str = ""
    stats: dict = field(default_factory=dict)  # this job's decisions and seconds per stage (benchmarks, logs)
    rerun_state: object = None  # the engine's own record of this job for ``Engine.rerun``; opaque to others
    notes: list = field(default_factory=list)  # what the person should know of how this result was made


@dataclass
class Rerun:
    """A result updated after a trimap edit: whole images at the previous result's depth."""
    foreground: np.ndarray
    alpha: np.ndarray
    changed: Box            # outside this rectangle the result is the previous one
    rerun_state: object     # for the next edit
    stats: dict = field(default_factory=dict)


class Engine:
    """Base class. Subclasses implement ``_matte(image, trimap, progress, check_cancel)`` on the
    region's crop: image float32 H x W x 3 in [0, 1], trimap uint8 0/128/255 with some unknown."""

    name = "base"
    context_margin = 16  # known pixels the engine wants around the unknown region

    def run(self, region: JobRegion, progress: ProgressFn | None = None,
            cancel: CancelFn | None = None) -> Matte:
        """The engine on the region's crop; returns the crop's foreground and alpha."""
        report = progress or (lambda *a, **k: None)
        check_cancel = canceller(cancel)
        check_cancel()
        image, trimap = region.engine_inputs()
        result = self._matte(image, trimap, report, check_cancel)
        check_cancel()
        result.engine = result.engine or self.name
        result.rerun_state = self._rerun_state(region, result)
        report(1.0, Stage.DONE)
        return result

    def rerun(self, state, image: np.ndarray, trimap: np.ndarray, foreground: np.ndarray, alpha: np.ndarray,
              progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> Rerun | None:
        """The previous job's result (``foreground``, ``alpha``: whole images at the job's depth,
        not modified) updated for an edited ``trimap`` of the same ``image``, from that job's
        ``state``; None when this engine cannot (the caller then runs the job in full)."""
        return None

    def matte(self, image: np.ndarray, trimap: np.ndarray, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None, dtype=np.float32, with_foreground: bool = True) -> Matte:
        """Whole image in (uint8, uint16 or float32 H x W x 3), whole image out at ``dtype``;
        ``with_foreground`` False: the result's foreground is None (only the alpha is wanted)."""
        region = JobRegion.around_unknown(image, trimap, self.context_margin)
        crop = self.run(region, progress, cancel)
        foreground, alpha = region.paste(crop.foreground, crop.alpha, dtype, with_foreground)
        return Matte(foreground, alpha, crop.engine, crop.stats, crop.rerun_state, crop.notes)

    def _matte(self, image, trimap, progress, check_cancel) -> Matte:  # pragma: no cover - abstract
        raise NotImplementedError

    def _rerun_state(self, region: JobRegion, matte: Matte):
        """What ``rerun`` will need of this job; None: this engine has no local reruns."""
        return None


def canceller(cancel: CancelFn | None) -> Callable[[], None]:
    """check() raises Cancelled once ``cancel()`` says so."""
    def check():
        if cancel is not None and cancel():
            raise Cancelled()
    return check
