"""The one owner of a job's pixels: crop once, convert once, force known pixels once, paste once.

A job is a whole image (what the client sent, at its own depth: uint8, uint16 or float32)
and a trimap. Only the unknown region's bounding box plus the context margin the engine
asks for is ever converted to floats and shown to an engine; everything outside it is
known from the trimap. The result is pasted back at the depth the client wants, and known
pixels are taken from the trimap and the image itself, so they come back bit-exact
whatever the engine did there.

    region = JobRegion.around_unknown(image, trimap, engine.context_margin)
    crop = engine.run(region, progress, cancel)        # crop in, crop out
    foreground, alpha = region.paste(crop.foreground, crop.alpha, np.uint16)  # whole image, at the job's depth
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drip_protocol import TRIMAP_BACKGROUND as BACKGROUND
from drip_protocol import TRIMAP_FOREGROUND as FOREGROUND
from drip_protocol import TRIMAP_UNKNOWN as UNKNOWN

from .errors import EngineError
# The sample types a job's pixels may have, and their full-scale value.
SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def unknown_bbox(trimap: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """(rows, cols) slices around every unknown (128) pixel, widened by ``margin``; None if none."""
    return mask_bbox(trimap == UNKNOWN, margin)


def mask_bbox(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Bounding box of the non-zero pixels of ``mask`` widened by ``margin``; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return widen((slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)), margin, mask.shape)


def widen(box: tuple[slice, slice], margin: int, shape) -> tuple[slice, slice]:
    """``box`` (rows, cols) grown by ``margin`` on every side, clipped to an image of ``shape``."""
    rows, cols = box
    return (slice(max(rows.start - margin, 0), min(rows.stop + margin, shape[0])),
            slice(max(cols.start - margin, 0), min(cols.stop + margin, shape[1])))


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float samples -> float32 in [0, 1] (the engines' input)."""
    scale = SCALES.get(pixels.dtype)
    if scale is None:
        raise EngineError("bad_image", f"pixels must be uint8, uint16 or float32, not {pixels.dtype}")
    out = pixels.astype(np.float32)
    if scale != 1.0:
        out /= np.float32(scale)  # a division: exactly v / 255 or v / 65535, correctly rounded
    else:
        np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(out, 0.0, 1.0, out=out)  # HDR and negative values: the engines see [0, 1]
    return out


def from_float(values: np.ndarray, dtype) -> np.ndarray:
    """float values in [0, 1] -> samples of ``dtype`` (rounded to nearest; floats clipped)."""
    dtype = np.dtype(dtype)
    scale = SCALES[dtype]
    clipped = np.clip(values, 0.0, 1.0)
    if scale == 1.0:
        return clipped.astype(np.float32, copy=False)
    return np.rint(clipped * np.float32(scale)).astype(dtype)


@dataclass
class JobRegion:
    image: np.ndarray                    # H x W x 3 at the job's own depth (never converted whole)
    trimap: np.ndarray                   # H x W uint8: 0 / 128 / 255
    box: tuple[slice, slice]             # the unknown pixels' bounding box plus the context margin

    @classmethod
    def around_unknown(cls, image: np.ndarray, trimap: np.ndarray, margin: int) -> "JobRegion":
        """Check the inputs and find the region; a trimap without unknown pixels is an error."""
        image, trimap = np.asarray(image), np.asarray(trimap)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in SCALES or 0 in image.shape:
            raise EngineError("bad_image", f"the image must be H x W x 3 uint8, uint16 or float32, "
                                           f"got {image.dtype} {image.shape}")
        if trimap.shape != image.shape[:2] or trimap.dtype != np.uint8:
            raise EngineError("bad_trimap", f"the trimap is {trimap.dtype} {trimap.shape[::-1]} but must be uint8 "
                                            f"and the image's size {image.shape[1::-1]}")
        if ((trimap != BACKGROUND) & (trimap != UNKNOWN) & (trimap != FOREGROUND)).any():
            raise EngineError("bad_trimap", "trimap values must be 0, 128 or 255 (drip_core.trimap builds one)")
        box = unknown_bbox(trimap, margin)
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

    def paste(self, foreground: np.ndarray, alpha: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Whole-image (foreground, alpha) at ``dtype`` from the engine's crop result.

        Only the region's unknown pixels take the engine's values; known pixels keep the
        image's own samples (exact where alpha is 1, irrelevant where it is 0) and an alpha of
        exactly 0 or 1. Works in the output type, so no whole-image float copy is made.
        """
        dtype = np.dtype(dtype)
        full = SCALES[dtype]
        if foreground.shape != (*self.shape, 3) or alpha.shape != self.shape:
            raise EngineError("engine_failed", f"the engine returned {alpha.shape[::-1]} for a {self.shape[::-1]} region")
        if self.image.dtype == dtype:
            fg = self.image.copy()
        else:  # e.g. a 16-bit job asking for 8 bits: the known colours are converted too
            fg = from_float(to_float(self.image), dtype)
        out_alpha = self.trimap.astype(dtype)  # 255 -> 1, grey and black -> 0, without a mask temporary:
        np.floor_divide(out_alpha, FOREGROUND, out=out_alpha)
        out_alpha *= dtype.type(full)
        unknown = self.trimap[self.box] == UNKNOWN
        fg[self.box][unknown] = from_float(foreground[unknown], dtype)
        out_alpha[self.box][unknown] = from_float(alpha[unknown], dtype)
        return fg, out_alpha

    def paste_into(self, fg_out: np.ndarray, alpha_out: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> None:
        """Write the region's box of an existing whole-image result in place (a local re-solve):
        the same rule as ``paste`` (known pixels from the image and trimap, unknown ones from
        the engine), but only inside the box."""
        dtype = alpha_out.dtype
        if foreground.shape != (*self.shape, 3) or alpha.shape != self.shape:
            raise EngineError("engine_failed", f"the engine returned {alpha.shape[::-1]} for a {self.shape[::-1]} region")
        image, trimap = self.image[self.box], self.trimap[self.box]
        fg_box, alpha_box = fg_out[self.box], alpha_out[self.box]
        fg_box[...] = image if image.dtype == dtype else from_float(to_float(image), dtype)
        alpha_box[...] = (trimap == FOREGROUND) * dtype.type(SCALES[dtype])
        unknown = trimap == UNKNOWN
        fg_box[unknown] = from_float(foreground[unknown], dtype)
        alpha_box[unknown] = from_float(alpha[unknown], dtype)
