#!/usr/bin/env python3
"""Filters > Drip Matting...: AI matting of the active layer from the selection (GIMP 3.0 / 3.2).

The plug-in reads only the region around the selection (the selection's bounds plus the band
plus plugin_logic.DEFAULT_MARGIN: the one margin on this side; the server crops no further
than the engine needs), sends its RGB at the layer's own precision with the selection mask
(or a painted trimap channel) to the local Drip server, and adds the results as new layers
above the source layer, in one undo group. The layer's own transparency never leaves GIMP:
it is put back on the result here. Python standard library + GI only; the GIMP-free logic is
in plugin_logic.py, the wire protocol in the drip_protocol package (shipped beside this file
by the installer). See docs/gimp.md.
"""
import collections
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import dialog_rules as rules  # noqa: E402
import loop_rules as loop  # noqa: E402
import plugin_logic as logic  # noqa: E402
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

import drip_protocol as protocol  # noqa: E402
from drip_protocol import ProtocolError  # noqa: E402

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
RW = GObject.ParamFlags.READWRITE
# Undoable: a persistent parasite that is not would push a "Can't undo" step into the run's
# undo group, and GIMP warns on every Ctrl+Z of the run.
PARASITE_FLAGS = Gimp.PARASITE_PERSISTENT | getattr(Gimp, "PARASITE_UNDOABLE", 2)


def _choice(items):
    c = Gimp.Choice.new()
    for i, (nick, label) in enumerate(items):
        c.add(nick, i, label, "")
    return c


# ----------------------------------------------------------------------------------------
# Small GIMP helpers
# ----------------------------------------------------------------------------------------

def rect(x, y, w, h):
    return Gegl.Rectangle.new(int(x), int(y), int(w), int(h))


def read(drawable, r, fmt, abyss=Gegl.AbyssPolicy.NONE):
    buf = drawable.get_buffer()
    return bytes(buf.get(rect(*r), 1.0, fmt, abyss))


def write(buf, r, fmt, data):
    buf.set(rect(*r), fmt, data)
    buf.flush()


def native_grey(drawable, sample_type, fallback):
    """The grey babl format a mask/channel is stored in, at ``sample_type`` (u8/u16).

    Layer masks, selections and channels hold coverage numbers; reading and writing them
    in their own transfer curve (linear "Y" or perceptual "Y'") moves those numbers
    without conversion. GIMP does not store them in the image's curve everywhere, so ask.
    """
    try:
        gi.require_version("Babl", "0.1")
        from gi.repository import Babl
        model = Babl.format_get_encoding(drawable.get_format()).split(" ")[0]
        if model in ("Y", "Y'", "Y~", "YA", "Y'A", "Y~A"):
            return f"{model[:-1] if model.endswith('A') else model} {sample_type}"
    except Exception:  # noqa: BLE001 - older bindings: fall back to the precision's guess
        pass
    return fallback


def clip_to_image(r, img_w, img_h):
    """Intersection of r=(x, y, w, h) with the image, or None."""
    x, y, w, h = r
    x1, y1 = max(x, 0), max(y, 0)
    x2, y2 = min(x + w, img_w), min(y + h, img_h)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def write_tiles(buf, rects, fmt, data, width, height, origin=(0, 0)):
    """Write the rectangles ``rects`` (buffer coordinates) of ``data`` (width x height pixels
    placed at ``origin`` of the buffer) into ``buf``: the rest already holds the right values
    (GIMP's plug-in tile transfer is the slow part of writing a large result)."""
    bpp = len(data) // (width * height)
    for r in rects:
        block = logic.crop_rect(data, width, (r[0] - origin[0], r[1] - origin[1], r[2], r[3]), bpp)
        buf.set(rect(*r), fmt, block)
    buf.flush()


def write_image_sized(drawable, img_w, img_h, roi_img, data, fmt, rects=None):
    """Write a ROI block (image coordinates) into an image-sized channel, clipped to the image;
    ``rects`` (ROI coordinates): only those parts of it (the rest already holds its values)."""
    x, y, w, h = roi_img
    blocks = [(0, 0, w, h)] if rects is None else rects
    parts = [p for p in (clip_to_image((rx + x, ry + y, rw, rh), img_w, img_h) for rx, ry, rw, rh in blocks)
             if p is not None]
    if not parts:
        return
    write_tiles(drawable.get_buffer(), parts, fmt, data, w, h, origin=(x, y))
    drawable.update(*clip_to_image(roi_img, img_w, img_h))


def siblings(image, layer):
    parent = layer.get_parent()
    return list(parent.get_children()) if parent is not None else list(image.get_layers())


def find_named(items, name):
    for it in items:
        if it.get_name() == name:
            return it
    return None


# ----------------------------------------------------------------------------------------
# Which source layer an item belongs to (parasites), and that layer's own Drip items
# ----------------------------------------------------------------------------------------

def attach(item, name, data: bytes):
    """Attach the plug-in's parasite ``name`` holding ``data`` (undoable: PARASITE_FLAGS)."""
    item.attach_parasite(Gimp.Parasite.new(name, PARASITE_FLAGS, list(data)))


def parasite_data(item, name):
    """The bytes of the parasite ``name`` on ``item``, or None (none, or bindings that differ)."""
    try:
        parasite = item.get_parasite(name)
    except Exception:  # noqa: BLE001 - an item without it is simply not ours
        return None
    return bytes(parasite.get_data()) if parasite is not None else None


def mark_source(item, layer):
    """Tag a result layer or trimap channel with the tattoo of its source layer."""
    attach(item, logic.SOURCE_PARASITE, logic.source_parasite_data(layer.get_tattoo()))


def source_tattoo(item):
    data = parasite_data(item, logic.SOURCE_PARASITE)
    return logic.parse_source_parasite(data) if data is not None else None


def owned_by(item, layer) -> bool:
    return source_tattoo(item) == layer.get_tattoo()


