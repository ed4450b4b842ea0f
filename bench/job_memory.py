"""Peak memory and time of one large classical job through a real server: this tree against a
baseline revision, in one run.

    .venv/bin/python bench/job_memory.py [--baseline-rev REV] [--megapixels 24] [--band 12]

For each tree a fresh `drip-server` process (PYTHONPATH = that tree) serves one job from a
client process of the same tree: a synthetic W x H photo (a textured object on a textured
background, 8-bit) and its selection mask with trimap source 'selection_band'. Reported: the
server's peak RSS (VmHWM, so the whole job: receive, trimap, engine, result), its RSS when
idle before the job, and the client's wall time. The baseline is checked out with
`git worktree` into a temporary folder and removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CLIENT = r"""
import json, sys, time
import numpy as np
from drip_core.client import connect
w, h, band, disc = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
yy, xx = np.ogrid[0:h, 0:w]
r = np.hypot((yy - h / 2) / (h * 0.35), (xx - w / 2) / (w * 0.35))
inside = r < 1.0
image = (rng.integers(0, 40, (h, w, 3), dtype=np.uint8) + np.where(inside[..., None], [200, 90, 40], [30, 90, 160]).astype(np.uint8))
selection = inside.astype(np.uint8) * 255
del r, inside
with connect(disc, spawn=False) as c:
    t0 = time.perf_counter()
    fg, alpha = c.matte(image, selection, engine="classical", trimap_source="selection_band", band_radius=band)
    print(json.dumps({"seconds": time.perf_counter() - t0, "alpha_mean": float(alpha.mean())}))
"""


def rss_kb(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_tree(tree: Path, w: int, h: int, band: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory(prefix="drip-mem-") as tmp:
        disc = os.path.join(tmp, "server.json")
        server = subprocess.Popen([sys.executable, "-m", "drip_core.server", "--discovery-file", disc,
                                   "--engine", "classical", "--max-pixels", str(w * h + 1)],
                                  cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                if os.path.exists(disc):
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            idle = rss_kb(server.pid, "VmRSS")
            out = subprocess.run([sys.executable, "-c", CLIENT, str(w), str(h), str(band), disc], cwd=tree, env=env,
                                 capture_output=True, text=True, timeout=1800)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result.update(server_peak_mb=rss_kb(server.pid, "VmHWM") / 1024, server_idle_mb=idle / 1024)
            return result
        finally:
            server.terminate()
            server.wait(30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline-rev", default="dab7d3f", help="git revision to compare with (default: before "
                                                             "the one-region rework)")
    p.add_argument("--megapixels", type=float, default=24.0)
    p.add_argument("--band", type=int, default=12)
    args = p.parse_args()
    w = int(round((args.megapixels * 1e6 * 3 / 2) ** 0.5))
    h = int(args.megapixels * 1e6 // w)
    print(f"{w}x{h} ({w * h / 1e6:.1f} MP) 8-bit, selection band {args.band} px, classical engine; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    base = Path(tempfile.mkdtemp(prefix="drip-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(base / "tree"), args.baseline_rev], cwd=REPO,
                   check=True, capture_output=True)
    try:
        rows = {f"baseline {args.baseline_rev}": run_tree(base / "tree", w, h, args.band),
                "this tree": run_tree(REPO, w, h, args.band)}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base / "tree")], cwd=REPO, capture_output=True)
    print(f"{'':24} {'server peak RSS':>16} {'idle RSS':>9} {'job time':>9}")
    for name, r in rows.items():
        print(f"{name:24} {r['server_peak_mb']:13.0f} MB {r['server_idle_mb']:6.0f} MB {r['seconds']:7.1f} s")
    (old, new) = rows.values()
    print(f"peak RSS ratio this/baseline: {new['server_peak_mb'] / old['server_peak_mb']:.2f}; "
          f"alpha means {old['alpha_mean']:.4f} / {new['alpha_mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
