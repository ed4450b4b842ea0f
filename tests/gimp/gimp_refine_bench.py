# Runs INSIDE a real GIMP 3 (under Xvfb, in the chroot), as a python-fu-eval batch, for
# bench/gimp_refine.py: the photographer's refine loop on a large layer, timed in GIMP.
# The trimap is the layer's "Drip trimap" channel (from P["trimap"]); run 1 mattes from it,
# then for each edit in P["edits"] a disc is painted on the channel (as a brush would) and the
# plug-in reruns from the channel. Each run's wall time is what the person waits for.
# Last, with P["gui_rerun"]: one more disc, then Filters > Drip Matting... as a person runs it
# (the dialog and its preview, then OK pressed with xdotool), timed from the key press.
import json
import os
import subprocess
import sys
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

sys.path.insert(0, os.path.dirname(os.environ["DRIP_GIMP_TEST_PARAMS"]))  # in_gimp.py lies beside it
from in_gimp import run_plugin, settle, sh  # noqa: E402

P = json.load(open(os.environ["DRIP_GIMP_TEST_PARAMS"]))
OUT = P["out_dir"]
RESULTS = {"gimp_version": Gimp.version(), "runs": []}


def save():
    with open(os.path.join(OUT, "gui_results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)




def rerun(img, layer):
    """The plug-in run from the layer's painted trimap channel."""
    return run_plugin(img, layer, **{"trimap-source": "trimap-channel", "engine": "classical"})


def paint_disc(channel, cy, cx, radius, value):
    """Pixels within ``radius`` of (cy, cx) set to ``value`` on the channel, like a hard brush."""
    x0, y0 = cx - radius, cy - radius
    size = 2 * radius + 1
    rect = Gegl.Rectangle.new(x0, y0, size, size)
    buf = channel.get_buffer()
    data = bytearray(buf.get(rect, 1.0, "Y' u8", Gegl.AbyssPolicy.NONE))
    for y in range(size):
        for x in range(size):
            if (y - radius) ** 2 + (x - radius) ** 2 <= radius * radius:
                data[y * size + x] = value
    buf.set(rect, "Y' u8", bytes(data))
    buf.flush()
    channel.update(x0, y0, size, size)


def foreground_select(img, layer, channel):
    """GIMP's own Foreground Select engine (matting mode) on the same trimap, timed as a script
    calls it, and undone: the baseline a whole Drip Matting run is held against (issue 23)."""
    proc = Gimp.get_pdb().lookup_procedure("gimp-drawable-foreground-extract")
    cfg = proc.create_config()
    cfg.set_property("drawable", layer)
    cfg.set_property("mode", Gimp.ForegroundExtractMode.MATTING)
    cfg.set_property("mask", channel)
    t0 = time.monotonic()
    res = proc.run(cfg)
    seconds = round(time.monotonic() - t0, 3)
    Gimp.Selection.none(img)
    return {"status": res.index(0).value_nick, "seconds": seconds}


def gui_rerun(img, layer, edit):
    """Paint, then the dialog: the helper waits for it and its preview (a person looks first),
    notes the time and presses OK (Alt+O); seconds from that key press to the run's end, and a
    screenshot of the result."""
    channel = next(c for c in img.get_channels() if c.get_name().startswith("Drip trimap"))
    paint_disc(channel, edit["y"], edit["x"], edit["radius"], edit["value"])
    img.set_selected_channels([channel])
    settle(1)
    ok_file = os.path.join(OUT, "ok_pressed.txt")
    helper = ("for i in $(seq 1 120); do "
              "w=$(xdotool search --onlyvisible --name '^Drip Matting$' | head -n1); "
              "[ -n \"$w\" ] && break; sleep 0.5; done; sleep 8; "
              f"import -window root {OUT}/shot-refine-dialog.png; "
              "[ -n \"$w\" ] && xdotool windowfocus --sync $w; "
              f"python3 -c 'import time; print(time.monotonic())' > {ok_file}; xdotool key alt+o")
    h = subprocess.Popen(["sh", "-c", helper])
    run = run_plugin(img, layer, mode=Gimp.RunMode.INTERACTIVE)
    ended = time.monotonic()
    h.wait(120)
    settle(2)
    sh("import", "-window", "root", os.path.join(OUT, "shot-refine-result.png"))
    with open(ok_file) as f:
        run["seconds_from_ok"] = round(ended - float(f.read().strip()), 3)
    return run


def main():
    t0 = time.monotonic()
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(P["photo"]))
    layer = img.get_layers()[0]
    w, h = layer.get_width(), layer.get_height()
    tri = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(P["trimap"]))
    img.insert_layer(tri, None, 0)
    data = bytes(tri.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "Y' u8", Gegl.AbyssPolicy.NONE))
    img.remove_layer(tri)
    channel = Gimp.Channel.new(img, f"Drip trimap: {layer.get_name()}", w, h, 50.0, Gegl.Color.new("magenta"))
    img.insert_channel(channel, None, 0)
    buf = channel.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "Y' u8", data)
    buf.flush()
    img.clean_all()
    if P.get("gui_rerun"):
        Gimp.Display.new(img)  # shown, as a person works: every run below renders its result
        settle(2)
    RESULTS["load_seconds"] = round(time.monotonic() - t0, 1)
    RESULTS["size"] = [w, h]
    RESULTS["gimp_foreground_select"] = foreground_select(img, layer, channel)
    RESULTS["runs"].append({"what": "first run", **rerun(img, layer)})
    save()
    for edit in P["edits"]:
        channel = next(c for c in img.get_channels() if c.get_name().startswith("Drip trimap"))
        paint_disc(channel, edit["y"], edit["x"], edit["radius"], edit["value"])
        RESULTS["runs"].append({"what": edit["what"], **rerun(img, layer)})
        save()
    RESULTS["runs"].append({"what": "unchanged trimap", **rerun(img, layer)})
    save()
    if P.get("gui_rerun"):
        RESULTS["runs"].append({"what": "GUI: disc, dialog, OK", **gui_rerun(img, layer, P["gui_rerun"])})


try:
    main()
except Exception:  # noqa: BLE001 - any failure goes into the results for the host test
    RESULTS["exception"] = traceback.format_exc()
save()
