# Runs INSIDE a real GIMP 3 (gimp-console -i --batch-interpreter python-fu-eval -b - < this file).
# Drives plug-in-drip-matting non-interactively through several scenarios in one GIMP
# session and dumps what it finds (layer lists, offsets, raw pixel bytes) into the
# output folder named by params.json; tests/gimp/test_gimp_e2e.py checks the dumps on the
# host. Each scenario records its own exception, so one failure does not hide the others.
import json
import os
import signal
import sys
import time
import traceback
import zlib

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

sys.path.insert(0, os.path.dirname(os.environ["DRIP_GIMP_TEST_PARAMS"]))  # in_gimp.py lies beside it
from in_gimp import result_layer, run_plugin  # noqa: E402

P = json.load(open(os.environ["DRIP_GIMP_TEST_PARAMS"]))
OUT = P["out_dir"]
RESULTS = {"gimp_version": Gimp.version(), "scenarios": {}}


def R(x, y, w, h):
    return Gegl.Rectangle.new(int(x), int(y), int(w), int(h))


def get(drawable, r, fmt):
    return bytes(drawable.get_buffer().get(R(*r), 1.0, fmt, Gegl.AbyssPolicy.NONE))


def dump(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return name


def load_photo(scale_width=None, key="photo"):
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(P[key]))
    if scale_width:
        w, h = img.get_width(), img.get_height()
        img.scale(scale_width, round(h * scale_width / w))
    return img, img.get_layers()[0]


def select_mask(img, mask_path, dx=0, dy=0):
    """Select the white part of a grey PNG (scaled to the layer, placed at dx, dy)."""
    layer = img.get_layers()[0]
    lw, lh = layer.get_width(), layer.get_height()
    m = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(mask_path))
    img.insert_layer(m, None, 0)
    if (m.get_width(), m.get_height()) != (lw, lh):
        m.scale(lw, lh, False)
    data = get(m, (0, 0, lw, lh), "Y' u8")
    data = bytes(255 if v >= 128 else 0 for v in data)
    img.remove_layer(m)
    ch = Gimp.Channel.new(img, "test-sel", img.get_width(), img.get_height(), 50.0, Gegl.Color.new("black"))
    img.insert_channel(ch, None, 0)
    buf = ch.get_buffer()
    buf.set(R(dx, dy, lw, lh), "Y u8", data)
    buf.flush()
    img.select_item(Gimp.ChannelOps.REPLACE, ch)
    img.remove_channel(ch)




def tree(img):
    def walk(items):
        out = []
        for it in items:
            ok, ox, oy = it.get_offsets()
            e = {"name": it.get_name(), "id": it.get_id(), "offsets": [ox, oy],
                 "size": [it.get_width(), it.get_height()], "has_alpha": it.has_alpha(),
                 "has_mask": it.get_mask() is not None, "grey": it.is_gray()}
            out.append(e)
        return out
    return {"layers": walk(img.get_layers()), "channels": [c.get_name() for c in img.get_channels()],
            "selection": list(Gimp.Selection.bounds(img))[1:]}


def native(drawable, t):
    """Read masks in the grey model they are stored in (no transfer-curve conversion)."""
    gi.require_version("Babl", "0.1")
    from gi.repository import Babl
    model = Babl.format_get_encoding(drawable.get_format()).split(" ")[0]
    return f"{model} {t}"


def crc(data):
    return zlib.crc32(data)


