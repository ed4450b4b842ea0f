"""Trimaps: the one owner of trimap values (values.py) and every way a job's trimap is made.

    values      FOREGROUND / UNKNOWN / BACKGROUND, split(), masks to 8 bits
    fixed_band  a selection + a radius in pixels
    feathered   a feathered selection
    painted     a painted trimap channel
    smart_band  a rough selection + the image: a band that adapts to the edge
    build       the protocol's ``trimap_source`` -> one of the above
"""
from .build import build
from .feathered import from_feathered
from .fixed_band import from_selection
from .painted import from_painted
from .values import BACKGROUND, FOREGROUND, UNKNOWN, Regions, as_mask, check_shape, snap, split

__all__ = ["BACKGROUND", "FOREGROUND", "UNKNOWN", "Regions", "as_mask", "build", "check_shape",
           "from_feathered", "from_painted", "from_selection", "snap", "split"]
