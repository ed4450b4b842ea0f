# Runs INSIDE a real GIMP 3 *GUI* (under Xvfb, in the chroot), as a python-fu-eval batch.
# 1. Undo: run plug-in-drip-matting on a displayed image, press Ctrl+Z once (a real key
#    event through xdotool), check the image is back to the layers and channels it had.
# 2. Screenshots (optional, params "screenshots"): the plug-in's dialog, and a result.
import json
import os
import re
import subprocess
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
RESULTS = {"gimp_version": Gimp.version()}


def save():
    with open(os.path.join(OUT, "gui_results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)




def tree(img):
    return {"layers": [lyr.get_name() for lyr in img.get_layers()],
            "visible": [lyr.get_visible() for lyr in img.get_layers()],
            "channels": [c.get_name() for c in img.get_channels()],
            "selection": list(Gimp.Selection.bounds(img))[1:]}


def load(width):
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(P["photo"]))
    w, h = img.get_width(), img.get_height()
    img.scale(width, round(h * width / w))
    img.clean_all()
    return img, img.get_layers()[0]


def select_mask(img):
    layer = img.get_layers()[0]
    lw, lh = layer.get_width(), layer.get_height()
    m = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(P["mask"]))
    img.insert_layer(m, None, 0)
    m.scale(lw, lh, False)
    data = bytes(m.get_buffer().get(Gegl.Rectangle.new(0, 0, lw, lh), 1.0, "Y' u8", Gegl.AbyssPolicy.NONE))
    img.remove_layer(m)
    ch = Gimp.Channel.new(img, "test-sel", img.get_width(), img.get_height(), 50.0, Gegl.Color.new("black"))
    img.insert_channel(ch, None, 0)
    buf = ch.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, lw, lh), "Y u8", bytes(255 if v >= 128 else 0 for v in data))
    buf.flush()
    img.select_item(Gimp.ChannelOps.REPLACE, ch)
    img.remove_channel(ch)