def dump_result(tag, img, src, prec):
    """Dump the Drip layers, the source ROI under them and the trimap channel at the ROI."""
    t = {8: "u8", 16: "u16", 32: "float"}[prec]
    fg, al = result_layer(img, "Drip foreground"), result_layer(img, "Drip alpha")
    d = {"tree": tree(img)}
    ok, sx, sy = src.get_offsets()
    if fg is not None:
        ok, fx, fy = fg.get_offsets()
        w, h = fg.get_width(), fg.get_height()
        d["roi_img"] = [fx, fy, w, h]
        d["roi_layer"] = [fx - sx, fy - sy, w, h]
        d["mask_format"] = native(fg.get_mask(), t)
        d["mask"] = dump(f"{tag}_mask.raw", get(fg.get_mask(), (0, 0, w, h), d["mask_format"]))
        d["fg_rgb"] = dump(f"{tag}_fg.raw", get(fg, (0, 0, w, h), f"R'G'B' {t}"))
        if fg.has_alpha():
            rgba = get(fg, (0, 0, w, h), "R'G'B'A u8")
            d["fg_alpha_values"] = sorted(set(rgba[3::4]))[:10]
        d["src_rgb"] = dump(f"{tag}_src.raw", get(src, (fx - sx, fy - sy, w, h), f"R'G'B' {t}"))
        ch = trimap_of(img, src)
        if ch is not None:
            d["trimap"] = dump(f"{tag}_trimap.raw", get(ch, (fx, fy, w, h), "Y' u8"))
    if al is not None:
        d["alpha_layer"] = dump(f"{tag}_alpha.raw",
                                get(al, (0, 0, al.get_width(), al.get_height()), f"Y' {t}"))
        ok, ax, ay = al.get_offsets()
        d["alpha_offsets"] = [ax, ay, al.get_width(), al.get_height()]
    return d


def trimap_of(img, layer=None):
    """The layer's own "Drip trimap: <layer>" channel (any Drip trimap when no layer is named)."""
    for c in img.get_channels():
        name = c.get_name()
        if name.startswith("Drip trimap") and (layer is None or name == f"Drip trimap: {layer.get_name()}"):
            return c
    return None


def source_crc(layer):
    return crc(get(layer, (0, 0, layer.get_width(), layer.get_height()), "R'G'B'A u16"))


def scenario(fn):
    name = fn.__name__
    if P.get("only") and name not in P["only"]:
        return
    t0 = time.monotonic()
    try:
        RESULTS["scenarios"][name] = fn()
    except Exception:  # noqa: BLE001 - a scenario's failure is recorded, the next one still runs
        RESULTS["scenarios"][name] = {"exception": traceback.format_exc()}
    RESULTS["scenarios"][name]["wall"] = round(time.monotonic() - t0, 2)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)


COMMON = {"engine": "classical", "smart-band": False, "band-radius": P.get("band", 8),
          "outputs": "foreground-and-alpha"}
STATE = {}


@scenario
def basic():
    img, layer = load_photo(P.get("width"))
    select_mask(img, P["mask"])
    before = source_crc(layer)
    tree_before = tree(img)
    r = run_plugin(img, layer, **COMMON)
    d = dump_result("basic", img, layer, 8)
    d.update(run=r, tree_before=tree_before, src_crc_before=before, src_crc_after=source_crc(layer),
             source_index=[lyr.get_name() for lyr in img.get_layers()].index(layer.get_name()))
    STATE["basic"] = (img, layer, d)
    return d


@scenario
def refine():
    img, layer, first = STATE["basic"]
    ch = trimap_of(img, layer)
    layer.set_visible(True)
    x, y, w, h = first["roi_img"]
    tri = bytearray(get(ch, (x, y, w, h), "Y' u8"))
    # "Paint" a white (foreground) square on an unknown part of the band: the unknown pixel
    # nearest the ROI centre.
    cx, cy = w // 2, h // 2
    best = None
    for j in range(h):
        for i in range(0, w):
            if tri[j * w + i] == 128:
                dd = (i - cx) ** 2 + (j - cy) ** 2
                if best is None or dd < best[0]:
                    best = (dd, i, j)
    _, ex, ey = best
    s = P.get("edit", 10)
    ex0, ey0 = max(ex - s, 0), max(ey - s, 0)
    ex1, ey1 = min(ex + s, w), min(ey + s, h)
    patch = bytes([255]) * ((ex1 - ex0) * (ey1 - ey0))
    buf = ch.get_buffer()
    buf.set(R(x + ex0, y + ey0, ex1 - ex0, ey1 - ey0), "Y' u8", patch)
    buf.flush()
    ids_before = {lyr.get_name(): lyr.get_id() for lyr in img.get_layers()}
    r = run_plugin(img, layer, **dict(COMMON, **{"trimap-source": "trimap-channel"}))
    d = dump_result("refine", img, layer, 8)
    d.update(run=r, edit_rect=[ex0, ey0, ex1 - ex0, ey1 - ey0], ids_before=ids_before,
             ids_after={lyr.get_name(): lyr.get_id() for lyr in img.get_layers()},
             src_crc_after=source_crc(layer))
    return d