def find_result_layer(image, layer, name):
    """This source layer's result layer called ``name`` (an untagged one from an older run too)."""
    for it in siblings(image, layer):
        if it.get_name().startswith(name) and (owned_by(it, layer) or
                                               (it.get_name() == name and source_tattoo(it) is None)):
            return it
    return None


def result_held(item):
    """(result id, rect) of the server result a Drip layer holds, or None."""
    data = parasite_data(item, logic.RESULT_PARASITE)
    return logic.parse_result_parasite(data) if data is not None else None


def mark_result(item, result_id, rect):
    """Tag a Drip layer with the result it now holds (or untag it: the server named none)."""
    try:
        item.detach_parasite(logic.RESULT_PARASITE)
    except Exception:  # noqa: BLE001 - it had none
        pass
    if isinstance(result_id, str) and result_id:
        attach(item, logic.RESULT_PARASITE, logic.result_parasite_data(result_id, rect))


def output_layers(outputs):
    return [name for out, name in (("foreground", logic.FG_LAYER), ("alpha", logic.ALPHA_LAYER))
            if out in outputs]


def held_result_id(image, layer, outputs, roi_img):
    """The server result this source's Drip layers hold whole, for exactly this region: a rerun
    names it and gets back only what changed. None when any output needs the whole result (a
    selection) or a layer was moved, resized or made by another result."""
    if "selection" in outputs:
        return None
    ids = set()
    for name in output_layers(outputs):
        old = find_result_layer(image, layer, name)
        if old is None:
            return None
        ok, lx, ly = old.get_offsets()
        held = result_held(old)
        if held is None or held[1] != tuple(roi_img) \
                or (lx, ly, old.get_width(), old.get_height()) != tuple(roi_img):
            return None
        ids.add(held[0])
    return ids.pop() if len(ids) == 1 else None


def rewrite(layer, rect, fmt, data, mask_fmt=None, mask_data=None):
    """Write ``rect`` (layer coordinates) of a layer (and its mask) in place as one undoable step:
    shadow buffer + merge. The merge only touches selected pixels (none selected: all)."""
    write(layer.get_shadow_buffer(), rect, fmt, data)
    layer.merge_shadow(True)
    layer.update(*rect)
    if mask_data is not None:
        m = layer.get_mask()
        write(m.get_shadow_buffer(), rect, native_grey(m, mask_fmt.split(" ")[1], mask_fmt), mask_data)
        m.merge_shadow(True)
        m.update(*rect)


def put_patch(image, source, name, rect, roi_img, fmt, data, mask_fmt=None, mask_data=None):
    """Rewrite only ``rect`` (layer coordinates) of the existing layer ``name``: the merge of the
    shadow buffer (whose other pixels are undefined) is limited to the selection, so the
    rectangle is selected first."""
    layer = find_result_layer(image, source, name)
    x, y, w, h = rect
    image.select_rectangle(Gimp.ChannelOps.REPLACE, roi_img[0] + x, roi_img[1] + y, w, h)
    rewrite(layer, rect, fmt, data, mask_fmt, mask_data)
    return layer


def owned_channel(image, layer, prefix):
    """This source layer's own channel whose name starts with ``prefix``."""
    for ch in image.get_channels():
        if ch.get_name().startswith(prefix) and owned_by(ch, layer):
            return ch
    return None


def find_trimap(image, layer):
    """This source layer's own trimap channel (or the single-image one of older versions)."""
    channels = list(image.get_channels())
    return owned_channel(image, layer, logic.TRIMAP_CHANNEL) or \
        find_named(channels, logic.trimap_channel_name(layer.get_name())) or \
        find_named(channels, logic.TRIMAP_CHANNEL)


def resolve_source(image, drawables):
    """The source layer of what is selected: a plain layer, or one of the plug-in's own items (the
    trimap channel just painted on, a result layer, the saved selection)."""
    if len(drawables) != 1:
        raise logic.make_error("not_a_layer", f"{len(drawables)} items are selected")
    item = drawables[0]
    tattoo = source_tattoo(item)
    if tattoo is not None and not isinstance(item, Gimp.LayerMask):
        source = image.get_layer_by_tattoo(tattoo)
        if source is not None:
            return source
    if isinstance(item, Gimp.Layer) and item.is_group():
        # GIMP's sensitivity masks cannot grey the menu out for groups: this message must do
        raise logic.make_error("not_a_layer", f"\"{item.get_name()}\" is a layer group, which has no "
                                              "pixels of its own to cut out")
    if not isinstance(item, Gimp.Layer) or isinstance(item, Gimp.LayerMask):
        raise logic.make_error("not_a_layer", "the selected item is not a plain layer")
    return item


def alive(*items) -> bool:
    """False once the image is closed or an item deleted (any call on them would then fail)."""
    try:
        return all(it is not None and it.is_valid() for it in items)
    except Exception:  # noqa: BLE001
        return False


_progress_broken = []
# Each update of GIMP's progress bar is a round trip to GIMP, which redraws: the server reports
# far more often than a person can see (80 reports in one 27-MP run cost 1 s), so a report with
# the same text is shown only once PROGRESS_EVERY seconds have passed.
PROGRESS_EVERY = 0.2
_progress_shown = {"text": None, "at": 0.0}


def progress(fraction=None, text=None):
    now = time.monotonic()
    if text == _progress_shown["text"] and now - _progress_shown["at"] < PROGRESS_EVERY and fraction != 1.0:
        return
    _progress_shown.update(text=text if text is not None else _progress_shown["text"], at=now)
    try:
        if text is not None:
            Gimp.progress_set_text(text)
        if fraction is not None:
            Gimp.progress_update(min(max(fraction, 0.0), 1.0))
    except Exception as exc:  # noqa: BLE001 - progress is cosmetic; never fail a run on it
        if not _progress_broken:
            _progress_broken.append(exc)
            print(f"drip-matting: progress display failed ({exc.__class__.__name__}: {exc})", file=sys.stderr)
    if os.environ.get("DRIP_MATTING_DEBUG_PROGRESS") and text is not None:
        shown = fraction if fraction is not None else "-"
        print(f"drip-matting progress: {now:.3f} {shown} {text}", file=sys.stderr)


