"""Batch throughput: the local batch against Ray with 1 and 2 CPUs, same images, same run.

    .venv/bin/python bench/cluster_batch.py [--images N] [--size WxH] [--repeat R] [--cold] [--json OUT]

Images are generated scenes (drip_core.demo_scene, seeds 0..N-1) with their trimaps; every
mode mattes the same folder with the classical engine through drip-matte's own code
(``drip_core.cli.main``), into a fresh output folder, and the outputs are compared byte for byte.

* warm: what a long catalogue sees per image. The local batch runs after a warm-up batch in
  this process (imports, engine built), held to one core (CPU affinity); each Ray mode gets a
  fresh local instance (``--ray-cpus`` 1 or 2; the 1-CPU instance is started on one core), a
  warm-up batch starts its workers, then the timed batches run. The local batch on both cores
  is timed too, for reference.
  Ray overhead = (Ray 1 CPU seconds per image) / (local seconds per image) - 1.
* cold (--cold): ``drip-matte`` as a user runs it, a new process each time, Ray started and
  stopped inside it: the fixed start-up cost that a small batch pays once.

The load average is printed: other processes on the machine inflate every timing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the local Ray instances bind to 127.0.0.1 only; must be set before ray is imported
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ["PYTHONPATH"] = str(REPO) + (os.pathsep + os.environ["PYTHONPATH"]
                                        if os.environ.get("PYTHONPATH") else "")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from drip_core.cli import main as drip_matte  # noqa: E402


def make_images(folder: Path, n: int, width: int, height: int, first_seed: int = 0) -> Path:
    from drip_core.demo_scene import make_scene
    for sub in ("in", "tri"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, trimap, _, _ = make_scene(width=width, height=height, seed=first_seed + i, band=3)
        Image.fromarray(image).save(folder / "in" / f"img{i:03d}.png")
        Image.fromarray(trimap).save(folder / "tri" / f"img{i:03d}.png")
    return folder


def batch_args(data: Path, out: Path) -> list[str]:
    return ["--input-dir", str(data / "in"), "--trimap-dir", str(data / "tri"), "--output-dir", str(out),
            "--engine", "classical", "--quiet"]


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and its living descendants (the local Ray
    instance's GCS, raylet and workers are ours). Linux /proc; unlike wall time, hardly
    changed by other people's processes on a shared machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    mine, grew = {os.getpid()}, True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return sum(cpu.get(pid, 0.0) for pid in mine)


CPU = {}  # output folder -> CPU seconds that batch cost
ALL_CORES = sorted(os.sched_getaffinity(0))


def pin(cores) -> None:
    """Run every thread of this process on ``cores`` (processes started later inherit it):
    the classical engine's BLAS/numba use a second core when there is one, so the
    "local batch with 1 CPU" and "Ray with 1 CPU" must be held to one core for real."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # a thread that just ended
            pass


def timed(argv: list[str]) -> float:
    c0, t0 = tree_cpu_seconds(), time.perf_counter()
    rc = drip_matte(argv)
    seconds = time.perf_counter() - t0
    CPU[argv[argv.index("--output-dir") + 1]] = tree_cpu_seconds() - c0
    if rc != 0:
        raise SystemExit(f"drip-matte {' '.join(argv)} exited with {rc}")
    return seconds


def outputs(out: Path) -> dict:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def warm_runs(data: Path, warm: Path, work: Path, repeat: int) -> dict:
    """Each Ray instance's timed batches alternate with local batches (local, Ray, local, Ray ...):
    on a shared machine the load drifts, and pairs measured side by side see the same load.
    The local batch runs on one core; the 1-CPU Ray instance is started on that core too."""
    import ray
    results = {"local": [], "ray1": [], "ray2": [], "pairs1": [], "pairs2": [], "local_all_cores": []}
    timed(batch_args(warm, work / "warm-local"))  # imports, engine construction
    for cpus in (1, 2):
        pin(ALL_CORES[:cpus])
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
        start = time.perf_counter() - t0
        try:
            # drip-matte joins the instance this process started (ray_runner.connect reuses it)
            warm_s = timed(batch_args(warm, work / f"warm-ray{cpus}") + ["--ray"])
            for r in range(repeat):
                pin(ALL_CORES[:1])
                local = timed(batch_args(data, work / f"local{cpus}-{r}"))
                pin(ALL_CORES[:cpus])
                on_ray = timed(batch_args(data, work / f"ray{cpus}-{r}") + ["--ray"])
                results["local"].append(local)
                results[f"ray{cpus}"].append(on_ray)
                results[f"pairs{cpus}"].append(on_ray / local)
                results.setdefault("cpu_local", []).append(CPU[str(work / f"local{cpus}-{r}")])
                results.setdefault(f"cpu_ray{cpus}", []).append(CPU[str(work / f"ray{cpus}-{r}")])
            if cpus == 2:  # for reference: today's local batch when it may use both cores
                pin(ALL_CORES)
                results["local_all_cores"] = [timed(batch_args(data, work / f"local-all-{r}"))
                                              for r in range(repeat)]
        finally:
            ray.shutdown()
            pin(ALL_CORES)
        results[f"ray{cpus}_start_s"] = round(start, 2)
        results[f"ray{cpus}_warmup_s"] = round(warm_s, 2)
    return results


