"""A 27-megapixel photo: our classical engine against GIMP's GEGL matting-global, in one run.

    sudo .venv/bin/python bench/large_photo.py [--bands 30 80] [--baseline-rev REV] [--one-worker]
                                               [--grain SIGMA]
                                               [--no-gegl] [--no-cli] [--cache DIR]

The case (issue 13): alphamatting GT05 and its ground-truth alpha upscaled bicubically to
6000 x 4500; trimap = the upscaled alpha > 0.5, eroded / dilated by BAND px (Euclidean disc),
the rest of the image known. Written once to --cache as PNGs (8-bit).

Each engine runs in a child process of its own, so its peak RSS is its own:
  * ours: `ClassicalEngine.matte` on the decoded image (engine seconds; the child's peak RSS
    includes the decoded image and trimap); with --one-worker also with its tiles solved by one
    thread (do both cores pay?); with --baseline-rev also an older revision's engine ("today");
    for the first band, the whole `drip-matte` command (read PNGs, matte, write the alpha and
    RGBA PNGs) as a user runs it, once (bench/cli_large_photo.py pairs that whole process with
    GEGL's whole process, run after run);
  * GEGL matting-global in the GIMP 3.0 chroot (tests/gimp/build_roots.sh), as
    bench/gegl_baseline.py runs it (load, matting, save in one graph; needs root).
Printed per band: seconds, peak RSS, whole-image alpha SAD (/1000) against the upscaled GT,
and the ratio of our engine's time to GEGL's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = REPO.parent / "shared" / "data" / "alphamatting_lowres"
SIZE = (6000, 4500)  # width, height
PHOTO = "GT05"

# The engine alone, in a fresh process: decode, then time matte(); the alpha goes to argv[3].
ENGINE_CHILD = r"""
import json, sys, time
from drip_core.image_io import read_rgb
from drip_core.trimaps import from_painted
from drip_core.engines.classical.engine import ClassicalEngine
from drip_core.image_io import write
if len(sys.argv) > 4:  # tiles solved by this many threads (where the tree tiles at all)
    from drip_core.engines import tiling
    tiling.WORKERS = int(sys.argv[4])
image = read_rgb(sys.argv[1])
trimap = from_painted(read_rgb(sys.argv[2])[..., 0])
engine = ClassicalEngine()
t0 = time.perf_counter()
m = engine.matte(image, trimap, dtype=image.dtype)
seconds = time.perf_counter() - t0
write(sys.argv[3], m.alpha)
print(json.dumps({"seconds": seconds, "stats": {k: v for k, v in m.stats.items()
                                                  if isinstance(v, (int, float))}}))
