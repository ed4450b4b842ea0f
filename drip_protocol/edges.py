"""Edge controls: how a job's alpha and colours are adjusted after matting, and the preview.

They travel with every job (the plug-in's dialog sets them) and are applied by the server to
the matte it holds, so changing them never re-runs the matting: a job that differs only in its
edge controls is served from the server's last result (drip_core/edges.py applies them).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import ProtocolError

MAX_EDGE_PIXELS = 64.0
# What a preview shows behind the cut-out.
PREVIEW_BACKGROUNDS = ("checkerboard", "black", "white", "original")


@dataclass(frozen=True)
class EdgeSettings:
    """``shift``: pixels the edge moves out (+) or in (-); ``feather``: the blur's radius in
    pixels; ``contrast``: 0..100 % sharpening of soft edges; ``colour_cleanup``: 0..100 % of the
    decontaminated colours (0 = the photo's own colours under the alpha)."""
    shift: float = 0.0
    feather: float = 0.0
    contrast: int = 0
    colour_cleanup: int = 100

    def __post_init__(self):
        _check_number("shift", self.shift, -MAX_EDGE_PIXELS, MAX_EDGE_PIXELS)
        _check_number("feather", self.feather, 0.0, MAX_EDGE_PIXELS)
        _check_number("contrast", self.contrast, 0, 100)
        _check_number("colour_cleanup", self.colour_cleanup, 0, 100)

    @property
    def is_identity(self) -> bool:
        return self == EdgeSettings()

    @property
    def reach(self) -> int:
        """How far (pixels) an alpha change can spread once the controls are applied."""
        return int(abs(self.shift) + 3 * self.feather + 1.999) if not self.is_identity else 0

    def scaled(self, factor: float) -> "EdgeSettings":
        """The same controls on a copy of the image ``factor`` times the size (a preview)."""
        return dataclasses.replace(self, shift=round(self.shift * factor, 3),
                                   feather=round(self.feather * factor, 3))

    def to_header(self) -> dict:
        """The job header's ``edge`` object: only what differs from the identity."""
        default = EdgeSettings()
        return {k: v for k, v in dataclasses.asdict(self).items() if getattr(default, k) != v}

    @classmethod
    def from_header(cls, value) -> "EdgeSettings":
        if value is None:
            return cls()
        if not isinstance(value, dict) or set(value) - {f.name for f in dataclasses.fields(cls)}:
            raise ProtocolError("bad_request", "field 'edge' must be an object with shift, feather, "
                                               "contrast and colour_cleanup")
        return cls(**value)


def _check_number(name: str, value, lo, hi) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ProtocolError("bad_request",
                            f"edge field '{name}' must be a number in {lo}..{hi}, got {value!r}")
