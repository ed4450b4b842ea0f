"""`drip-matte` end to end against GEGL matting-global end to end, on the 27-MP photo, in one run.

    sudo .venv/bin/python bench/cli_large_photo.py [--band 30] [--runs 5] [--rgba]
                                                   [--baseline-rev REV] [--rev REV] [--cache DIR]

Both sides are whole processes, as a user starts them (issue 25): ours is
`python -m drip_core.cli IMAGE --trimap TRIMAP --engine classical --alpha OUT --quiet`
(start, imports, read both PNGs, matte, write the alpha PNG; with --rgba the cut-out too);
GEGL's is the GIMP 3.0 chroot's python3 running load -> gegl:matting-global -> png-save
(bench/gegl_baseline.py, `stage_whole_process`; needs root). The case is bench/large_photo.py's:
GT05 upscaled to 6000 x 4500, trimap = the upscaled alpha's edge widened by --band px.

The commands run in turn, one warm-up each, then ours, [before,] GEGL, ours, [before,] GEGL, ...
so that a machine whose speed drifts slows both sides of a pair alike; each pair gives one ratio
(ours / GEGL) and the medians are quoted. Wall seconds are measured around the child process;
peak RSS is the kernel's accounting of the reaped child. With --baseline-rev the same command
of an older revision (git archive) runs in the same turns ("before"), and its alpha is checked
pixel for pixel against ours; --rev times a revision as "ours" instead of the working tree.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gegl_baseline  # noqa: E402 - a sibling script, found through the path set just above
import large_photo  # noqa: E402

SAME_PIXELS_CHILD = r"""
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p)) for p in sys.argv[1:3])
print("yes" if a.shape == b.shape and a.dtype == b.dtype and (a == b).all() else "no")
"""


def timed(argv: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one whole process; its output is discarded."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ... failed: {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def drip_matte(tree: Path, image: Path, trimap: Path, out: Path, rgba: bool) -> dict:
    """The whole drip-matte command of the checkout ``tree`` (its own modules first on sys.path)."""
    argv = [sys.executable, "-m", "drip_core.cli", str(image), "--trimap", str(trimap),
            "--engine", "classical", "--alpha", str(out / "alpha.png"), "--quiet"]
    if rgba:
        argv += ["--rgba", str(out / "rgba.png")]
    # cwd = the tree: `python -m` puts the working folder first on sys.path
    return {"argv": argv, "cwd": tree, "env": {**os.environ, "PYTHONPATH": str(tree)},
            "alpha": out / "alpha.png"}


def extract(rev: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def alternate(sides: dict[str, dict], runs: int) -> dict[str, list[tuple[float, float]]]:
    """One warm-up of each side, then ``runs`` turns of every side in order."""
    for side in sides.values():
        timed(side["argv"], side["cwd"], side.get("env"))
    figures = {name: [] for name in sides}
    for turn in range(runs):
        for name, side in sides.items():
            figures[name].append(timed(side["argv"], side["cwd"], side.get("env")))
        print(f"  turn {turn + 1}: " + ", ".join(f"{n} {figures[n][-1][0]:.1f} s" for n in sides), flush=True)
    return figures


def report(figures: dict[str, list[tuple[float, float]]]) -> None:
    for name, rows in figures.items():
        walls = [w for w, _ in rows]
        print(f"  {name:8} wall median {statistics.median(walls):6.2f} s (min {min(walls):.2f}, max "
              f"{max(walls):.2f})  peak RSS median {statistics.median(p for _, p in rows):5.0f} MB")
    if "GEGL" not in figures:
        return
    gegl = [w for w, _ in figures["GEGL"]]
    for name in figures:
        if name == "GEGL":
            continue
        ratios = [w / g for (w, _), g in zip(figures[name], gegl)]
        print(f"  {name} / GEGL, pair by pair: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--band", type=int, default=30)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rgba", action="store_true", help="drip-matte also writes the RGBA cut-out")
    p.add_argument("--baseline-rev", help="also time this git revision's drip-matte in the same turns")
    p.add_argument("--rev", help="time this git revision as 'ours' instead of the working tree (a shared "
                                 "checkout whose other files are being edited)")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "drip-large-photo")
    p.add_argument("--root", type=Path, default=gegl_baseline.DEFAULT_ROOT, help="GIMP 3.0 chroot")
    args = p.parse_args()
    if not large_photo.DATA.is_dir():
        print(f"cli_large_photo: skipped: no data at {large_photo.DATA}")
        return 0
    # the case is built in a child: this process stays small while the timed ones run
    subprocess.run([sys.executable, str(REPO / "bench" / "large_photo.py"), "--make-case", "--cache",
                    str(args.cache), "--bands", str(args.band)], check=True)
    case = large_photo.case_dir(args.cache)
    image, trimap = case / "image.png", case / f"trimap{args.band}.png"
    why = gegl_baseline.available(args.root)
    print(f"{large_photo.PHOTO} at {large_photo.SIZE[0]}x{large_photo.SIZE[1]}, band {args.band} px, "
          f"{args.runs} turns; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at start")
    work = Path(tempfile.mkdtemp(prefix="cli-large-"))
    gegl_work = None
    try:
        ours = extract(args.rev, work / "ours") if args.rev else REPO
        sides = {"ours": drip_matte(ours, image, trimap, Path(tempfile.mkdtemp(dir=work)), args.rgba)}
        if args.baseline_rev:
            tree = extract(args.baseline_rev, work / "before")
            sides["before"] = drip_matte(tree, image, trimap, Path(tempfile.mkdtemp(dir=work)), args.rgba)
        if why:
            print(f"  GEGL matting-global: skipped: {why}")
        else:
            argv, gegl_work, _ = gegl_baseline.stage_whole_process(image, trimap, args.root)
            sides["GEGL"] = {"argv": argv, "cwd": REPO}
        report(alternate(sides, args.runs))
        if "before" in sides:
            same = subprocess.run([sys.executable, "-c", SAME_PIXELS_CHILD, str(sides["ours"]["alpha"]),
                                   str(sides["before"]["alpha"])], capture_output=True, text=True, check=True)
            print(f"  alpha pixels the same as before: {same.stdout.strip()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if gegl_work:
            shutil.rmtree(gegl_work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