"""


def case_dir(cache: Path, grain: float = 0) -> Path:
    return cache / (f"{PHOTO}-{SIZE[0]}x{SIZE[1]}" + (f"-grain{grain:g}" if grain else ""))


def make_case(cache: Path, bands: list[int], grain: float = 0) -> Path:
    """Writes image.png, gt.png and trimap{band}.png under the case folder (once); ``grain``:
    Gaussian noise of this standard deviation (in 1/255, seed 0) added to the image, so that
    the band has pixel-level detail (a sharp or noisy photo) and the engine keeps full size."""
    from PIL import Image
    from scipy.ndimage import distance_transform_edt
    out = case_dir(cache, grain)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "image.png").exists():
        img = (Image.open(DATA / "input_training_lowres" / f"{PHOTO}.png").convert("RGB")
               .resize(SIZE, Image.BICUBIC))
        if grain:
            noisy = (np.asarray(img, np.float32)
                     + np.random.default_rng(0).normal(0, grain, (SIZE[1], SIZE[0], 3)))
            img = Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
        img.save(out / "image.png", compress_level=1)
    if not (out / "gt.png").exists():
        gt = Image.open(DATA / "gt_training_lowres" / f"{PHOTO}.png").convert("L")
        gt.resize(SIZE, Image.BICUBIC).save(out / "gt.png", compress_level=1)
    missing = [b for b in bands if not (out / f"trimap{b}.png").exists()]
    if missing:
        fg = np.array(Image.open(out / "gt.png")) > 127
        inside = distance_transform_edt(fg)    # distance to the nearest background pixel
        outside = distance_transform_edt(~fg)  # ... to the nearest foreground pixel
        for b in missing:
            trimap = np.full(fg.shape, 128, np.uint8)
            trimap[inside > b] = 255
            trimap[outside > b] = 0
            Image.fromarray(trimap).save(out / f"trimap{b}.png", compress_level=1)
    return out


SAD_CHILD = r"""
import sys
import numpy as np
from PIL import Image
alpha, gt = (np.array(Image.open(p).convert("L"), dtype=np.int32) for p in sys.argv[1:3])
print(float(np.abs(alpha - gt).sum() / 255.0 / 1000.0))
"""


def whole_sad(alpha_path: Path, gt_path: Path) -> float:
    """Whole-image alpha SAD / 1000, computed in a child: this process stays small, because a
    child's peak RSS (ru_maxrss) starts from its parent's size on Linux."""
    out = subprocess.run([sys.executable, "-c", SAD_CHILD, str(alpha_path), str(gt_path)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def run_engine(tree: Path, case: Path, band: int, out_png: Path, workers: int | None = None):
    """(engine seconds, peak RSS MB, stats) of ENGINE_CHILD with ``tree`` on PYTHONPATH."""
    argv = [sys.executable, "-c", ENGINE_CHILD, str(case / "image.png"), str(case / f"trimap{band}.png"),
            str(out_png)]
    # cwd = the tree: `python -c` puts the working folder first on sys.path
    _, peak, text = run_measured(argv + ([str(workers)] if workers else []), env={"PYTHONPATH": str(tree)},
                                 cwd=tree)
    result = json.loads(text.strip().splitlines()[-1])
    return result["seconds"], peak, result["stats"]


def engine_line(label: str, seconds: float, peak: float, sad: float, stats: dict) -> str:
    stages = " ".join(f"{k} {v:.1f}" for k, v in stats.items() if isinstance(v, float))
    if stats.get("factor"):
        stages = f"solved at 1/{stats['factor']} size: {stages}"
    return (f"  {label:18}{seconds:7.1f} s  peak RSS {peak:6.0f} MB  SAD {sad:7.1f}   [{stages}; "
            f"CG iterations {stats.get('iterations', '?')}]")


def run_measured(argv: list[str], env=None, cwd: Path = REPO) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of that process alone (the kernel's accounting of the reaped
    child), stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def gegl_child(case: Path, band: int, root: Path, out_png: Path) -> None:
    """Runs in a child: GEGL on one trimap; prints seconds and the chroot process's peak RSS."""
    import gegl_baseline
    layout = Path(tempfile.mkdtemp(prefix="large-gegl-"))
    try:
        (layout / "input_training_lowres").mkdir()
        (layout / "trimap_training_lowres" / "T").mkdir(parents=True)
        shutil.copy(case / "image.png", layout / "input_training_lowres" / "L.png")
        shutil.copy(case / f"trimap{band}.png", layout / "trimap_training_lowres" / "T" / "L.png")
        gegl_baseline.DATA = layout
        seconds, alpha = gegl_baseline.run_gegl(["L"], "T", root)["L"]
        from PIL import Image
        Image.fromarray(alpha).save(out_png, compress_level=1)
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bands", type=int, nargs="+", default=[30, 80])
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "drip-large-photo")
    p.add_argument("--no-gegl", action="store_true")
    p.add_argument("--no-cli", action="store_true", help="skip the whole drip-matte command run")
    p.add_argument("--root", type=Path, default=None, help="GIMP 3.0 chroot (default: gegl_baseline's)")
    p.add_argument("--baseline-rev",
                   help="also run the engine of this git revision (git archive into a temp folder)")
    p.add_argument("--one-worker", action="store_true",
                   help="also run ours with the tiles solved by one thread")
    p.add_argument("--grain", type=float, default=0,
                   help="add Gaussian noise of this std (1/255) to the photo: pixel-level detail in the band")
    p.add_argument("--make-case", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--gegl-child", nargs=3, metavar=("CASE", "BAND", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    import gegl_baseline
    root = args.root or gegl_baseline.DEFAULT_ROOT
    if args.gegl_child:
        gegl_child(Path(args.gegl_child[0]), int(args.gegl_child[1]), root, Path(args.gegl_child[2]))
        return 0
    if not DATA.is_dir():
        print(f"large_photo: skipped: no data at {DATA}")
        return 0
    if args.make_case:
        make_case(args.cache, args.bands, args.grain)
        return 0
    # in a child of its own: a child's peak RSS (ru_maxrss) starts from its parent's size at
    # fork time on Linux, so this process must never hold the case's large arrays
    subprocess.run([sys.executable, __file__, "--make-case", "--cache", str(args.cache), "--grain",
                    str(args.grain), "--bands", *map(str, args.bands)], check=True)
    case = case_dir(args.cache, args.grain)
    from PIL import Image
    gt = case / "gt.png"
    why = None if not args.no_gegl else "--no-gegl"
    if why is None:
        why = gegl_baseline.available(root)
    load0 = os.getloadavg()
    print(f"{PHOTO} upscaled to {SIZE[0]}x{SIZE[1]} ({SIZE[0] * SIZE[1] / 1e6:.0f} MP)"
          + (f", grain {args.grain:g}/255" if args.grain else "") + f"; load average {load0[0]:.2f} "
          f"on {os.cpu_count()} cores at start")
    out = Path(tempfile.mkdtemp(prefix="large-out-"))
    baseline = None
    try:
        if args.baseline_rev:
            baseline = out / "baseline"
            baseline.mkdir()
            archive = subprocess.run(["git", "archive", args.baseline_rev], cwd=REPO, capture_output=True,
                                     check=True)
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        for band in args.bands:
            trimap_path = case / f"trimap{band}.png"
            unknown = int((np.array(Image.open(trimap_path)) == 128).sum())
            print(f"\nband {band} px: {unknown / 1e6:.2f} M unknown pixels")
            seconds, peak, stats = run_engine(REPO, case, band, out / f"ours{band}.png")
            print(engine_line("ours (engine)", seconds, peak, whole_sad(out / f"ours{band}.png", gt), stats))
            ours = {"seconds": seconds}
            if args.one_worker:
                s1, p1, st1 = run_engine(REPO, case, band, out / f"one{band}.png", workers=1)
                print(engine_line("ours, 1 thread", s1, p1, whole_sad(out / f"one{band}.png", gt), st1))
            if baseline:
                s0, p0, st0 = run_engine(baseline, case, band, out / f"base{band}.png")
                print(engine_line(f"{args.baseline_rev[:10]} (before)", s0, p0,
                                  whole_sad(out / f"base{band}.png", gt), st0))
            if not args.no_cli and band == args.bands[0]:
                wall, peak, _ = run_measured([sys.executable, "-m", "drip_core.cli", str(case / "image.png"),
                                              "--trimap", str(trimap_path), "--engine", "classical",
                                              "--alpha", str(out / f"cli{band}.png"),
                                              "--rgba", str(out / f"cli{band}-rgba.png"), "--quiet"])
                print(f"  drip-matte (whole){wall:7.1f} s  peak RSS {peak:6.0f} MB  "
                      f"SAD {whole_sad(out / f'cli{band}.png', gt):7.1f}   "
                      f"[read PNGs, matte, write alpha + RGBA]")
            if why:
                print(f"  GEGL matting-global: skipped: {why}")
                continue
            _, _, text = run_measured([sys.executable, __file__, "--root", str(root), "--gegl-child",
                                       str(case), str(band), str(out / f"gegl{band}.png")])
            gegl = json.loads(text.strip().splitlines()[-1])
            print(f"  GEGL matting-global{gegl['seconds']:7.1f} s  peak RSS {gegl['peak_mb']:6.0f} MB  "
                  f"SAD {whole_sad(out / f'gegl{band}.png', gt):7.1f}   [load, matting, save]")
            print(f"  time ours / GEGL: {ours['seconds'] / gegl['seconds']:.2f}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