# ----------------------------------------------------------------------------------------
# The refine loop: what the image holds between runs (loop_rules.py decides)
# ----------------------------------------------------------------------------------------

TRIMAP_FMT = "Y' u8"


def whole(image, drawable, fmt):
    """An image-sized channel's bytes."""
    return read(drawable, (0, 0, image.get_width(), image.get_height()), fmt)


def selection_print(image):
    """The current selection's fingerprint, "-" when nothing is selected."""
    if Gimp.Selection.is_empty(image):
        return "-"
    sel = image.get_selection()
    return loop.fingerprint(whole(image, sel, native_grey(sel, "u8", "Y u8")))


class LoopState(collections.namedtuple("LoopState",
                                       "trimap trimap_data painted saved_selection new_selection")):
    """The layer's trimap channel and its bytes (None: not read), whether it was painted since the
    last run, its saved selection channel, and whether a selection was made since."""
    __slots__ = ()


def loop_state(image, layer, read_trimap=True) -> LoopState:
    trimap = find_trimap(image, layer)
    data, painted, left = None, False, "-"
    if trimap is not None and read_trimap:
        data = whole(image, trimap, TRIMAP_FMT)
        raw = parasite_data(trimap, loop.PRINT_PARASITE) or b""
        held = raw.decode("ascii").split() if raw.isascii() else []  # not ours: no print
        painted = bool(held) and held[0] != loop.fingerprint(data)
        left = held[1] if len(held) > 1 else "-"
    new_selection = not Gimp.Selection.is_empty(image) and (left == "-" or selection_print(image) != left)
    saved = owned_channel(image, layer, loop.SELECTION_CHANNEL)
    return LoopState(trimap, data, painted, saved, new_selection)


def decide_trimap_source(image, layer, config, run_mode):
    """For a run from the menu or a repeat: read the loop's state, set the config's trimap source
    to what loop_rules decides; -> (state, the dialog's note or None). A repeat cannot ask, so
    when both the trimap and the selection changed it stops with a message."""
    state = loop_state(image, layer)
    source, both = loop.choose_trimap_source(
        config.get_property("trimap-source"), painted=state.painted, new_selection=state.new_selection,
        has_trimap=state.trimap is not None, has_saved_selection=state.saved_selection is not None)
    if both and run_mode != Gimp.RunMode.INTERACTIVE:
        raise logic.make_error("both_changed",
                               "the trimap was painted and a new selection made since the last run")
    config.set_property("trimap-source", source)
    return state, (loop.BOTH_CHANGED if both else None)


def held_region(image, layer):
    """The region (image coordinates) this layer's Drip layers hold a server result for, or None."""
    for name in (logic.FG_LAYER, logic.ALPHA_LAYER):
        item = find_result_layer(image, layer, name)
        held = result_held(item) if item is not None else None
        if held is not None:
            ok, lx, ly = item.get_offsets()
            if (lx, ly, item.get_width(), item.get_height()) == tuple(held[1]):
                return tuple(held[1])
    return None


def keep_selection(image, layer, channel):
    """Keep the selection lifted for the run as the layer's "Drip selection" channel (the last one
    replaced): painting is no longer clipped by it, and Select > From channel brings it back."""
    old = owned_channel(image, layer, loop.SELECTION_CHANNEL)
    if old is not None:
        image.remove_channel(old)
    channel.set_name(loop.selection_channel_name(layer.get_name()))
    mark_source(channel, layer)
    channel.set_visible(False)


def show_trimap(image, trimap, colour=None, known_print=None):
    """The trimap channel shown (in ``colour`` when given) and its fingerprint stored (read, unless
    ``known_print`` is it): the next run tells a painted trimap from this one."""
    if colour is not None:
        c = Gegl.Color.new("black")
        c.set_rgba(*colour, 1.0)
        trimap.set_color(c)
    trimap.set_visible(True)
    text = f"{known_print or loop.fingerprint(whole(image, trimap, TRIMAP_FMT))} {selection_print(image)}"
    attach(trimap, loop.PRINT_PARASITE, text.encode("ascii"))


def select_for_painting(image, layer, s):
    """After a run, the item a brush should paint on: the trimap channel (kept), else the cut-out."""
    trimap = find_trimap(image, layer) if s.keep_trimap else None
    result = find_result_layer(image, layer, logic.FG_LAYER) if "foreground" in s.outputs else None
    if trimap is not None:
        image.set_selected_channels([trimap])
    else:
        image.set_selected_layers([result if result is not None else layer])


# ----------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------

class Settings:
    def __init__(self, config):
        self.trimap_source = config.get_property("trimap-source")
        self.keep_source_visible = bool(config.get_property("keep-source-visible"))
        # the smart band ("auto") unless the user switched it off for a fixed radius
        self.band_radius = (protocol.AUTO_BAND if config.get_property("smart-band")
                            else int(config.get_property("band-radius")))
        self.engine = config.get_property("engine")
        self.outputs = logic.OUTPUTS.get(config.get_property("outputs"), ("foreground",))
        self.keep_trimap = bool(config.get_property("keep-trimap"))
        self.server = config.get_property("server") or "auto"
        self.edge = rules.edge_settings(config.get_property)
        # the refine loop: a trimap to paint on, and no selection output to keep
        self.refine_loop = self.keep_trimap and "selection" not in self.outputs


