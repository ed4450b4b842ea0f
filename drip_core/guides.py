"""A guide file -> the job's trimap: a painted trimap, or a selection mask turned into one by the
band rule. The one reader for drip-matte (cli.py) and batch (cluster/jobs.py): the same checks,
the same words, so a photo gives the same trimap and the same message both ways.

A colour picture is refused, an RGBA mask's alpha is its selection (image_io.read_guide), and a
JPEG trimap is snapped to the nearest of 0 / 128 / 255 with a warning (compression noise would
otherwise turn pixels unsure).
"""
from __future__ import annotations

import sys

import numpy as np

from .errors import UserError
from .image_io import is_jpeg, read_guide
from .trimaps.values import UNKNOWN


class GuideError(UserError):
    """A guide the job cannot use; ``code``: the protocol's error code for it (batch reports)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def print_warning(line: str) -> None:
    print(f"drip-matte: warning: {line}", file=sys.stderr)


def read_trimap(path: str, shape, warn=print_warning) -> np.ndarray:
    """A painted trimap (anything but pure white / black is unknown); a JPEG one snapped by nearest."""
    from . import trimaps
    grey = read_guide(path, "trimap")
    if grey.shape != tuple(shape[:2]):
        raise GuideError("bad_trimap", f"the trimap {path} is {grey.shape[1]}x{grey.shape[0]} "
                                       f"but the image is {shape[1]}x{shape[0]}")
    if is_jpeg(path):
        trimap = trimaps.snap(trimaps.as_mask(grey, "trimap"))
        moved = int((grey != trimap).sum())
        warn(f"the trimap {path} is a JPEG, whose compression shifts values: each pixel was snapped to "
             f"the nearest of black (0), grey (128) and white (255), {moved} of them moved. Save trimaps "
             "as PNG to keep them exact.")
    else:
        trimap = trimaps.from_painted(grey)
    if not (trimap == UNKNOWN).any():
        raise GuideError("no_unknown", f"the trimap {path} has no unknown (grey) pixels, so there is nothing "
                                       "to matte: paint grey where the object's edge is unsure")
    return trimap


def read_mask_as_trimap(path: str, image: np.ndarray, band) -> np.ndarray:
    """A selection mask -> trimap with the plug-in's band rule (drip_core.trimaps.build)."""
    from . import trimaps
    from .engines import refining_engine
    grey = read_guide(path, "mask")
    if grey.shape != image.shape[:2]:
        raise GuideError("bad_trimap", f"the mask {path} is {grey.shape[1]}x{grey.shape[0]} but the image is "
                                       f"{image.shape[1]}x{image.shape[0]}")
    selected = trimaps.as_mask(grey, "mask") >= 128  # the band rule's own threshold
    if not selected.any():
        raise GuideError("empty_selection", f"the mask {path} selects nothing (it is black everywhere): "
                                            "white marks the object to cut out")
    if selected.all():
        raise GuideError("no_unknown", f"the mask {path} selects the whole image, so there is no edge to "
                                       "matte: select only the object (white) and leave the background black")
    return trimaps.build("selection_band", grey, band, image.shape, image, engine=refining_engine())