@scenario
def rerun_selection():
    # A second selection-band run on the same image: the Drip layers are reused, the
    # trimap channel replaced; nothing piles up.
    # A smaller selection gives a smaller region: the Drip layers are then replaced at
    # the same place in the stack (same names), not added.
    img, layer, first = STATE["basic"]
    ids_before = {lyr.get_name(): lyr.get_id() for lyr in img.get_layers()}
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
    r = run_plugin(img, layer, **dict(COMMON, **{"band-radius": 6}))
    return {"run": r, "tree": tree(img), "ids_before": ids_before,
            "ids_after": {lyr.get_name(): lyr.get_id() for lyr in img.get_layers()}}


# The photographer's loop: new images, run while the host server is up (later scenarios stop it).
def selected_names(img):
    return [d.get_name() for d in img.get_selected_drawables()]


def visibility(img):
    return {lyr.get_name(): lyr.get_visible() for lyr in img.get_layers()}


def loop_view(img, layer):
    """What a person sees of the loop after a run: selected items, visibility, selection, channels."""
    ch = trimap_of(img, layer)
    return {"selected": selected_names(img), "visible": visibility(img),
            "selection_empty": Gimp.Selection.is_empty(img),
            "channels": [c.get_name() for c in img.get_channels()],
            "trimap_visible": ch.get_visible() if ch is not None else None,
            "trimap_crc": crc(get(ch, (0, 0, img.get_width(), img.get_height()), "Y' u8")) if ch else None}


