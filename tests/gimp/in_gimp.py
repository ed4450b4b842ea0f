# Shared by the scripts that run INSIDE a real GIMP 3 (gimp_scenarios.py, gimp_gui.py,
# gimp_shots.py, gimp_refine_bench.py): the harness copies this file beside them, and they
# import it from there. Stdlib and GI only, like the plug-in.
import subprocess
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402


def run_plugin(img, layer, mode=Gimp.RunMode.NONINTERACTIVE, **args):
    """Run plug-in-drip-matting on ``layer`` with ``args`` (its argument names) as a script
    does; {"status", "message" (on failure), "seconds"}."""
    proc = Gimp.get_pdb().lookup_procedure("plug-in-drip-matting")
    if proc is None:
        raise RuntimeError("plug-in-drip-matting is not registered (plug-in not installed or failed to load)")
    cfg = proc.create_config()
    cfg.set_property("run-mode", mode)
    cfg.set_property("image", img)
    try:
        cfg.set_core_object_array("drawables", [layer])
    except (AttributeError, TypeError):
        cfg.set_property("drawables", [layer])
    for k, v in args.items():
        cfg.set_property(k, v)
    t0 = time.monotonic()
    res = proc.run(cfg)
    status = res.index(0)
    return {"status": status.value_nick, "seconds": round(time.monotonic() - t0, 3),
            "message": res.index(1) if status != Gimp.PDBStatusType.SUCCESS and res.length() > 1 else None}


def is_result(item, kind):
    """Whether ``item`` is a result layer of ``kind`` ("Drip foreground"): named after its source,
    "Drip foreground (Background)"."""
    name = item.get_name()
    return name == kind or name.startswith(kind + " (")


def result_layer(img, kind):
    """The image's (first) result layer of ``kind``, or None."""
    return next((lyr for lyr in img.get_layers() if is_result(lyr, kind)), None)


def sh(*args, timeout=30):
    """(exit status, output) of a command (xdotool, ImageMagick's import in the GUI scripts)."""
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace").strip()


def settle(seconds=1.0):
    """Let the displays catch up (GUI scripts)."""
    Gimp.displays_flush()
    time.sleep(seconds)