def gather_input(image, layer, s, prec, state):
    """-> (roi in layer coords, RGB bytes, the layer's alpha bytes or None, mask bytes, the trimap
    channel's fingerprint when the run is from it). Raises ProtocolError."""
    ok, ox, oy = layer.get_offsets()
    src = mask_source(image, layer, s, state, prec["mask8"])
    held = held_region(image, layer)
    # the region the layer's result covers, when it holds this one: the server still has its pixels
    roi = loop.stable_region(src.roi, logic.offset_rect(held, -ox, -oy) if held is not None else None)
    mask = read_mask(image, src, logic.offset_rect(roi, ox, oy))
    if s.trimap_source != "trimap-channel" and not mask.strip(b"\x00"):
        raise ProtocolError("empty_selection", "the selection does not cover any of the layer")
    w, h = roi[2], roi[3]
    layer_alpha = None
    if layer.has_alpha():
        rgba = read(layer, roi, prec["rgba"], Gegl.AbyssPolicy.CLAMP)
        pixels, layer_alpha = logic.split_alpha(rgba, w, h, prec["typecode"])
    else:
        pixels = read(layer, roi, prec["rgb"], Gegl.AbyssPolicy.CLAMP)
    return roi, logic.to_little_endian(pixels, prec["typecode"]), layer_alpha, mask, src.fingerprint


class MaskSource(collections.namedtuple("MaskSource", "drawable roi fingerprint fmt whole")):
    """Where a run reads its mask: the trimap channel or the selection, the region around what it
    marks (layer coordinates), the channel's fingerprint (None for a selection), the format to read
    it in, and the channel's image-sized bytes when they were read already (else None)."""
    __slots__ = ()


def mask_source(image, layer, s, state, selection_format) -> MaskSource:
    """Where a run with ``s`` reads its mask; ``selection_format``: a selection's when its own is
    not u8."""
    ok, ox, oy = layer.get_offsets()
    size = (layer.get_width(), layer.get_height())
    if s.trimap_source == "trimap-channel":
        source, roi, trimap_print, data = trimap_region(image, layer, state, (ox, oy), size)
        return MaskSource(source, roi, trimap_print, TRIMAP_FMT, data)
    source, roi = selection_region(image, layer, s, state, (ox, oy), size)
    return MaskSource(source, roi, None, native_grey(source, "u8", selection_format), None)


def read_mask(image, src: MaskSource, roi_img):
    """The mask's bytes over ``roi_img`` (image coordinates): cut from the channel's bytes already
    read when the region lies inside the image (each read from GIMP costs a round trip per tile),
    read from GIMP otherwise (outside the image a channel reads as 0)."""
    x, y, w, h = roi_img
    inside = x >= 0 and y >= 0 and x + w <= image.get_width() and y + h <= image.get_height()
    if src.whole is not None and inside:
        return logic.crop_rect(src.whole, image.get_width(), roi_img)
    return read(src.drawable, roi_img, src.fmt)


def trimap_region(image, layer, state, offsets, size):
    """(the trimap channel, the region around what it marks (layer coordinates), its fingerprint,
    its image-sized bytes)."""
    img_w, img_h = image.get_width(), image.get_height()
    channel = state.trimap
    if channel is None:
        raise logic.make_error("no_trimap_channel",
                               f"the layer \"{layer.get_name()}\" has no "
                               f"\"{logic.trimap_channel_name(layer.get_name())}\" channel")
    data = state.trimap_data if state.trimap_data is not None else whole(image, channel, TRIMAP_FMT)
    bounds = logic.nonzero_bounds(data, img_w, img_h)
    if bounds is None:
        raise ProtocolError("no_unknown", f"the \"{channel.get_name()}\" channel is all black (background)")
    roi = logic.roi_from_bounds(bounds, logic.DEFAULT_MARGIN, offsets, size)
    if roi is None:
        raise logic.make_error("outside_layer", "the trimap does not overlap the layer")
    return channel, roi, loop.fingerprint(data), data


def selection_region(image, layer, s, state, offsets, size):
    """(the selection, or the layer's saved one when nothing is selected; the region around it,
    layer coordinates)."""
    source = image.get_selection()
    ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    bounds = (x1, y1, x2, y2) if non_empty else None
    if bounds is None and state.saved_selection is not None:
        source = state.saved_selection
        bounds = logic.nonzero_bounds(whole(image, source, "Y u8"), image.get_width(), image.get_height())
    if bounds is None:
        raise ProtocolError("empty_selection", "nothing is selected")
    roi = logic.selection_roi(bounds, s.band_radius, offsets, size)
    if roi is None:
        raise logic.make_error("outside_layer", "the selection does not overlap the layer")
    return source, roi


def layer_types(image, has_alpha):
    grey = image.get_base_type() == Gimp.ImageBaseType.GRAY
    if grey:
        return ((Gimp.ImageType.GRAYA_IMAGE if has_alpha else Gimp.ImageType.GRAY_IMAGE),
                Gimp.ImageType.GRAY_IMAGE)
    return (Gimp.ImageType.RGBA_IMAGE if has_alpha else Gimp.ImageType.RGB_IMAGE), Gimp.ImageType.RGB_IMAGE


def copy_of_source(image, source, name, ltype, roi):
    """A new layer ``name`` holding the source's pixels of ``roi`` (copied inside GIMP, so they
    never cross the plug-in's pipe), with a new layer's properties; None when the source's
    type differs or it has a mask of its own."""
    x, y, w, h = roi
    try:
        if source.get_mask() is not None or source.type() != ltype:
            return None
        layer = Gimp.Layer.new_from_drawable(source, image)  # cropped to roi once inserted
        layer.set_name(name)
        layer.set_opacity(100.0)
        layer.set_mode(Gimp.LayerMode.NORMAL)
        layer.set_visible(True)
        for prop in ("set_lock_content", "set_lock_alpha", "set_lock_position"):
            getattr(layer, prop)(False)
        for parasite in layer.get_parasite_list():  # the source's own tags are not the result's
            layer.detach_parasite(parasite)
        for setter, enum, member in (("set_color_tag", "ColorTag", "NONE"),
                                     ("set_blend_space", "LayerColorSpace", "AUTO"),
                                     ("set_composite_space", "LayerColorSpace", "AUTO"),
                                     ("set_composite_mode", "LayerCompositeMode", "AUTO")):
            try:  # a new layer's defaults; cosmetic where a binding lacks one
                getattr(layer, setter)(getattr(getattr(Gimp, enum), member))
            except Exception:  # noqa: BLE001
                pass
        return layer
    except Exception as exc:  # noqa: BLE001 - older bindings: fall back to writing every pixel
        print(f"drip-matting: writing the whole layer ({exc})", file=sys.stderr)
        return None


