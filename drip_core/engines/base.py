"""The one engine interface: (image, trimap) -> Matte(foreground, alpha)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from drip_protocol import ProtocolError

# progress(fraction in [0, 1], stage name, optional human message)
ProgressFn = Callable[..., None]
# cancel() -> True when the caller wants the job stopped
CancelFn = Callable[[], bool]


class EngineError(ProtocolError):
    """An engine failure with a stable code (the same codes the wire protocol uses)."""


class Cancelled(EngineError):
    def __init__(self, message: str = "the job was cancelled"):
        super().__init__("cancelled", message)


@dataclass
class Matte:
    foreground: np.ndarray  # float32 H x W x 3 in [0, 1]
    alpha: np.ndarray       # float32 H x W in [0, 1]
    engine: str = ""
    uncertainty: Optional[np.ndarray] = None  # float32 H x W, when the engine provides one


class Engine:
    """Base class. Subclasses implement ``_matte`` on validated inputs."""

    name = "base"

    def matte(self, image: np.ndarray, trimap: np.ndarray, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None) -> Matte:
        image, trimap = validate_inputs(image, trimap)
        report = progress or (lambda *a, **k: None)
        stop = cancel or (lambda: False)

        def check_cancel():
            if stop():
                raise Cancelled()

        unknown = trimap == 128
        if not unknown.any():
            # Nothing to estimate: the trimap is the matte, the image is the foreground.
            report(1.0, "done")
            alpha = (trimap == 255).astype(np.float32)
            return Matte(image.astype(np.float32) / 255.0, alpha, self.name)
        check_cancel()
        result = self._matte(image, trimap, report, check_cancel)
        result.engine = result.engine or self.name
        enforce_known_regions(result, trimap)
        report(1.0, "done")
        return result

    def _matte(self, image, trimap, progress, check_cancel) -> Matte:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        """What the server tells clients about this engine."""
        return {"name": self.name, "available": True}


def validate_inputs(image, trimap) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    trimap = np.asarray(trimap)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise EngineError("bad_image", f"image must be uint8 HxWx3, got {image.dtype} {image.shape}")
    if trimap.ndim != 2 or trimap.dtype != np.uint8:
        raise EngineError("bad_trimap", f"trimap must be uint8 HxW, got {trimap.dtype} {trimap.shape}")
    if trimap.shape != image.shape[:2]:
        raise EngineError("bad_trimap", f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but the image is "
                                        f"{image.shape[1]}x{image.shape[0]}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise EngineError("bad_image", "the image is empty")
    bad = (trimap != 0) & (trimap != 128) & (trimap != 255)
    if bad.any():
        raise EngineError("bad_trimap", "trimap values must be 0, 128 or 255 (use drip_core.trimap to build one)")
    return image, trimap


def enforce_known_regions(result: Matte, trimap: np.ndarray) -> None:
    """Known trimap regions are exact in every engine's output."""
    alpha = np.clip(np.asarray(result.alpha, dtype=np.float32), 0.0, 1.0)
    alpha[trimap == 0] = 0.0
    alpha[trimap == 255] = 1.0
    result.alpha = alpha
    result.foreground = np.clip(np.asarray(result.foreground, dtype=np.float32), 0.0, 1.0)
