"""The refine loop on a 27-megapixel layer in real GIMP: the first run from a trimap channel,
then brush edits (discs of radius 50 px painted grey, white and black across the band) each
followed by a rerun, then a rerun with nothing changed. Times are the plug-in's whole run as
GIMP's script sees it (read the layer, digest, send, server, write the layers back).

The case is bench/refine_rerun.py's (GT05 from ../shared upscaled to 6000 x 4500, trimap =
ground truth > 0.5 eroded / dilated by 30 px). GIMP runs under Xvfb in the chroot built by
tests/gimp/build_roots.sh (as root); the server is a real drip-server process on the host.

    PYTHONPATH=. .venv/bin/python bench/gimp_refine.py [--version 3.2] [--width 6000 --height 4500]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gimp"))
import harness  # noqa: E402

from bench.refine_rerun import RADIUS, edit_centre, large_case  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default="3.2", choices=sorted(harness.VERSIONS))
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--height", type=int, default=4500)
    ap.add_argument("--shots", type=Path, help="copy the GUI rerun's screenshots (dialog, result) here; they "
                                                "show an alphamatting photo, so never into the repository")
    args = ap.parse_args(argv)
    reason = harness.gui_skip_reason(args.version)
    if reason:
        raise SystemExit(f"cannot run GIMP {args.version}: {reason}")
    image, trimap, _ = large_case(args.width, args.height)
    y, x = edit_centre(trimap)
    # one after the other on the same spot across the band, as bench/refine_rerun.py does
    edits = [{"what": f"{name} disc, rerun", "y": y, "x": x, "radius": RADIUS, "value": value}
             for name, value in (("grey", 128), ("white", 255), ("black", 0))]
    with tempfile.TemporaryDirectory() as tmp:
        photo, tri = Path(tmp) / "photo.png", Path(tmp) / "trimap.png"
        Image.fromarray(image).save(photo, compress_level=1)
        Image.fromarray(trimap).save(tri, compress_level=1)
        # last, as a person does it: a white disc on the same spot, the dialog, OK (timed from the key)
        gui_edit = {"y": y, "x": x, "radius": RADIUS, "value": 255}
        res = harness.gui_session(args.version, {"edits": edits, "gui_rerun": gui_edit},
                                  server_args=["--engine", "classical"],
                                  script="gimp_refine_bench.py",
                                  files={"photo": str(photo), "trimap": str(tri)}, timeout=900)
    if "exception" in res or not res.get("runs"):
        raise SystemExit(f"GIMP {args.version} failed: {res.get('exception') or res['_output'][-3000:]}")
    log = (Path(res["_out"]).parent / "server.log").read_text()
    print(f"GIMP {res['gimp_version']}, layer {res['size'][0]} x {res['size'][1]} "
          f"(loading it into GIMP: {res['load_seconds']} s)")
    fs = res.get("gimp_foreground_select")
    if fs:
        first = res["runs"][0]["seconds"]
        print(f"  GIMP's Foreground Select (matting), same trimap: {fs['status']} {fs['seconds']:.2f} s; "
              f"Drip Matting's first run / it: {first / fs['seconds']:.2f}x")
    for run in res["runs"]:
        from_ok = (f" ({run['seconds_from_ok']:.2f} s from the OK key press)"
                   if "seconds_from_ok" in run else "")
        print(f"  {run['what']:<22} {run['status']:<8} {run['seconds']:7.2f} s{from_ok}"
              + (f"  {run['message']}" if run.get("message") else ""))
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
        for shot in Path(res["_out"]).glob("shot-refine-*.png"):
            shutil.copy(shot, args.shots / shot.name)
    accepted = [line.split("accepted: ", 1)[1] for line in log.splitlines() if " accepted: " in line]
    done = [line.split("done: ", 1)[1] for line in log.splitlines() if " done: " in line]
    print("server log, per job:")
    for a, d in zip(accepted, done):
        print(f"  {a.strip()}  ->  {d.strip()}")
    # where a rerun's time goes, from the plug-in's own progress lines (DRIP_MATTING_DEBUG_PROGRESS)
    marks = [line.split("progress: ", 1)[1].split(" ", 2) for line in res["_output"].splitlines()
             if "drip-matting progress: " in line]
    print("plug-in stages of each run (seconds since its start):")
    starts = [i for i, m in enumerate(marks) if m[2].startswith("Drip Matting: reading the layer")]
    for run, (a, b) in zip(res["runs"], zip(starts, starts[1:] + [len(marks)])):
        t0 = float(marks[a][0])
        stages = [f"{float(t) - t0:.2f} {text.replace('Drip Matting: ', '')}" for t, _, text in marks[a:b]
                  if not text.startswith("Drip Matting: alpha") and "step " not in text]
        print(f"  {run['what']}: " + "; ".join(stages))
    print(json.dumps({"runs": res["runs"], "log_done": done}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