def put_layer(image, source, name, ltype, roi, ox, oy, fmt, data, mask_fmt=None, mask_data=None, tiles=None):
    """Create the layer ``name`` just above ``source``, or rewrite the source's existing one (in
    place when it has the same place, size and kind; else it is replaced where it stands).
    ``tiles`` (the job's trimap, logic.TrimapTiles): ``data`` equals the source's own pixels
    wherever the trimap is not unknown, so a new layer starts as a copy of the source and only
    the tiles holding unknown pixels are written (GIMP's plug-in tile transfer is the slow part of
    a large first run: bench/gimp_refine.py)."""
    x, y, w, h = roi
    old = find_result_layer(image, source, name)
    if old is not None:
        ok, lx, ly = old.get_offsets()
        same = (old.get_width(), old.get_height(), lx, ly) == (w, h, ox + x, oy + y) \
            and old.has_alpha() == (ltype in (Gimp.ImageType.RGBA_IMAGE, Gimp.ImageType.GRAYA_IMAGE)) \
            and (mask_data is None) == (old.get_mask() is None)
        if same:
            rewrite(old, (0, 0, w, h), fmt, data, mask_fmt, mask_data)
            return old
        parent = old.get_parent()
        position = image.get_item_position(old)
        image.remove_layer(old)
    else:
        parent = source.get_parent()
        position = image.get_item_position(source)
    title = logic.result_layer_name(name, source.get_name())
    layer = copy_of_source(image, source, title, ltype, roi) if tiles is not None else None
    copied = layer is not None
    if not copied:
        layer = Gimp.Layer.new(image, title, w, h, ltype, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, parent, position)
    mark_source(layer, source)
    if copied:
        layer.resize(w, h, -x, -y)  # (old - new) offsets: the pixel at roi's corner becomes (0, 0)
    layer.set_offsets(ox + x, oy + y)
    if copied:
        write_tiles(layer.get_buffer(), tiles.holding(protocol.TRIMAP_UNKNOWN), fmt, data, w, h)
    else:
        write(layer.get_buffer(), (0, 0, w, h), fmt, data)
    if mask_data is not None:
        white, rects = tiles.mask_plan() if tiles is not None else (True, [(0, 0, w, h)])
        m = layer.create_mask(Gimp.AddMaskType.WHITE if white else Gimp.AddMaskType.BLACK)
        layer.add_mask(m)
        write_tiles(m.get_buffer(), rects, native_grey(m, mask_fmt.split(" ")[1], mask_fmt), mask_data, w, h)
        m.update(0, 0, w, h)
    layer.update(0, 0, w, h)
    return layer


def store_trimap(image, layer, trimap, tiles, roi_img, prec):
    """Write the server's trimap as the layer's own image-sized trimap channel (replacing only
    that layer's), tagged with the layer, in a colour that shows clearly when made visible."""
    img_w, img_h = image.get_width(), image.get_height()
    old = find_trimap(image, layer)
    position = 0
    if old is not None and source_tattoo(old) in (None, layer.get_tattoo()):
        position = image.get_item_position(old)
        image.remove_channel(old)
    color = Gegl.Color.new("black")
    color.set_rgba(*logic.TRIMAP_COLOR, 1.0)
    ch = Gimp.Channel.new(image, logic.trimap_channel_name(layer.get_name()), img_w, img_h,
                          logic.TRIMAP_OPACITY, color)
    image.insert_channel(ch, None, position)
    mark_source(ch, layer)
    ch.set_visible(False)
    # a new channel is all black (background): only the tiles holding anything else are sent
    write_image_sized(ch, img_w, img_h, roi_img, trimap, prec["trimap"],
                      rects=tiles.holding((protocol.TRIMAP_UNKNOWN, protocol.TRIMAP_FOREGROUND)))
    return ch


def alpha_to_selection(image, alpha, roi_img, prec):
    img_w, img_h = image.get_width(), image.get_height()
    ch = Gimp.Channel.new(image, "Drip selection", img_w, img_h, 50.0, Gegl.Color.new("black"))
    image.insert_channel(ch, None, 0)
    fmt = native_grey(ch, prec["mask"].split(" ")[1], prec["mask"])
    write_image_sized(ch, img_w, img_h, roi_img, alpha, fmt)
    image.select_item(Gimp.ChannelOps.REPLACE, ch)
    image.remove_channel(ch)


def image_gone():
    return logic.make_error("image_gone",
                            "the image was closed (or the layer deleted) while Drip Matting was working")


class Matte(collections.namedtuple("Matte", "roi origin fg alpha trimap layer_alpha patch tiles result_id")):
    """What came back from the server, ready to write: ``roi`` (layer coordinates) of the layer
    at ``origin`` (its offsets when it was read); buffers in native byte order, ROI-sized, or
    patch-sized when ``patch`` is the rectangle the server re-solved (ROI coordinates); the
    layer's own alpha for the ROI; ``tiles`` (logic.TrimapTiles of a whole result's trimap)."""
    __slots__ = ()

    @property
    def roi_img(self):
        return logic.offset_rect(self.roi, *self.origin)


def matte(image, layer, s, config, state):
    """One run: read the region around the selection, have the server matte it, add the results
    (one undo group). Returns the server's note (which engine ran) and its notes for the person
    (how an unusual result was made). Raises ProtocolError."""
    prec = logic.precision_info(image.get_precision().value_nick)
    Gimp.progress_init("Drip Matting")
    progress(0.01, "Drip Matting: reading the layer")
    roi, pixels, layer_alpha, mask, trimap_print = gather_input(image, layer, s, prec, state)
    origin = tuple(layer.get_offsets()[1:])
    result = run_on_server(image, layer, s, config, prec, logic.offset_rect(roi, *origin), pixels, mask)
    if not alive(image, layer):
        raise image_gone()
    progress(0.92, "Drip Matting: adding layers")
    add_results(image, layer, s, prec, decode_result(result, roi, origin, layer_alpha, prec), trimap_print)
    select_for_painting(image, layer, s)
    Gimp.displays_flush()
    engine_used = result["header"].get("engine")
    progress(1.0, f"Drip Matting: done ({engine_used} engine)" if isinstance(engine_used, str) and engine_used
             else "Drip Matting: done")
    return result["header"].get("note"), result["header"].get("notes") or []


