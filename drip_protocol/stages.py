"""The stages a job's progress messages name: the server sends them, every client shows them."""
from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    QUEUED = "queued"                # waiting in the server's queue (message: how many ahead)
    PREPARING = "preparing"          # building the trimap
    LOADING_MODEL = "loading model"  # loading the engine (and its model)
    STARTING = "starting"            # the engine starts (message: which engine, and why)
    ALPHA = "alpha"                  # solving alpha (message: which part)
    FOREGROUND = "foreground"        # estimating the foreground colours
    ENCODING = "encoding"            # DRIP: the image and trimap into latents
    DENOISING = "denoising"          # DRIP's diffusion steps (message: step i/n)
    DECODING = "decoding"            # DRIP: latents back to foreground and alpha
    DONE = "done"

    @classmethod
    def of(cls, text: str) -> "Stage | None":
        """The stage a message names, or None for one this version does not know."""
        try:
            return cls(text)
        except ValueError:
            return None
