"""The dialog's decisions, free of GIMP: its fields, plain words, the edge controls and the preview's
geometry (tested on the host in tests/test_dialog_rules.py)."""
from __future__ import annotations

import math

import drip_protocol as protocol

# Edge controls: the procedure's arguments, in the dialog's order.
EDGE_FIELDS = ("edge-shift", "edge-feather", "edge-contrast", "colour-cleanup")
# The preview's switch and background: the dialog's own widgets (remembered with the settings,
# never a script's business).
PREVIEW_FIELDS = ("preview", "preview-background")
# The preview is matted from a copy at most this many pixels a side: it answers within a second.
PREVIEW_LONGEST = 360
PREVIEW_BACKGROUNDS = [("checkerboard", "Checkerboard"), ("black", "Black"), ("white", "White"),
                       ("original", "Original (dimmed)")]
HELP_PAGE = "help/index.html"   # beside the plug-in; the Help button opens it
DRIP_HOWTO = ("The DRIP engine needs a model: import one with the installer "
              "(install.sh --drip-model FOLDER); until then the classical engine is used.")


def engine_choices(drip_available: bool):
    """(nick, label) of the engine choice in plain words. Without a model DRIP is still a value a
    script may pass (the server then says what is missing), but the dialog greys it out."""
    drip = "DRIP (AI model)" if drip_available else "DRIP (AI model: not installed)"
    return [("auto", "Automatic (DRIP when installed, else classical)"),
            ("classical", "Classical (no AI model needed)"), ("drip", drip)]


def edge_settings(values) -> protocol.EdgeSettings:
    """The edge controls from the procedure's values (``values``: name -> value, e.g. a config's
    get_property)."""
    return protocol.EdgeSettings(shift=float(values("edge-shift")), feather=float(values("edge-feather")),
                                 contrast=int(values("edge-contrast")),
                                 colour_cleanup=int(values("colour-cleanup")))


def preview_scale(width: int, height: int, longest: int = PREVIEW_LONGEST) -> float:
    """The factor that brings a region to at most ``longest`` pixels a side (never enlarges)."""
    return min(1.0, longest / max(width, height, 1))


def scaled_rect(r, scale: float):
    """(x, y, w, h) in the coordinates of a copy ``scale`` times the size (at least 1 x 1)."""
    x, y, w, h = r
    x0, y0 = math.floor(x * scale), math.floor(y * scale)
    return (x0, y0, max(1, math.ceil((x + w) * scale) - x0), max(1, math.ceil((y + h) * scale) - y0))


def scaled_band(band_radius, scale: float):
    """A fixed band's radius on the reduced copy; the smart band adapts by itself."""
    if band_radius == protocol.AUTO_BAND:
        return band_radius
    return max(1, round(int(band_radius) * scale))


def preview_job(job: protocol.JobSpec, edge: protocol.EdgeSettings, scale: float,
                background: str) -> protocol.JobSpec:
    """The run's job as a preview of the reduced copy: 8-bit, the band and the edge controls
    scaled with it, the foreground composited over ``background``."""
    return job.replace(result_depth=8, image_format="rgb8", want_trimap=False,
                       band_radius=scaled_band(job.band_radius, scale), edge=edge.scaled(scale),
                       preview=background)


def preview_text(seconds: float, scale: float, rerun: str) -> str:
    """The line under the preview: how it was made, so nobody takes it for the final pixels."""
    what = "edge controls only" if rerun == "unchanged" else "matted"
    return f"Preview at {scale:.0%} of the size: {what} in {seconds:.1f} s"
