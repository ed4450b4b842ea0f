"""The one owner of a job's pixels: crop once, convert once, force known pixels once, paste once.

A job is a whole image (what the client sent, at its own depth: uint8, uint16 or float32)
and a trimap. Only the unknown region's bounding box plus the context margin the engine
asks for is ever converted to floats and shown to an engine; everything outside it is
known from the trimap. The result is pasted back at the depth the client wants, and known
pixels are taken from the trimap and the image itself, so they come back bit-exact
whatever the engine did there.

    region = JobRegion.around_unknown(image, trimap, engine.context_margin)
    crop = engine.run(region, progress, cancel)        # crop in, crop out
    # the whole image, at the job's depth:
    foreground, alpha = region.paste(crop.foreground, crop.alpha, np.uint16)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import Box, mask_bbox
from .errors import EngineError
from .samples import FULL_SCALE, from_float, to_float
from .trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN


@dataclass
class JobRegion:
    image: np.ndarray                    # H x W x 3 at the job's own depth (never converted whole)
    trimap: np.ndarray                   # H x W uint8: 0 / 128 / 255
    box: Box                             # the unknown pixels' bounding box plus the context margin

    @classmethod
    def around_unknown(cls, image: np.ndarray, trimap: np.ndarray, margin: int) -> "JobRegion":
        """Check the inputs and find the region; a trimap without unknown pixels is an error."""
        image, trimap = np.asarray(image), np.asarray(trimap)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in FULL_SCALE or 0 in image.shape:
            raise EngineError("bad_image", f"the image must be H x W x 3 uint8, uint16 or float32, "
                                           f"got {image.dtype} {image.shape}")
        if trimap.shape != image.shape[:2] or trimap.dtype != np.uint8:
            raise EngineError("bad_trimap", f"the trimap is {trimap.dtype} {trimap.shape[::-1]} but must be "
                                            f"uint8 and the image's size {image.shape[1::-1]}")
        if ((trimap != BACKGROUND) & (trimap != UNKNOWN) & (trimap != FOREGROUND)).any():
            raise EngineError("bad_trimap",
                              "trimap values must be 0, 128 or 255 (drip_core.trimaps builds one)")
        box = mask_bbox(trimap == UNKNOWN, margin)
        if box is None:
            raise EngineError("no_unknown", "the trimap has no unknown (grey) pixels")
        return cls(image, trimap, box)

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.box
        return rows.stop - rows.start, cols.stop - cols.start

    def engine_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(float32 H' x W' x 3 in [0, 1], uint8 trimap) of the region: the one conversion."""
        return to_float(self.image[self.box]), self.trimap[self.box]

    def paste(self, foreground: np.ndarray, alpha: np.ndarray, dtype,
              with_foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """Whole-image (foreground, alpha) at ``dtype`` from the engine's crop result.

        Only the region's unknown pixels take the engine's values; known pixels keep the
        image's own samples (exact where alpha is 1, irrelevant where it is 0) and an alpha of
        exactly 0 or 1. Works in the output type, so no whole-image float copy is made.
        ``with_foreground`` False: the foreground is None (a caller that writes only the alpha
        skips a whole-image copy of the colours).
        """
        whole = (slice(None), slice(None))
        dtype = np.dtype(dtype)
        out_alpha = self._known_alpha(whole, dtype)
        fg = self._known_colours(whole, dtype) if with_foreground else None
        self._take_unknown(None if fg is None else fg[self.box], out_alpha[self.box], foreground, alpha)
        return fg, out_alpha

    def paste_into(self, fg_out: np.ndarray, alpha_out: np.ndarray, foreground: np.ndarray,
                   alpha: np.ndarray) -> None:
        """Write the region's box of an existing whole-image result in place (a local re-solve):
        the same rule as ``paste``, but only inside the box."""
        fg_box, alpha_box = fg_out[self.box], alpha_out[self.box]
        fg_box[...] = self._known_colours(self.box, fg_out.dtype)
        alpha_box[...] = self._known_alpha(self.box, alpha_out.dtype)
        self._take_unknown(fg_box, alpha_box, foreground, alpha)

    def _known_colours(self, window: Box, dtype: np.dtype) -> np.ndarray:
        """The known pixels' colours of ``window`` at ``dtype``: the image's own samples (the
        unknown pixels are overwritten)."""
        image = self.image[window]
        if image.dtype == dtype:
            return image.copy()
        return from_float(to_float(image), dtype)  # e.g. a 16-bit job asking for 8 bits

    def _known_alpha(self, window: Box, dtype: np.dtype) -> np.ndarray:
        """An alpha of 1 on definite foreground, 0 elsewhere (the unknown pixels are overwritten)."""
        # 255 -> 1, grey and black -> 0, without a mask temporary:
        out_alpha = self.trimap[window].astype(dtype)
        np.floor_divide(out_alpha, FOREGROUND, out=out_alpha)
        out_alpha *= dtype.type(FULL_SCALE[dtype])
        return out_alpha

    def _take_unknown(self, fg_box: np.ndarray | None, alpha_box: np.ndarray, foreground: np.ndarray,
                      alpha: np.ndarray) -> None:
        """The engine's values, rounded once to the result's depth, on the box's unknown pixels."""
        if foreground.shape != (*self.shape, 3) or alpha.shape != self.shape:
            raise EngineError("engine_failed",
                              f"the engine returned {alpha.shape[::-1]} for a {self.shape[::-1]} region")
        unknown = self.trimap[self.box] == UNKNOWN
        if fg_box is not None:
            fg_box[unknown] = from_float(foreground[unknown], fg_box.dtype)
        alpha_box[unknown] = from_float(alpha[unknown], alpha_box.dtype)