def run_on_server(image, layer, s, config, prec, roi_img, pixels, mask):
    """Connect (starting the local server if need be), send the job for the region ``roi_img``
    (image coordinates) and follow its progress on GIMP's bar: Connection.run_job's result.
    The job is cancelled once the image is closed."""
    w, h = roi_img[2], roi_img[3]

    def on_wait(seconds):
        progress(0.03, f"Drip Matting: starting server ({seconds:.0f} s)")

    def on_progress(fraction, stage, message):
        if not alive(image, layer):
            return True  # closed or deleted meanwhile: cancel the job, touch nothing
        progress(logic.overall_fraction(fraction), logic.progress_text(stage, message))
        return False

    progress(0.02, "Drip Matting: connecting to the server")
    conn = logic.connect(s.server, config, on_wait=on_wait)
    try:
        job = logic.build_job(w, h, prec["depth"], s.trimap_source, s.band_radius, s.engine,
                              want_trimap=True).replace(edge=s.edge)
        # only the mask travels when the server still holds these pixels (protocol 3: Connection.run_job)
        progress(0.05, f"Drip Matting: sending the {w}x{h} job")
        # (a patch cannot update a trimap channel the plug-in would write whole: only reruns from
        # the painted channel, or without a kept trimap, take one)
        held = held_result_id(image, layer, s.outputs, roi_img) \
            if s.trimap_source == "trimap-channel" or not s.keep_trimap else None
        return conn.run_job(job, pixels, mask, on_progress, held_result=held)
    except ProtocolError as exc:
        if exc.code == "cancelled" and not alive(image, layer):
            raise image_gone() from None
        raise
    finally:
        conn.close()


def decode_result(result, roi, origin, layer_alpha, prec) -> Matte:
    typecode = prec["typecode"]
    trimap, patch = result["trimap"], result.get("patch")
    # which cells of the region the trimap marks known / unknown: what a whole write must send
    tiles = logic.TrimapTiles(trimap, roi[2], roi[3]) if trimap is not None and patch is None else None
    return Matte(roi, origin, logic.from_little_endian(result["foreground"], typecode),
                 logic.from_little_endian(result["alpha"], typecode), trimap, layer_alpha, patch, tiles,
                 result["header"].get("result_id"))


def add_results(image, layer, s, prec, m, trimap_print=None):
    """Write the matte ``m`` as the outputs ``s`` asks for, in one undo group (``trimap_print``: the
    fingerprint of the trimap channel the run was from, which it leaves as it was).

    Existing "Drip foreground"/"Drip alpha" beside the source are the plug-in's working result:
    every run updates them (in place when the region is the same) instead of piling up new
    layers. Rename a result layer to keep it."""
    image.undo_group_start()
    lifted = None
    try:
        image.set_selected_layers([layer])  # what undoing the new layers selects again
        if not Gimp.Selection.is_empty(image):
            # Merging a shadow buffer (the undoable in-place write) only touches selected
            # pixels: the selection is lifted for the update.
            lifted = Gimp.Selection.save(image)
            Gimp.Selection.none(image)
        write_outputs(image, layer, s, prec, m)
        if s.refine_loop and lifted is not None:
            keep_selection(image, layer, lifted)  # painting the trimap next: no selection clips it
            lifted = None
    finally:
        try:
            if lifted is not None:
                if "selection" not in s.outputs:
                    image.select_item(Gimp.ChannelOps.REPLACE, lifted)
                image.remove_channel(lifted)
            trimap = find_trimap(image, layer) if s.keep_trimap else None
            if trimap is not None:
                colour = overlay_colour(m, prec) if m.patch is None and trimap_print is None else None
                show_trimap(image, trimap, colour, trimap_print)
        finally:
            image.undo_group_end()


def overlay_colour(m, prec):
    """The trimap overlay's colour for the object matted in ``m``: its foreground colours decide."""
    scale = {"B": 255.0, "H": 65535.0, "f": 1.0}[prec["typecode"]]
    values = memoryview(bytes(m.fg)).cast(prec["typecode"])
    return loop.overlay_colour(loop.rgb_samples(values, m.roi[2], m.roi[3], scale))


def write_outputs(image, layer, s, prec, m):
    roi_img = m.roi_img
    if m.patch is not None:
        written = write_patch(image, layer, s.outputs, prec, m)
    else:
        written = write_whole(image, layer, s.outputs, prec, m)
    for item in written:
        mark_result(item, m.result_id, roi_img)
    if "selection" in s.outputs:
        alpha_to_selection(image, m.alpha, roi_img, prec)
    if s.keep_trimap and m.trimap is not None and s.trimap_source != "trimap-channel":
        store_trimap(image, layer, m.trimap, m.tiles, roi_img, prec)
    if "foreground" in s.outputs and not s.keep_source_visible:
        # Like a "new layer with layer mask" output: the cut-out is what you now see. The
        # same undo step brings the source back.
        layer.set_visible(False)


