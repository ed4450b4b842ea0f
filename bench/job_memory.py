"""Peak memory and time of one large classical job through a real server: this tree against a
baseline revision, in one run.

    .venv/bin/python bench/job_memory.py [--baseline-rev REV] [--megapixels 24] [--band 12]

For each tree a fresh `drip-server` process (PYTHONPATH = that tree) serves one job from a
client process of the same tree: a synthetic W x H photo (a textured object on a textured
background, 8-bit) and its selection mask with trimap source 'selection_band'. Reported: the
server's peak RSS (VmHWM, so the whole job: receive, trimap, engine, result), its RSS when
idle before the job, and the client's wall time; then, in a second server run under
tracemalloc, the peak of the memory Python allocated, as a multiple of the layer's bytes
("copies of the layer" at the worst moment). The baseline is checked out with `git worktree`
into a temporary folder and removed afterwards.
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
image = (rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
         + np.where(inside[..., None], [200, 90, 40], [30, 90, 160]).astype(np.uint8))
selection = inside.astype(np.uint8) * 255
del r, inside
with connect(disc, spawn=False) as c:
    t0 = time.perf_counter()
    fg, alpha = c.matte(image, selection, engine="classical", trimap_source="selection_band",
                        band_radius=band)
    print(json.dumps({"seconds": time.perf_counter() - t0, "alpha_mean": float(alpha.mean())}))
"""


# Loaded by the server when DRIP_BENCH_TRACE names a file: tracemalloc from the start, its
# peak written at exit (the server exits cleanly on SIGTERM).
SITECUSTOMIZE = r"""
import atexit, os, tracemalloc
_path = os.environ.get("DRIP_BENCH_TRACE")
if _path:
    tracemalloc.start()
    atexit.register(lambda: open(_path, "w").write(str(tracemalloc.get_traced_memory()[1])))
"""


def rss_kb(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_tree(tree: Path, w: int, h: int, band: int, trace: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory(prefix="drip-mem-") as tmp:
        disc = os.path.join(tmp, "server.json")
        server_env = dict(env)
        if trace:
            Path(tmp, "sitecustomize.py").write_text(SITECUSTOMIZE)
            server_env.update(PYTHONPATH=f"{tree}{os.pathsep}{tmp}",
                              DRIP_BENCH_TRACE=os.path.join(tmp, "peak"))
        server = subprocess.Popen([sys.executable, "-m", "drip_core.server", "--discovery-file", disc,
                                   "--engine", "classical", "--max-pixels", str(w * h + 1)],
                                  cwd=tree, env=server_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                if os.path.exists(disc):
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            idle = rss_kb(server.pid, "VmRSS")
            out = subprocess.run([sys.executable, "-c", CLIENT, str(w), str(h), str(band), disc], cwd=tree,
                                 env=env, capture_output=True, text=True, timeout=1800)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result.update(server_peak_mb=rss_kb(server.pid, "VmHWM") / 1024, server_idle_mb=idle / 1024)
        finally:
            server.terminate()
            server.wait(60)
        if trace:
            result["traced_peak_mb"] = int(Path(tmp, "peak").read_text()) / 2**20
        return result


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
        trees = {f"baseline {args.baseline_rev}": base / "tree", "this tree": REPO}
        rows = {name: run_tree(tree, w, h, args.band) for name, tree in trees.items()}
        for name, tree in trees.items():
            rows[name]["traced_peak_mb"] = run_tree(tree, w, h, args.band, trace=True)["traced_peak_mb"]
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base / "tree")], cwd=REPO,
                       capture_output=True)
    layer_mb = w * h * 3 / 2**20
    print(f"{'':24} {'server peak RSS':>16} {'idle RSS':>9} {'job time':>9} {'traced peak':>12} "
          f"{'= x layer':>9}")
    for name, r in rows.items():
        print(f"{name:24} {r['server_peak_mb']:13.0f} MB {r['server_idle_mb']:6.0f} MB {r['seconds']:7.1f} s "
              f"{r['traced_peak_mb']:9.0f} MB {r['traced_peak_mb'] / layer_mb:8.1f}x")
    (old, new) = rows.values()
    print(f"peak RSS ratio this/baseline: {new['server_peak_mb'] / old['server_peak_mb']:.2f}; "
          f"alpha means {old['alpha_mean']:.4f} / {new['alpha_mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
