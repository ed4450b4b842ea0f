# Runs INSIDE a real GIMP 3 *GUI* (under Xvfb, in the chroot), as a python-fu-eval batch,
# for bench/gimp_rough_selection.py: what a photographer sees after Filters > Drip Matting on a
# rough selection, once per setting. For each run in P["runs"]: select the rough mask, run the
# plug-in with the run's settings (the rest: the plug-in's defaults), show the cut-out alone on
# GIMP's checkerboard, take a screenshot of the image window, save the alpha layer, then undo
# the run (the next one starts from the same state).
import json
import os
import sys
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

sys.path.insert(0, os.path.dirname(os.environ["DRIP_GIMP_TEST_PARAMS"]))  # in_gimp.py lies beside it
from in_gimp import is_result, result_layer, run_plugin, settle, sh  # noqa: E402

P = json.load(open(os.environ["DRIP_GIMP_TEST_PARAMS"]))
OUT = P["out_dir"]
RESULTS = {"gimp_version": Gimp.version(), "runs": {}}


def save():
    with open(os.path.join(OUT, "gui_results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)






def image_window(timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc, out = sh("xdotool", "search", "--name", ".")
        for wid in out.split():
            rc2, name = sh("xdotool", "getwindowname", wid)
            if rc2 == 0 and name.lstrip("*").startswith("[") and name.rstrip().endswith("GIMP"):
                return wid
        time.sleep(0.5)
    return None


def select_mask(img):
    """The rough selection: a channel from the mask file (white = selected)."""
    layer = img.get_layers()[-1]
    w, h = layer.get_width(), layer.get_height()
    m = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(P["mask"]))
    img.insert_layer(m, None, 0)
    data = bytes(m.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "Y' u8", Gegl.AbyssPolicy.NONE))
    img.remove_layer(m)
    ch = Gimp.Channel.new(img, "rough-selection", w, h, 50.0, Gegl.Color.new("black"))
    img.insert_channel(ch, None, 0)
    buf = ch.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "Y' u8", data)
    buf.flush()
    img.select_item(Gimp.ChannelOps.REPLACE, ch)
    img.remove_channel(ch)




def shoot(img, tag):
    """The cut-out alone on the checkerboard, the whole image in view."""
    for lyr in img.get_layers():
        lyr.set_visible(is_result(lyr, "Drip foreground"))
    Gimp.Selection.none(img)
    win = image_window()
    if win:  # View > Zoom > Fit Image in Window
        sh("xdotool", "windowfocus", "--sync", win)
        sh("xdotool", "key", "--clearmodifiers", "shift+ctrl+j")
    sh("xdotool", "mousemove", "5000", "5000")  # no brush outline in the picture
    settle(2)
    sh("import", "-window", "root", os.path.join(OUT, f"shot-{tag}.png"))
    if win:
        with open(os.path.join(OUT, f"shot-{tag}.geom"), "w") as f:
            f.write(sh("xdotool", "getwindowgeometry", "--shell", win)[1])


def save_alpha(img, tag):
    al = result_layer(img, "Drip alpha")
    if al is None:
        return None
    ok, x, y = al.get_offsets()
    w, h = al.get_width(), al.get_height()
    data = bytes(al.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "Y' u8", Gegl.AbyssPolicy.NONE))
    with open(os.path.join(OUT, f"alpha-{tag}.raw"), "wb") as f:
        f.write(data)
    return [x, y, w, h]


def main():
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(P["photo"]))
    img.clean_all()
    layer = img.get_layers()[0]
    disp = Gimp.Display.new(img)
    settle(3)
    for wid in sh("xdotool", "search", "--name", "Welcome to GIMP")[1].split():
        sh("xdotool", "windowfocus", "--sync", wid)
        sh("xdotool", "key", "Escape")
    for run in P["runs"]:
        tag = run["tag"]
        select_mask(img)
        r = run_plugin(img, layer, outputs="foreground-and-alpha", **run["args"])
        entry = {"run": r}
        if r["status"] == "success":
            entry["alpha_rect"] = save_alpha(img, tag)
            shoot(img, tag)
            for lyr in img.get_layers():  # back to the photo alone for the next run
                if lyr.get_name().startswith("Drip"):
                    img.remove_layer(lyr)
            for c in img.get_channels():
                if c.get_name().startswith("Drip trimap"):
                    img.remove_channel(c)
            layer.set_visible(True)
        RESULTS["runs"][tag] = entry
        save()
    disp.delete()


try:
    main()
except Exception:  # noqa: BLE001 - any failure goes into the results for the host test
    RESULTS["exception"] = traceback.format_exc()
save()
