"""The refine loop's decisions, GIMP-free (stdlib only; tests/test_plugin_logic.py runs them on the host).

After a run the plug-in leaves the image ready to paint: the selection saved as the layer's
"Drip selection" channel and lifted (it would clip the brush), the trimap channel shown in a
colour that reads against the picture, and that channel selected. The next run then decides
its trimap from what the person did since (choose_trimap_source), and sends the region the
layer's result already covers (stable_region), so the server still holds its pixels.
"""
from __future__ import annotations

import colorsys
import zlib

SELECTION_CHANNEL = "Drip selection"   # each source layer has its own: "Drip selection: <layer name>"
# Parasite on a trimap channel: the fingerprint of what it held when the last run finished.
PRINT_PARASITE = "drip-matting-trimap-print"

SELECTION_KINDS = ("selection-band", "feathered-selection")
CHANNEL = "trimap-channel"

# What the dialog says when both changed since the last run (the person chooses there).
BOTH_CHANGED = ("You painted on the Drip trimap and also made a new selection since the last run. "
                "\"Trimap from\" says which one this run uses.")


def selection_channel_name(layer_name: str) -> str:
    return f"{SELECTION_CHANNEL}: {layer_name}"


def fingerprint(data) -> str:
    """A short print of a channel's bytes: equal prints, unchanged channel."""
    return f"{zlib.crc32(bytes(data)):08x}:{len(data)}"


def choose_trimap_source(asked: str, *, painted: bool, new_selection: bool, has_trimap: bool,
                         has_saved_selection: bool) -> tuple[str, bool]:
    """(trimap source, both changed?) for a run started from the menu or repeated.

    The painted channel when it changed since the last run; a selection made since then
    otherwise (as a band, or feathered when that was the last choice). Both changed: the
    channel, and the caller says so. Neither: the last choice again, from the saved selection
    when it was a selection (another band setting, say), else from the channel.
    """
    kind = asked if asked in SELECTION_KINDS else SELECTION_KINDS[0]
    if painted:
        return CHANNEL, new_selection
    if new_selection:
        return kind, False
    if asked in SELECTION_KINDS and has_saved_selection:
        return asked, False
    if has_trimap:
        return CHANNEL, False
    return kind, False


def contains(outer, inner) -> bool:
    """Whether rectangle ``outer`` (x, y, w, h) holds all of ``inner``."""
    ox, oy, ow, oh = outer
    ix, iy, iw, ih = inner
    return ox <= ix and oy <= iy and ix + iw <= ox + ow and iy + ih <= oy + oh


def stable_region(needed, held):
    """The region a run sends: the one the layer's result already covers (``held``) when it holds
    the ``needed`` one, so the server finds the same pixels in its cache and a painted rerun is
    local from the first one; else the needed one."""
    return tuple(held) if held is not None and contains(held, needed) else tuple(needed)


# Overlay colours a trimap channel may take (saturated, hues far apart), the first the default.
OVERLAY_COLOURS = ((1.0, 0.0, 1.0), (0.0, 0.9, 0.0), (0.0, 0.8, 1.0), (1.0, 0.5, 0.0), (0.1, 0.2, 1.0),
                   (1.0, 1.0, 0.0))
NEAR_HUE = 1 / 12   # hues closer than 30 degrees read as the same colour under a half-opaque overlay
COLOURFUL = 0.25    # below this saturation (or this value) a pixel is greyish: any overlay reads on it


def overlay_colour(samples) -> tuple[float, float, float]:
    """The overlay colour whose hue fewest of the picture's colourful ``samples`` (r, g, b in 0..1)
    share: a magenta overlay on a purple shirt is hard to read, a green one is not."""
    hues = []
    for r, g, b in samples:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        if s >= COLOURFUL and v >= COLOURFUL:
            hues.append(h)

    def alike(colour):
        hue = colorsys.rgb_to_hsv(*colour)[0]
        return sum(1 for h in hues if min(abs(h - hue), 1 - abs(h - hue)) < NEAR_HUE)
    return min(OVERLAY_COLOURS, key=alike)


def rgb_samples(values, width: int, height: int, scale: float = 255.0, count: int = 4096):
    """About ``count`` (r, g, b) colours in 0..1 on a grid over an RGB block of ``values`` (samples,
    ``scale`` their white: 255 for 8 bits, 65535 for 16, 1.0 for float)."""
    step = max(1, int((width * height / count) ** 0.5))
    out = []
    for y in range(0, height, step):
        row = y * width * 3
        for x in range(0, width, step):
            i = row + 3 * x
            out.append((values[i] / scale, values[i + 1] / scale, values[i + 2] / scale))
    return out