def paint_grey_stroke(img, layer, value=200):
    """A soft stroke: ``value`` over the unknown pixels in the middle rows of the result's region,
    every other row left as it was (the gaps of a sparse brush). -> (rect, stroke pixel indices)."""
    ch = trimap_of(img, layer)
    fg = result_layer(img, "Drip foreground")
    ok, fx, fy = fg.get_offsets()
    w, h = fg.get_width(), fg.get_height()
    tri = bytearray(get(ch, (fx, fy, w, h), "Y' u8"))
    stroke = []
    for j in range(h // 2 - 12, h // 2 + 12, 2):
        for i in range(w):
            if tri[j * w + i] == 128:
                tri[j * w + i] = value
                stroke.append(j * w + i)
    buf = ch.get_buffer()
    buf.set(R(fx, fy, w, h), "Y' u8", bytes(tri))
    buf.flush()
    return (fx, fy, w, h), stroke


@scenario
def workflow_loop():
    """The photographer's loop, each run started from whatever is selected after the previous one:
    a run from a selection; a script's rerun with another band radius (the selection was lifted:
    the saved one is used); a soft, gappy stroke painted on the trimap and Repeat (with last
    values): the painted trimap is used; a new selection and Repeat: the selection is used; both
    changed and Repeat: a message, nothing changed."""
    img, layer = load_photo(P.get("width", 400) - 8)  # its own size: the server log tells its jobs apart
    select_mask(img, P["mask"])
    r1 = run_plugin(img, layer, **COMMON)
    d = {"r1": r1, "after1": loop_view(img, layer)}
    d["r2"] = run_plugin(img, img.get_selected_drawables()[0], **dict(COMMON, **{"band-radius": 14}))
    d["after2"] = loop_view(img, layer)
    (fx, fy, w, h), stroke = paint_grey_stroke(img, layer)
    fg = result_layer(img, "Drip foreground")
    repeat = dict(COMMON, mode=Gimp.RunMode.WITH_LAST_VALS)
    d["r3"] = run_plugin(img, img.get_selected_drawables()[0], **repeat)
    mask = get(fg.get_mask(), (0, 0, w, h), native(fg.get_mask(), "u8"))
    d.update(after3=loop_view(img, layer), stroke_alpha=sorted(set(mask[k] for k in stroke)),
             stroke_pixels=len(stroke), region=[fx, fy, w, h])
    # a white dab (object) on the unsure pixels nearest the region's centre, and Repeat
    ch = trimap_of(img, layer)
    tri = bytearray(get(ch, (fx, fy, w, h), "Y' u8"))
    dist, cx, cy = min(((i - w // 2) ** 2 + (j - h // 2) ** 2, i, j)
                       for j in range(h) for i in range(w) if tri[j * w + i] == 128)
    x0, y0, x1, y1 = max(cx - 10, 0), max(cy - 10, 0), min(cx + 10, w), min(cy + 10, h)
    dab = R(fx + x0, fy + y0, x1 - x0, y1 - y0)
    ch.get_buffer().set(dab, "Y' u8", bytes([255]) * ((x1 - x0) * (y1 - y0)))
    ch.get_buffer().flush()
    d["r3b"] = run_plugin(img, img.get_selected_drawables()[0], **repeat)
    after = get(fg.get_mask(), (0, 0, w, h), native(fg.get_mask(), "u8"))
    d.update(dab=[x0, y0, x1 - x0, y1 - y0], alpha_before=dump("loop_alpha_before.raw", mask),
             alpha_after=dump("loop_alpha_after.raw", after))
    img.select_ellipse(Gimp.ChannelOps.REPLACE, fx + w // 4, fy + h // 4, w // 2, h // 2)
    d["r4"] = run_plugin(img, img.get_selected_drawables()[0], **repeat)
    d["after4"] = loop_view(img, layer)
    paint_grey_stroke(img, layer, 90)
    img.select_ellipse(Gimp.ChannelOps.REPLACE, fx + w // 3, fy + h // 3, w // 3, h // 3)
    before5 = tree(img)
    d["r5"] = run_plugin(img, img.get_selected_drawables()[0], **repeat)
    d.update(after5=loop_view(img, layer), tree5_same=tree(img) == before5)
    return d


@scenario
def two_layers():
    """Each source layer has its own trimap channel and result layers: a run on the second layer
    leaves the first one's untouched."""
    img, first = load_photo(P.get("width"))
    first.set_name("First")
    second = first.copy()
    img.insert_layer(second, None, 0)
    second.set_name("Second")
    select_mask(img, P["mask"])
    r1 = run_plugin(img, first, **COMMON)
    t1 = trimap_of(img, first)
    crc1 = crc(get(t1, (0, 0, img.get_width(), img.get_height()), "Y' u8")) if t1 else None
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 120, 90)
    r2 = run_plugin(img, second, **COMMON)
    t1b = trimap_of(img, first)
    return {"r1": r1, "r2": r2, "tree": tree(img), "crc_before": crc1,
            "crc_after": crc(get(t1b, (0, 0, img.get_width(), img.get_height()), "Y' u8")) if t1b else None}


@scenario
def edge_controls():
    """A script sets the edge controls: the server applies them to the matte it holds, so the run
    with Shift edge 4 px after a plain run on the same selection is served unchanged (no
    matting), and its mask covers more."""
    img, layer = load_photo(P.get("width"))
    select_mask(img, P["mask"])
    plain = run_plugin(img, layer, **COMMON)
    before = dump_result("edge0", img, layer, 8)
    select_mask(img, P["mask"])
    shifted = run_plugin(img, layer, **COMMON, **{"edge-shift": 4, "edge-feather": 1.0})
    after = dump_result("edge4", img, layer, 8)
    return {"run": shifted, "plain": plain, "before": before, "after": after}


@scenario
def smart_band_default():
    """The defaults a photographer gets: the smart band ("auto") from a rough selection."""
    img, layer = load_photo(P.get("width"))
    select_mask(img, P["mask"])
    r = run_plugin(img, layer, engine="classical", outputs="foreground-and-alpha")
    d = dump_result("smart", img, layer, 8)
    d.update(run=r)
    return d


@scenario
def offsets_alpha():
    img, layer = load_photo(P.get("width"))
    w, h = img.get_width(), img.get_height()
    img.resize(w + 90, h + 70, 0, 0)
    layer.add_alpha()
    layer.set_offsets(53, 31)
    # the result layer starts as a copy of the source inside GIMP: it must not inherit these
    layer.set_opacity(60.0)
    layer.set_mode(Gimp.LayerMode.MULTIPLY)
    select_mask(img, P["mask"], 53, 31)
    before = source_crc(layer)
    r = run_plugin(img, layer, **COMMON)
    d = dump_result("offsets", img, layer, 8)
    fg = result_layer(img, "Drip foreground")
    d.update(run=r, src_crc_before=before, src_crc_after=source_crc(layer), layer_offsets=[53, 31],
             fg_props=[fg.get_opacity(), fg.get_mode() == Gimp.LayerMode.NORMAL, fg.get_visible()],
             src_props=[layer.get_opacity(), layer.get_mode() == Gimp.LayerMode.MULTIPLY])
    return d


@scenario
def deep16():
    img, layer = load_photo(key="photo16")  # a 16-bit PNG with real 16-bit samples, not 8-bit converted up
    select_mask(img, P["mask"])
    before = source_crc(layer)
    r = run_plugin(img, layer, **COMMON)
    d = dump_result("deep16", img, layer, 16)
    d.update(run=r, precision=img.get_precision().value_nick, src_crc_before=before,
             src_crc_after=source_crc(layer))
    return d


@scenario
def float32():
    img, layer = load_photo(key="photo16")
    img.convert_precision(Gimp.Precision.FLOAT_LINEAR)
    select_mask(img, P["mask"])
    before = source_crc(layer)
    r = run_plugin(img, layer, **COMMON)
    d = dump_result("float32", img, layer, 32)
    d.update(run=r, precision=img.get_precision().value_nick, src_crc_before=before,
             src_crc_after=source_crc(layer))
    return d


@scenario
def feathered_all_outputs():
    # trimap-source = feathered selection, outputs = all (layers + alpha as the selection)
    img, layer = load_photo(P.get("width"))
    select_mask(img, P["mask"])
    Gimp.Selection.feather(img, 12.0)
    r = run_plugin(img, layer, **dict(COMMON, outputs="all", **{"trimap-source": "feathered-selection"}))
    d = dump_result("feathered", img, layer, 8)
    if "roi_img" in d:
        x, y, w, h = d["roi_img"]
        sel = img.get_selection()
        d["selection"] = dump("feathered_selection.raw", get(sel, (x, y, w, h), native(sel, "u8")))
    d.update(run=r)
    return d


@scenario
def in_group():
    # The source layer sits inside a layer group: the results go into that group, just above it.
    img, layer = load_photo(P.get("width"))
    try:
        group = Gimp.GroupLayer.new(img, "Group")
    except TypeError:
        group = Gimp.GroupLayer.new(img)
    img.insert_layer(group, None, 0)
    img.reorder_item(layer, group, 0)
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 100, 60, 160, 120)
    r = run_plugin(img, layer, **COMMON)
    return {"run": r, "top": [lyr.get_name() for lyr in img.get_layers()],
            "children": [lyr.get_name() for lyr in group.get_children()]}


@scenario
def grey():
    img, layer = load_photo(P.get("width"))
    img.convert_grayscale()
    select_mask(img, P["mask"])
    r = run_plugin(img, layer, **COMMON)
    d = dump_result("grey", img, layer, 8)
    d.update(run=r)
    return d


@scenario
def empty_selection():
    img, layer = load_photo(P.get("width"))
    Gimp.Selection.none(img)
    before = tree(img)
    r = run_plugin(img, layer, **COMMON)
    return {"run": r, "tree_before": before, "tree_after": tree(img)}


@scenario
def drip_engine():
    if not P.get("drip"):
        return {"skipped": "no tiny DRIP model"}
    img, layer = load_photo(P.get("drip_width") or P.get("width"))
    select_mask(img, P["mask"])
    r = run_plugin(img, layer, **dict(COMMON, engine="drip"))
    d = dump_result("drip", img, layer, 8)
    d.update(run=r)
    return d


@scenario
def no_trimap_channel():
    img, layer = load_photo(P.get("width"))
    select_mask(img, P["mask"])
    before = tree(img)
    r = run_plugin(img, layer, **dict(COMMON, **{"trimap-source": "trimap-channel"}))
    return {"run": r, "tree_before": before, "tree_after": tree(img)}


@scenario
def too_large():
    # The test server runs with --max-pixels 450000; this region is larger.
    img, layer = load_photo(P.get("large_width", 1000))
    select_mask(img, P["mask"])
    before = tree(img)
    r = run_plugin(img, layer, **COMMON)
    return {"run": r, "tree_before": before, "tree_after": tree(img)}


@scenario
def wrong_token():
    # server=host:port takes its token from DRIP_MATTING_TOKEN, which this GIMP was
    # started with set to a wrong value.
    rec = json.load(open(P["discovery"]))
    img, layer = load_photo(P.get("width"))
    select_mask(img, P["mask"])
    before = tree(img)
    r = run_plugin(img, layer, **dict(COMMON, server=f"127.0.0.1:{rec['port']}"))
    return {"run": r, "tree_before": before, "tree_after": tree(img)}


@scenario
def cancel():
    # GIMP's Cancel kills the plug-in process. The host harness plays that part: when this
    # scenario's job reaches the server, it SIGKILLs drip_matting.py, then waits for the
    # server to log the job as cancelled and writes cancel.done.
    if not P.get("cancel"):
        return {"skipped": "cancel not requested"}
    img, layer = load_photo(None)
    select_mask(img, P["mask"])
    before = tree(img)
    with open(os.path.join(OUT, "cancel.go"), "w") as f:
        f.write(str(time.time()))
    r = run_plugin(img, layer, **dict(COMMON, **{"band-radius": P.get("cancel_band", 40),
                                                 "outputs": "foreground"}))
    done = os.path.join(OUT, "cancel.done")
    for _ in range(1800):
        if os.path.exists(done):
            break
        time.sleep(0.05)
    return {"run": r, "tree_before": before, "tree_after": tree(img)}


@scenario
def server_down():
    # Stop the host's server (same PID namespace: the chroot sees its pid), then run:
    # the plug-in finds no server, tries the config's server_command, which fails here.
    rec = json.load(open(P["discovery"]))
    try:
        os.kill(rec["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    for _ in range(200):
        try:
            os.kill(rec["pid"], 0)
        except ProcessLookupError:
            break
        # a zombie (not yet reaped by its parent on the host) still "exists"
        try:
            with open(f"/proc/{rec['pid']}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    break
        except OSError:
            break
        time.sleep(0.05)
    img, layer = load_photo(P.get("width"))
    select_mask(img, P["mask"])
    before = tree(img)
    r = run_plugin(img, layer, **COMMON)
    return {"run": r, "tree_before": before, "tree_after": tree(img)}


@scenario
def spawn():
    # Runs after server_down: no server answers. With a working server_command in the
    # plug-in's config (the host's venv python, bound read-only into the root), the plug-in
    # starts a server itself, waits for it, and the run succeeds.
    if not P.get("spawn_command"):
        return {"skipped": P.get("spawn_skip", "no spawn command")}
    cfg_path = P["plugin_config"]
    original = open(cfg_path).read()
    cfg = json.loads(original)
    cfg["server_command"] = P["spawn_command"]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    try:
        old_pid = json.load(open(P["discovery"]))["pid"]
    except OSError:  # a server that stops cleanly removes its discovery file
        old_pid = None
    try:
        img, layer = load_photo(P.get("width"))
        select_mask(img, P["mask"])
        r = run_plugin(img, layer, **COMMON)
        rec = json.load(open(P["discovery"]))
        out = {"run": r, "tree": tree(img), "old_pid": old_pid, "new_pid": rec["pid"],
               "spawned_alive": os.path.exists(f"/proc/{rec['pid']}")}
        try:
            os.kill(rec["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        return out
    finally:
        with open(cfg_path, "w") as f:
            f.write(original)


print("DRIP-GIMP-SCENARIOS-DONE",
      json.dumps({k: v.get("run", {}).get("status") if isinstance(v, dict) else None
                  for k, v in RESULTS["scenarios"].items()}))
sys.stdout.flush()