def write_patch(image, layer, outputs, prec, m):
    """Rewrite only the rectangle the server re-solved of the Drip layers (which hold the rest):
    the layers written."""
    w, h = m.roi[2], m.roi[3]
    pw, ph = m.patch[2], m.patch[3]
    roi_img = m.roi_img
    if pw and ph and "foreground" in outputs:
        data, fmt = m.fg, prec["rgb"]
        if m.layer_alpha is not None:
            bpp = len(m.layer_alpha) // (w * h)
            data = logic.merge_alpha(m.fg, logic.crop_rect(m.layer_alpha, w, m.patch, bpp), pw, ph,
                                     prec["typecode"])
            fmt = prec["rgba"]
        put_patch(image, layer, logic.FG_LAYER, m.patch, roi_img, fmt, data, prec["mask"], m.alpha)
    if pw and ph and "alpha" in outputs:
        put_patch(image, layer, logic.ALPHA_LAYER, m.patch, roi_img, prec["grey"], m.alpha)
    Gimp.Selection.none(image)
    return [find_result_layer(image, layer, name) for name in output_layers(outputs)]


def write_whole(image, layer, outputs, prec, m):
    """Create or rewrite the Drip layers from a whole result: the layers written."""
    w, h = m.roi[2], m.roi[3]
    ox, oy = m.origin
    fg_type, grey_type = layer_types(image, layer.has_alpha())
    written = []
    if "foreground" in outputs:
        data, fmt = m.fg, prec["rgb"]
        if m.layer_alpha is not None:
            # The layer's own transparency is not part of the matte: keep it on the result.
            data, fmt = logic.merge_alpha(m.fg, m.layer_alpha, w, h, prec["typecode"]), prec["rgba"]
        written.append(put_layer(image, layer, logic.FG_LAYER, fg_type, m.roi, ox, oy, fmt, data,
                                 mask_fmt=prec["mask"], mask_data=m.alpha, tiles=m.tiles))
    if "alpha" in outputs:
        written.append(put_layer(image, layer, logic.ALPHA_LAYER, grey_type, m.roi, ox, oy, prec["grey"],
                                 m.alpha))
    return written


class PreviewSource:
    """What the dialog's preview shows: the run the dialog would start, on a copy of the region
    reduced to dialog_rules.PREVIEW_LONGEST pixels a side; the server keeps the copy, so a change
    of the edge controls or the background only sends the mask again."""

    def __init__(self, image, layer, state, plugin_config):
        self.image, self.layer, self.state, self.plugin_config = image, layer, state, plugin_config
        self.conn = None
        self.copy_key, self.copy = None, None
        self.channel_region = None

    def __call__(self, config, background):
        s = Settings(config)
        if not alive(self.image, self.layer):
            raise image_gone()
        scale, w, h, pixels, mask = self.reduced_copy(s)
        job = logic.build_job(w, h, 8, s.trimap_source, s.band_radius, s.engine, want_trimap=False)
        job = rules.preview_job(job, s.edge, scale, background)
        if self.conn is None:
            self.conn = logic.connect(s.server, self.plugin_config)
        started = time.monotonic()
        result = self.conn.run_job(job, pixels, mask)
        line = rules.preview_text(time.monotonic() - started, scale, result["header"].get("rerun", ""))
        return w, h, result["foreground"], line

    def reduced_copy(self, s):
        """(scale, width, height, 8-bit RGB, mask) of the region a run with ``s`` would read."""
        source, roi, fmt = self.region(s)
        if (s.trimap_source, roi) != self.copy_key:
            ok, ox, oy = self.layer.get_offsets()
            scale = rules.preview_scale(roi[2], roi[3])
            pixels, w, h = read_scaled(self.layer, roi, scale, "R'G'B' u8")
            mask, _, _ = read_scaled(source, logic.offset_rect(roi, ox, oy), scale, fmt)
            self.copy_key, self.copy = (s.trimap_source, roi), (scale, w, h, pixels, mask)
        return self.copy

    def region(self, s):
        """(mask source, region, format) for ``s``. The selection's is looked up each time (the
        person may select anew while the dialog is open); the trimap channel's comes from the
        bytes read before the dialog, so its pass over the whole channel is made once."""
        if s.trimap_source == "trimap-channel" and self.channel_region is not None:
            return self.channel_region
        src = mask_source(self.image, self.layer, s, self.state, "Y u8")
        if s.trimap_source == "trimap-channel":
            self.channel_region = src.drawable, src.roi, src.fmt
        return src.drawable, src.roi, src.fmt

    def close(self):
        if self.conn is not None:
            self.conn.close()


def read_scaled(drawable, r, scale, fmt):
    """(bytes, width, height) of the region ``r`` (drawable coordinates) as a copy ``scale`` times
    the size, which GEGL reduces as it reads."""
    sr = rules.scaled_rect(r, scale)
    data = drawable.get_buffer().get(rect(*sr), scale, fmt, Gegl.AbyssPolicy.CLAMP)
    return bytes(data), sr[2], sr[3]


def ask(procedure, config, note, preview):
    """The dialog, with its live preview; True when the person pressed OK (the settings are then
    remembered, the preview's switch and background with them)."""
    import dialog
    drip = logic.drip_model_configured()
    if not drip and config.get_property("engine") == "drip":
        config.set_property("engine", "auto")  # a remembered choice that cannot work here
    remembered = logic.load_dialog_values()
    try:
        ok, preview_values = dialog.show_dialog(procedure, config, dialog_fields(config), note,
                                                (preview, logic.user_message, remembered), drip)
    finally:
        preview.close()
    if ok:
        settings = {name: config.get_property(name) for name in logic.DIALOG_FIELDS
                    if name not in rules.PREVIEW_FIELDS}
        logic.save_dialog_values({**settings, **preview_values})
    return ok


def dialog_fields(config):
    """The dialog's settings, in order: the server address only for someone who set up a remote one."""
    remote = config.get_property("server") != "auto"
    return [name for name in logic.DIALOG_FIELDS
            if name not in rules.EDGE_FIELDS and (name != "server" or remote)]


def restore_dialog_values(config) -> None:
    """The user's last choices, even when that run failed (GIMP keeps only successful ones)."""
    for name, value in logic.load_dialog_values().items():
        try:
            config.set_property(name, value)
        except Exception:  # noqa: BLE001 - a stale or foreign value: keep GIMP's
            pass


