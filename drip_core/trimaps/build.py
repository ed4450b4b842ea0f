"""The one entry point: a job's trimap from its source (the protocol's ``trimap_source``)."""
from __future__ import annotations

import numpy as np

from drip_protocol import AUTO_BAND, DEFAULT_BAND_RADIUS

from ..errors import EngineError
from .feathered import from_feathered
from .fixed_band import from_selection
from .painted import from_painted


def build(source: str, mask, band_radius=DEFAULT_BAND_RADIUS, shape=None, image=None,
          engine=None) -> np.ndarray:
    """Dispatch on the protocol's ``trimap_source`` names; for a selection band, ``band_radius``
    is a number of pixels or "auto" (the smart band, which needs the ``image`` and the ``engine``
    its second pass mattes with: drip_core.engines.registry.refining_engine())."""
    if source == "selection_band":
        if band_radius == AUTO_BAND:
            if image is None:
                raise EngineError("bad_request", "the smart band needs the image")
            from .smart_band import smart_trimap  # its colour models cost imports: loaded when used
            return smart_trimap(image, mask, shape=shape, engine=engine)
        return from_selection(mask, band_radius, shape)
    if source == "feathered":
        return from_feathered(mask, shape)
    if source == "trimap":
        return from_painted(mask, shape)
    raise EngineError("bad_request", f"unknown trimap source '{source}'")
