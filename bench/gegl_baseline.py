"""GIMP's own matting engine (GEGL matting-global, Foreground Select's default) as a live baseline.

Runs gegl:matting-global inside the cached Debian chroot that the GIMP tests build
(tests/gimp/build_roots.sh), with the chroot's own python3 + GObject-introspected GEGL, on
the alphamatting.com photos, and scores the result with drip_core.eval (DIM SAD, known
regions clamped). Needs root (chroot). Importable: ``run_gegl(...)`` for other benchmarks, and
``stage_whole_process(...)`` for GEGL as one whole process (start, load, matting, save).

    sudo .venv/bin/python bench/gegl_baseline.py [--trimap Trimap1] [--root /var/cache/.../trixie]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_ROOT = Path(os.environ.get("DRIP_GIMP_ROOTS", "/var/cache/drip-matting/gimp-roots")) / "trixie"
DATA = REPO.parent / "shared" / "data" / "alphamatting_lowres"

# Runs inside the chroot: times each image's graph (load, matting-global, save) separately.
CHROOT_SCRIPT = r'''
import sys, time, json, gi
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl
Gegl.init(None)
data, out, trimap_set, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
seconds = {}
for name in names:
    graph = Gegl.Node()
    image = graph.create_child("gegl:load")
    image.set_property("path", f"{data}/input_training_lowres/{name}.png")
    trimap = graph.create_child("gegl:load")
    trimap.set_property("path", f"{data}/trimap_training_lowres/{trimap_set}/{name}.png")
    matting = graph.create_child("gegl:matting-global")
    save = graph.create_child("gegl:png-save")
    save.set_property("path", f"{out}/{name}.png"); save.set_property("bitdepth", 8)
    image.connect_to("output", matting, "input"); trimap.connect_to("output", matting, "aux")
    matting.connect_to("output", save, "input")
    start = time.perf_counter(); save.process(); seconds[name] = time.perf_counter() - start
print(json.dumps(seconds))
'''


# Runs inside the chroot as one whole process (bench/cli_large_photo.py): argv image, trimap, output.
WHOLE_PROCESS_SCRIPT = r'''
import sys, gi
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl
Gegl.init(None)
graph = Gegl.Node()
image = graph.create_child("gegl:load"); image.set_property("path", sys.argv[1])
trimap = graph.create_child("gegl:load"); trimap.set_property("path", sys.argv[2])
matting = graph.create_child("gegl:matting-global")
save = graph.create_child("gegl:png-save")
save.set_property("path", sys.argv[3]); save.set_property("bitdepth", 8)
image.connect_to("output", matting, "input"); trimap.connect_to("output", matting, "aux")
matting.connect_to("output", save, "input")
save.process()
'''


def stage_whole_process(image: Path, trimap: Path, root: Path = DEFAULT_ROOT) -> tuple[list[str], Path, Path]:
    """(argv, work folder, alpha path) of GEGL matting-global on one photo as a whole process:
    chroot, the chroot's python3, GObject introspection, GEGL's start, load, matting, PNG save.
    The inputs are copied into the chroot's /tmp first (not timed); delete the work folder after."""
    work = Path(tempfile.mkdtemp(prefix="gegl-whole-", dir=root / "tmp"))
    shutil.copy(image, work / "image.png")
    shutil.copy(trimap, work / "trimap.png")
    (work / "run.py").write_text(WHOLE_PROCESS_SCRIPT)
    inside = "/" + str(work.relative_to(root))
    argv = ["chroot", str(root), "python3", f"{inside}/run.py", f"{inside}/image.png", f"{inside}/trimap.png",
            f"{inside}/alpha.png"]
    return argv, work, work / "alpha.png"


def available(root: Path = DEFAULT_ROOT) -> str | None:
    """None when the baseline can run, else why not."""
    if os.geteuid() != 0:
        return "needs root (chroot)"
    if not (root / "usr" / "bin" / "python3").exists():
        return f"no GIMP chroot at {root} (run tests/gimp/build_roots.sh)"
    if not DATA.is_dir():
        return f"no data at {DATA}"
    return None


def run_gegl(names: list[str], trimap_set: str = "Trimap1",
             root: Path = DEFAULT_ROOT) -> dict[str, tuple[float, np.ndarray]]:
    """{name: (seconds, alpha uint8)} from GEGL matting-global in the chroot."""
    work = Path(tempfile.mkdtemp(prefix="gegl-", dir=root / "tmp"))
    try:
        for sub in ("input_training_lowres", "trimap_training_lowres"):
            shutil.copytree(DATA / sub, work / "data" / sub)
        (work / "out").mkdir()
        (work / "run.py").write_text(CHROOT_SCRIPT)
        inside = "/" + str(work.relative_to(root))
        r = subprocess.run(["chroot", str(root), "python3", f"{inside}/run.py", f"{inside}/data",
                            f"{inside}/out", trimap_set, ",".join(names)],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise RuntimeError(f"GEGL run failed: {r.stderr[-2000:]}")
        seconds = json.loads(r.stdout.strip().splitlines()[-1])
        return {n: (seconds[n], np.array(Image.open(work / "out" / f"{n}.png").convert("L"))) for n in names}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    from drip_core.eval.dataset import load_sample, sample_names
    from drip_core.eval.metrics import alpha_errors
    p = argparse.ArgumentParser()
    p.add_argument("--trimap", default="Trimap1")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = p.parse_args()
    why = available(args.root)
    if why:
        print(f"gegl_baseline: skipped: {why}")
        return 0
    names = sample_names(DATA)
    results = run_gegl(names, args.trimap, args.root)
    sads, secs = [], []
    for n in names:
        s = load_sample(DATA, n, args.trimap)
        sec, alpha = results[n]
        sads.append(alpha_errors(alpha, s.gt, s.trimap).sad)
        secs.append(sec)
    print(f"GEGL matting-global ({args.trimap}, {len(names)} images): mean SAD {np.mean(sads):.2f}, "
          f"mean {np.mean(secs):.3f} s/image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