def cold_runs(data: Path, work: Path) -> dict:
    env = dict(os.environ)
    results = {}
    for name, extra in (("local", []), ("ray1", ["--ray", "--ray-cpus", "1"]),
                        ("ray2", ["--ray", "--ray-cpus", "2"])):
        out = work / f"cold-{name}"
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "drip_core.cli", *batch_args(data, out), *extra], cwd=REPO,
                           env=env, capture_output=True, text=True)
        results[name] = round(time.perf_counter() - t0, 2)
        if r.returncode != 0:
            raise SystemExit(f"cold {name} failed: {r.stderr}")
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--size", default="320x240", help="WxH of the generated scenes")
    p.add_argument("--repeat", type=int, default=1, help="timed batches per mode (the median is reported)")
    p.add_argument("--cold", action="store_true", help="also time drip-matte end to end in fresh processes")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    width, height = map(int, args.size.lower().split("x"))
    work = Path(tempfile.mkdtemp(prefix="drip-cluster-bench-"))
    try:
        data = make_images(work / "data", args.images, width, height)
        warm = make_images(work / "warm", 4, width, height, first_seed=10_000)
        load_before = os.getloadavg()
        res = warm_runs(data, warm, work, args.repeat)
        cold = cold_runs(data, work) if args.cold else None
        load_after = os.getloadavg()
        reference = outputs(work / "local1-0")
        identical = all(outputs(work / f"{m}-{r}") == reference
                        for m in ("local1", "local2", "ray1", "ray2", "local-all")
                        for r in range(args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = args.images
    per_image = {m: float(np.median(res[m])) / n for m in ("local", "ray1", "ray2")}
    # paired: each Ray batch against the local batch run just before it
    overhead = float(np.median(res["pairs1"])) - 1
    speedup = float(np.median(res["pairs1"])) / float(np.median(res["pairs2"]))
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, Ray {__import__('ray').__version__}")
    print(f"{n} generated scenes {width}x{height}, classical engine, medians of {args.repeat} batches "
          f"per Ray mode ({2 * args.repeat} local, alternating with them); "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"{'mode':<18}{'images/s':>10}{'s/image':>10}")
    per_image["local_all_cores"] = float(np.median(res["local_all_cores"])) / n
    for m, label in (("local", "local, 1 core"), ("ray1", "Ray, 1 CPU"), ("ray2", "Ray, 2 CPUs"),
                     ("local_all_cores", "local, 2 cores")):
        print(f"{label:<18}{1 / per_image[m]:>10.2f}{per_image[m]:>10.3f}")
    print(f"Ray overhead per image vs local (1 CPU), median of paired batches: {overhead * 100:+.1f} %  "
          f"(target <= +15 %); pairs: {', '.join(f'{x:.3f}' for x in res['pairs1'])}")
    print(f"Ray 2 CPUs vs 1 CPU, each relative to its paired local batches: {speedup:.2f}x  (target > 1); "
          f"raw medians: {per_image['ray1'] / per_image['ray2']:.2f}x")
    cpu = {m: float(np.median(res[f"cpu_{m}"])) / n for m in ("local", "ray1", "ray2")}
    print("CPU seconds per image (this process and its descendants, i.e. the Ray instance): "
          + ", ".join(f"{m} {v:.3f}" for m, v in cpu.items())
          + f"; Ray 1 CPU vs local: {(cpu['ray1'] / cpu['local'] - 1) * 100:+.1f} %")
    print(f"Ray start-up: {res['ray1_start_s']} s (1 CPU), {res['ray2_start_s']} s (2 CPUs); "
          f"first batch of 4 (workers starting): {res['ray1_warmup_s']} s / {res['ray2_warmup_s']} s")
    print(f"outputs byte-identical across modes: {'yes' if identical else 'NO'}")
    if cold:
        print("cold, drip-matte end to end in a new process (s): "
              + ", ".join(f"{k} {v}" for k, v in cold.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "images": n, "size": [width, height], "repeat": args.repeat, "seconds": res,
            "images_per_second": {m: 1 / v for m, v in per_image.items()}, "overhead": overhead,
            "speedup_2_vs_1": speedup, "cpu_seconds_per_image": cpu, "identical": identical,
            "cold_seconds": cold, "load": [load_before, load_after]}, indent=2))


if __name__ == "__main__":
    main()