def image_window(timeout=20, image=None):
    """The X window of the image display: "[name]-1.0 (RGB ...) – GIMP", "*" first when dirty
    (of ``image`` when given: its id is the number before the display's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc, out = sh("xdotool", "search", "--name", ".")
        for wid in out.split():
            rc2, name = sh("xdotool", "getwindowname", wid)
            if rc2 == 0 and name.lstrip("*").startswith("[") and name.rstrip().endswith("GIMP") and \
                    (image is None or f"-{image.get_id()}." in name):
                return wid
        time.sleep(0.5)
    return None


def close_welcome():
    rc, out = sh("xdotool", "search", "--name", "Welcome to GIMP")
    for wid in out.split():
        sh("xdotool", "windowfocus", "--sync", wid)
        sh("xdotool", "key", "Escape")




def undo_test():
    img, layer = load(P.get("width", 400))
    disp = Gimp.Display.new(img)
    settle(2)
    close_welcome()
    select_mask(img)
    settle(1)
    before = tree(img)
    r = run_plugin(img, layer, engine="classical", outputs="all", **{"band-radius": 8})
    settle(1)
    after = tree(img)
    win = image_window()
    keys = []
    if win:
        keys.append(sh("xdotool", "windowfocus", "--sync", win))
        time.sleep(0.5)
        keys.append(sh("xdotool", "key", "--clearmodifiers", "ctrl+z"))
    settle(2)
    undone = tree(img)
    # Ctrl+Y (redo) brings it all back, again in one step.
    if win:
        keys.append(sh("xdotool", "windowfocus", "--sync", win))
        keys.append(sh("xdotool", "key", "--clearmodifiers", "ctrl+y"))
    settle(2)
    redone = tree(img)
    rc, out = sh("xdotool", "search", "--name", ".")
    RESULTS["windows"] = [sh("xdotool", "getwindowname", w)[1] for w in out.split()]
    RESULTS["undo"] = {"run": r, "before": before, "after": after, "undone": undone, "redone": redone,
                       "window": win, "keys": keys}
    save()
    return img, disp


def shot(name):
    """A screenshot of the image window (for docs/gimp.md)."""
    sh("xdotool", "mousemove", "5000", "5000")  # no brush outline in the picture
    settle(1.5)
    sh("import", "-window", "root", os.path.join(OUT, f"shot-{name}.png"))
    win = image_window()
    if win:
        with open(os.path.join(OUT, f"shot-{name}.geom"), "w") as f:
            f.write(sh("xdotool", "getwindowgeometry", "--shell", win)[1])


def press(keys, picture=None):
    """``keys`` in the image window, then: the windows that popped up (GIMP's warnings), closed;
    ``picture``: a screenshot of the screen first, as shot-<picture>.png."""
    close_messages()  # GIMP reuses an open message window ("Message repeated 7 times")
    before = windows()
    win = image_window()
    if win:
        sh("xdotool", "windowfocus", "--sync", win)
        time.sleep(0.5)
        sh("xdotool", "key", "--clearmodifiers", keys)
    settle(2)
    if picture:
        sh("import", "-window", "root", os.path.join(OUT, f"shot-{picture}.png"))
    popped = [w for w in windows() if (w not in before or "Message" in w[1]) and not is_image_window(w[1])]
    close_messages(popped)
    return [n for _, n in popped]


def close_messages(found=None):
    """Close GIMP's message windows (``found``: these windows)."""
    for wid, _name in found if found is not None else [w for w in windows() if "Message" in w[1]]:
        sh("xdotool", "windowfocus", "--sync", wid)
        sh("xdotool", "key", "Return")
    settle(0.5)


def is_image_window(name):
    """An image display's title ("[name]-1.0 (RGB ...) – GIMP", "*" first when dirty) changes with
    the image: it is not a window that popped up."""
    return name.lstrip("*").startswith("[") and name.rstrip().endswith("GIMP")


def white_dab(img, layer, half=10):
    """Paint white (object) on the unsure pixels nearest the result's centre, as a brush would."""
    ch = next(c for c in img.get_channels() if c.get_name() == f"Drip trimap: {layer.get_name()}")
    fg = result_layer(img, "Drip foreground")
    ok, fx, fy = fg.get_offsets()
    w, h = fg.get_width(), fg.get_height()
    tri = bytes(ch.get_buffer().get(Gegl.Rectangle.new(fx, fy, w, h), 1.0, "Y' u8", Gegl.AbyssPolicy.NONE))
    _, cx, cy = min(((i - w // 2) ** 2 + (j - h // 2) ** 2, i, j)
                    for j in range(0, h, 2) for i in range(0, w, 2) if tri[j * w + i] == 128)
    x0, y0 = fx + max(cx - half, 0), fy + max(cy - half, 0)
    dab = Gegl.Rectangle.new(x0, y0, 2 * half, 2 * half)
    ch.get_buffer().set(dab, "Y' u8", bytes([255]) * (4 * half * half))
    ch.get_buffer().flush()
    ch.update(x0, y0, 2 * half, 2 * half)
    return ch


def loop_undo_test(old_disp):
    """Issue 23: the refine loop as a person meets it: after a run the trimap is shown and selected
    and no selection is left; Ctrl+Z of a run (a first run, then an in-place rerun after painting)
    pops no warning and leaves something selected that the next run accepts."""
    old_disp.delete()
    img, layer = load(P.get("shot_width", 520))
    disp = Gimp.Display.new(img)
    settle(2)
    select_mask(img)
    shot("loop1")
    before = tree(img)
    r1 = run_plugin(img, layer, engine="classical")
    settle(1)
    after1 = dict(tree(img), selected=selected(img))
    shot("loop2")
    undo1 = press("ctrl+z", "undo1")
    undone = dict(tree(img), selected=selected(img))
    redo1 = press("ctrl+y")
    ch = white_dab(img, layer, P.get("dab", 10))
    img.set_selected_channels([ch])
    shot("loop3")
    r2 = run_plugin(img, ch, mode=Gimp.RunMode.WITH_LAST_VALS)
    settle(1)
    shot("loop4")
    after2 = dict(tree(img), selected=selected(img))
    undo2 = press("ctrl+z", "undo2")
    after_undo2 = dict(tree(img), selected=selected(img))
    # painted AND a new selection, then Filters > Drip Matting...: the dialog says so (screenshot)
    white_dab(img, layer, P.get("dab", 10))
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 150, 80, 200, 150)
    helper = subprocess.Popen(["sh", "-c", (
        "for i in $(seq 1 60); do w=$(xdotool search --onlyvisible --name '^Drip Matting$' | head -n1); "
        "[ -n \"$w\" ] && break; sleep 0.5; done; sleep 2; "
        f"import -window root {OUT}/shot-both.png; "
        f"[ -n \"$w\" ] && xdotool getwindowgeometry --shell $w > {OUT}/shot-both.geom; "
        "[ -n \"$w\" ] && xdotool windowfocus --sync $w; xdotool key Return")])
    r3 = run_plugin(img, img.get_selected_drawables()[0], mode=Gimp.RunMode.INTERACTIVE)
    helper.wait(60)
    RESULTS["loop_undo"] = {"r1": r1, "r2": r2, "before": before, "after1": after1, "undone": undone,
                            "undo1_windows": undo1, "redo1_windows": redo1, "after2": after2,
                            "undo2_windows": undo2, "after_undo2": after_undo2, "r3": r3,
                            "after3": dict(tree(img), selected=selected(img))}
    save()
    return img, disp


def selected(img):
    return [d.get_name() for d in img.get_selected_drawables()]


def interactive_run(old_disp):
    """Filters > Drip Matting... as a person runs it: the dialog comes up (screenshot), OK
    (Return) runs it with the dialog's defaults, and the result is shown (screenshot)."""
    old_disp.delete()
    img, layer = load(P.get("shot_width", 520))
    Gimp.Display.new(img)
    settle(2)
    select_mask(img)
    settle(1)
    # The dialog comes up and its preview fills in (screenshot); Shift edge is set to 6 with
    # its mnemonic like a person would (Alt+D, type, Tab): the preview follows (screenshot);
    # then OK (Alt+O: Return in a spin entry does not reach the OK button).
    geom = f"xdotool getwindowgeometry --shell $w > {OUT}/shot-dialog.geom"
    helper = ("for i in $(seq 1 60); do "
              "w=$(xdotool search --onlyvisible --name 'Drip Matting' | head -n1); "
              "[ -n \"$w\" ] && break; sleep 0.5; done; sleep 6; "
              f"import -window root {OUT}/shot-dialog.png; [ -n \"$w\" ] && {geom}; "
              "[ -n \"$w\" ] && xdotool windowfocus --sync $w; "
              "xdotool key alt+d; sleep 0.3; xdotool key ctrl+a; xdotool type 6; xdotool key Tab; sleep 4; "
              f"import -window root {OUT}/shot-dialog-edge.png; "
              f"cp {OUT}/shot-dialog.geom {OUT}/shot-dialog-edge.geom; xdotool key alt+o")
    h = subprocess.Popen(["sh", "-c", helper])
    r = run_plugin(img, layer, mode=Gimp.RunMode.INTERACTIVE)
    h.wait(60)
    after = tree(img)
    # Show the result alone on GIMP's transparency checkerboard.
    for lyr in img.get_layers():
        lyr.set_visible(is_result(lyr, "Drip foreground"))
    Gimp.Selection.none(img)
    sh("xdotool", "mousemove", "5000", "5000")  # no brush outline in the picture
    settle(2)
    shot = sh("import", "-window", "root", os.path.join(OUT, "shot-result.png"))
    win = image_window()
    if win:
        with open(os.path.join(OUT, "shot-result.geom"), "w") as f:
            f.write(sh("xdotool", "getwindowgeometry", "--shell", win)[1])
    RESULTS["interactive"] = {"run": r, "after": after, "shot": shot}
    save()


def model_missing():
    # This GUI session's server has no DRIP model: asking for the drip engine must give a
    # message that says what to do (import a model, or use classical), and no layers.
    img, layer = load(P.get("width", 400))
    select_mask(img)
    before = tree(img)
    r = run_plugin(img, layer, engine="drip")
    RESULTS["model_missing"] = {"run": r, "before": before, "after": tree(img)}
    img.delete()
    save()


def windows():
    rc, out = sh("xdotool", "search", "--onlyvisible", "--name", ".")
    return [(w, sh("xdotool", "getwindowname", w)[1]) for w in out.split()]


def error_dialog():
    # A failure in a run started from the menu (here: last values, empty selection) must
    # reach the person as a message window.
    img, layer = load(P.get("width", 400))
    disp = Gimp.Display.new(img)
    settle(2)
    Gimp.Selection.none(img)
    before = windows()
    r = run_plugin(img, layer, mode=Gimp.RunMode.WITH_LAST_VALS)
    settle(3)
    after = windows()
    new = [w for w in after if w not in before]
    sh("import", "-window", "root", os.path.join(OUT, "shot-error.png"))
    if new:
        with open(os.path.join(OUT, "shot-error.geom"), "w") as f:
            f.write(sh("xdotool", "getwindowgeometry", "--shell", new[0][0])[1])
    for wid, _name in new:
        sh("xdotool", "windowfocus", "--sync", wid)
        sh("xdotool", "key", "Return")
    settle(1)
    RESULTS["error_dialog"] = {"run": r, "new_windows": [n for _, n in new]}
    disp.delete()
    save()


def closed_mid_run():
    """The image is closed (Ctrl+W) while the plug-in waits for the server: one polite message,
    no GIMP error cascade, no traceback. The run is started the way a person starts it (GIMP's
    action search: "/", "Drip Matting", Return, then OK in the dialog), not from this script:
    GIMP ignores input in its windows while a script's own PDB call runs."""
    img, layer = load(P.get("slow_width", 3200))  # a job of a few seconds: time to close the image
    select_mask(img)
    img.clean_all()  # closes without a "save changes?" question
    Gimp.Display.new(img)
    settle(2)
    win = image_window(image=img)
    log = os.path.join(os.path.dirname(OUT), "server.log")
    # the run's job, not the dialog's preview (a reduced copy, under 1000 px wide)
    full_job = re.compile(r" accepted: [0-9]{4,}x")
    seen = len(full_job.findall(open(log).read())) if os.path.exists(log) else 0
    trace = os.path.join(OUT, "closer.txt")
    helper = (f"xdotool windowfocus --sync {win}; sleep 0.5; xdotool key slash; sleep 1.5; "
              "s=$(xdotool search --onlyvisible --name 'Search Actions' | head -1); "
              "[ -n \"$s\" ] && xdotool windowfocus --sync $s; "
              "xdotool type --delay 50 'Drip Matting'; sleep 1.5; "
              f"import -window root {OUT}/shot-search.png; xdotool key Return; sleep 3; "
              f"import -window root {OUT}/shot-search2.png; "
              "d=$(xdotool search --onlyvisible --name '^Drip Matting$' | head -1); "
              "[ -n \"$d\" ] && xdotool windowfocus --sync $d; xdotool key Return; "
              f"for i in $(seq 1 300); do "
              f"[ $(grep -cE ' accepted: [0-9]{{4,}}x' {log} 2>/dev/null || echo 0) -gt {seen} ] "
              f"&& break; sleep 0.1; done; echo accepted $i >> {trace}; "
              f"xdotool windowfocus --sync {win}; xdotool key --clearmodifiers ctrl+w; "
              f"echo closed $? >> {trace}")
    before = windows()
    h = subprocess.Popen(["sh", "-c", helper])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and h.poll() is None:
        settle(0.5)
    # The plug-in notices at its next progress frame (every second at most) and cancels; GIMP 3.0
    # lets the job finish instead. Either way the server's log says when it is over (the job is
    # slow on a busy machine: wait for it, not for a fixed time).
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = open(log).read() if os.path.exists(log) else ""
        last = text[text.rfind(" accepted: "):]
        if " done: " in last or " cancelled" in last or " failed" in last:
            break
        settle(0.5)
    settle(3)  # the plug-in's message, if any, comes up
    new = [w for w in windows() if w not in before]
    log_text = open(log).read() if os.path.exists(log) else ""
    for wid, _name in new:
        sh("xdotool", "windowfocus", "--sync", wid)
        sh("xdotool", "key", "Return")
    settle(1)
    RESULTS["closed_mid_run"] = {"window_found": bool(win), "new_windows": [n for _, n in new],
                                 "image_valid": img.is_valid(),
                                 "closer": open(trace).read() if os.path.exists(trace) else None,
                                 "job_cancelled": log_text.count(" cancelled") > 0,
                                 "job_done": log_text[log_text.rfind(" accepted: "):].count(" done: ") > 0}
    save()


def failed_run_keeps_changed_settings():
    """A person changes settings in the dialog, the run fails (no selection), they fix the
    selection and open the dialog again: their changes are still there (GIMP itself keeps only
    a successful run's values). Keyboard only, as a person would: Alt+V ticks "Keep source
    visible", Alt+M unticks "Smart band", Return is OK."""
    img, layer = load(P.get("width", 400))
    disp = Gimp.Display.new(img)
    settle(2)
    Gimp.Selection.none(img)
    trace = os.path.join(OUT, "changed.txt")
    change = ("for i in $(seq 1 60); do "
              "d=$(xdotool search --onlyvisible --name '^Drip Matting$' | head -n1); "
              "[ -n \"$d\" ] && break; sleep 0.5; done; sleep 1.5; "
              "xdotool windowfocus --sync $d; xdotool key --clearmodifiers alt+v; sleep 0.3; "
              "xdotool key --clearmodifiers alt+m; sleep 0.5; "
              f"import -window root {OUT}/shot-changed.png; xdotool key Return; echo changed $d >> {trace}")
    before = windows()
    h = subprocess.Popen(["sh", "-c", change])
    failed = run_plugin(img, layer, mode=Gimp.RunMode.INTERACTIVE)
    h.wait(60)
    settle(2)
    messages = [w for w in windows() if w not in before]
    for wid, _name in messages:  # the failure's message: read, then closed
        sh("xdotool", "windowfocus", "--sync", wid)
        sh("xdotool", "key", "Return")
    settle(1)
    select_mask(img)
    ok = ("for i in $(seq 1 60); do "
          "d=$(xdotool search --onlyvisible --name '^Drip Matting$' | head -n1); "
          "[ -n \"$d\" ] && break; sleep 0.5; done; sleep 1.5; "
          f"import -window root {OUT}/shot-kept.png; "
          "xdotool windowfocus --sync $d; xdotool key Return")
    h = subprocess.Popen(["sh", "-c", ok])
    second = run_plugin(img, layer, mode=Gimp.RunMode.INTERACTIVE)
    h.wait(60)
    settle(1)
    RESULTS["changed_kept"] = {"failed": failed, "messages": [n for _, n in messages], "second": second,
                               "after": tree(img),
                               "changed": open(trace).read() if os.path.exists(trace) else None}
    disp.delete()
    save()


try:
    error_dialog()
    model_missing()
    img, disp = undo_test()
    img, disp = loop_undo_test(disp)
    interactive_run(disp)
    closed_mid_run()
    failed_run_keeps_changed_settings()
except Exception:  # noqa: BLE001 - any failure goes into the results for the host test
    RESULTS["exception"] = traceback.format_exc()
    save()
save()