def run(procedure, run_mode, image, drawables, config, run_data):
    plugin_config = logic.load_config(PLUGIN_DIR)
    log_file = logic.log_file_hint(plugin_config)
    try:
        layer = resolve_source(image, drawables)
        if run_mode == Gimp.RunMode.NONINTERACTIVE:  # a script says what it wants
            state = loop_state(image, layer, read_trimap=False)
        else:
            if run_mode == Gimp.RunMode.INTERACTIVE:
                restore_dialog_values(config)
            state, note = decide_trimap_source(image, layer, config, run_mode)
            if run_mode == Gimp.RunMode.INTERACTIVE:
                if not ask(procedure, config, note, PreviewSource(image, layer, state, plugin_config)):
                    return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
            raise logic.make_error("indexed", "the image is indexed")
        note, notes = matte(image, layer, Settings(config), plugin_config, state)
        if note:
            print(f"drip-matting: {note}", file=sys.stderr)
        for text in notes:  # how an unusual result was made: the person must know
            if run_mode == Gimp.RunMode.NONINTERACTIVE:
                print(f"drip-matting: {text}", file=sys.stderr)
            else:
                Gimp.message(f"Drip Matting: {text}")
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a message, never a traceback
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return failed(procedure, run_mode, exc, log_file)
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def failed(procedure, run_mode, exc, log_file):
    """The one message a failure gives, and the run's return values."""
    if not isinstance(exc, ProtocolError):
        traceback.print_exc(file=sys.stderr)  # for bug reports (terminal / error console only)
    text = logic.user_message(exc, log_file)  # the builder names the log only where it helps
    print(text, file=sys.stderr)
    if run_mode != Gimp.RunMode.NONINTERACTIVE:
        # Started from the menu: the message is shown here, once, and without GIMP's
        # "Calling error for procedure ..." wrapper (which an error status with a
        # message would add, and an error status without one would add as "unknown
        # error"). The run then ends as cancelled: nothing was changed.
        Gimp.message(text)
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error.new_literal(Gimp.PlugIn.error_quark(), text, 0))


def add_edge_arguments(p):
    """The edge controls: applied after matting; a script may set them too."""
    p.add_int_argument("edge-shift", "Shift e_dge (px)", "Move the edge out (+) or in (-)", -64, 64, 0, RW)
    p.add_double_argument("edge-feather", "_Feather (px)", "Soften the edge by blurring the alpha",
                          0.0, 64.0, 0.0, RW)
    p.add_int_argument("edge-contrast", "Con_trast (%)", "Make soft edges harder", 0, 100, 0, RW)
    p.add_int_argument("colour-cleanup", "Colour clea_n-up (%)",
                       "How much of the background's colour is removed from the edge's colours (0: the "
                       "photo's own colours)", 0, 100, 100, RW)


class DripMatting(Gimp.PlugIn):
    def do_query_procedures(self):
        return [logic.PROC_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        drip = logic.drip_model_configured()
        p = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        p.set_image_types("RGB*, GRAY*")
        p.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        p.set_menu_label("Drip _Matting...")
        p.add_menu_path("<Image>/Filters/")
        p.set_documentation(
            "AI matting of the active layer from the selection",
            "Builds a trimap from the selection (a band around its edge is 'unknown'), a feathered "
            "selection or the painted \"Drip trimap\" channel, sends the region to the local Drip "
            "server, and adds \"Drip foreground\" (with the alpha as layer mask) and/or \"Drip alpha\" "
            "above the layer. After a run the trimap channel is shown and selected: paint on it (white = "
            "object, black = background, grey = unsure) and run again; the Drip layers are then updated "
            "in place, near what you painted. From a script, trimap-source says which trimap is used.",
            name)
        p.set_attribution("Drip Matting authors", "Drip Matting authors", "2026")
        p.add_choice_argument("trimap-source", "Start _with", "What tells the object from the background "
                              "(the trimap: white = object, black = background, grey = unsure)",
                              _choice([("selection-band", "My selection (unsure band around its edge)"),
                                       ("feathered-selection", "My feathered selection (soft = unsure)"),
                                       ("trimap-channel", "My painting on the \"Drip trimap\" channel")]),
                              "selection-band", RW)
        p.add_boolean_argument("smart-band", "S_mart band (follows hair and fur)",
                               "An unsure band that follows the image: wide where hair, fur or mixed colours "
                               "cross the selection edge, narrow where the edge is crisp; off: a fixed band "
                               "of Band width pixels", True, RW)
        p.add_int_argument("band-radius", "_Band width (px)",
                           "How far the unsure band reaches on each side of the selection edge when the "
                           "smart band is off", 1, 512, protocol.FIXED_BAND_RADIUS, RW)
        # 'drip' stays a valid value without a model here (a remote server may have one; a script
        # then gets the server's message): only the dialog greys it out
        p.add_choice_argument("engine", "_Engine", "Which matting engine",
                              _choice(rules.engine_choices(drip)), "auto", RW)
        p.add_choice_argument("outputs", "O_utput", "What to add to the image",
                              _choice([("foreground", "Cut-out layer (alpha as layer mask)"),
                                       ("alpha", "Alpha layer (grey)"),
                                       ("foreground-and-alpha", "Cut-out layer and alpha layer"),
                                       ("selection", "Alpha as selection"),
                                       ("all", "Cut-out, alpha layer and selection")]),
                              "foreground", RW)
        p.add_boolean_argument("keep-trimap", "_Keep the map to refine (\"Drip trimap\" channel)",
                               "Store the trimap as the \"Drip trimap\" channel, to paint on and rerun",
                               True, RW)
        p.add_boolean_argument("keep-source-visible", "Keep source _visible",
                               "Leave the source layer visible under the cut-out (it is hidden by default, "
                               "in the same undo step, so the result shows)", False, RW)
        p.add_string_argument("server", "Server _address",
                              "'auto' (find or start the local server) or host:port", "auto", RW)
        add_edge_arguments(p)
        return p


if __name__ == "__main__":
    Gimp.main(DripMatting.__gtype__, sys.argv)
