"""Speed and quality of the classical engine against pymatting's closed-form, in one run.

    .venv/bin/python bench/classical_speed.py [--data DIR] [--limit N] [--json OUT.json]

For Trimap1 and Trimap2 of the alphamatting.com low-res set: per-image seconds and SAD of
  * ours, warm (engine already used once in this process), with CG iterations and seconds
    per stage (transparency check, trimming, K-to-U flow, solve, foreground),
  * "v1": the engine as it was before issue 11 (plain closed form, eps 1e-7), in the same run,
    for the per-image SAD deltas (--no-v1 skips it),
  * ours, cold: the first matte() in a fresh process (import time reported separately),
  * pymatting closed-form on the full image (estimate_alpha_cf + estimate_foreground_ml),
    warm (its numba functions compiled beforehand), plus its cold first call.
The load average is printed too: other processes on the machine inflate every timing.

Foreground quality (unless --no-foreground) on synthetic composites with exact ground truth:
I = a F + (1 - a) B, F = photo i, B = photo i+1 (resized), a = GT alpha of photo i; errors are
alpha-weighted over 0 < a < 1 (Germer et al.), for F = I (naive), pymatting's
estimate_foreground_ml and ours, all given the GT alpha; "ours + K-to-U colours" also gets the
K-to-U flows' colours as a prior (trimap from the GT alpha: 0 / 1 known, the rest unknown),
as the engine does.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drip_core.eval.dataset import default_data_dir, load_sample, sample_names  # noqa: E402
from drip_core.eval.metrics import alpha_errors, sad, to_uint8  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gegl_baseline  # noqa: E402

COLD_SNIPPET = r"""
import sys, time, json
t0 = time.perf_counter()
{imports}
from drip_core.eval.dataset import load_sample
t1 = time.perf_counter()
s = load_sample(sys.argv[1], 'GT01', 'Trimap1')
t2 = time.perf_counter()
{call}
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_call_s": t3 - t2}}))
"""
OURS = ("from drip_core.engines import get_engine", "get_engine('classical').matte(s.image, s.trimap)")
PYMATTING = ("from pymatting import estimate_alpha_cf, estimate_foreground_ml",
             "a = estimate_alpha_cf(s.image / 255.0, s.trimap / 255.0); "
             "estimate_foreground_ml(s.image / 255.0, a)")


def machine() -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model or platform.processor(),
            "python": platform.python_version(), "numpy": np.__version__}


def cold(data, imports, call, env=None) -> dict:
    code = COLD_SNIPPET.format(imports=imports, call=call)
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True, text=True, cwd=root,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def pymatting_matte(image, trimap):
    from pymatting import estimate_alpha_cf, estimate_foreground_ml
    img = image / 255.0
    alpha = estimate_alpha_cf(img, trimap / 255.0)
    estimate_foreground_ml(img, alpha)
    return alpha


def run(methods: dict, samples, stats=None) -> dict:
    """Each image through every method in turn (interleaved, so a load spike from other
    processes hits all methods alike); wall and CPU seconds and SAD per image.
    ``stats``: {method: callable returning that method's stats of its last image}."""
    out = {k: {"seconds": [], "cpu_seconds": [], "sad": [], "stats": []} for k in methods}
    for s in samples:
        for key, method in methods.items():
            c0, t0 = time.process_time(), time.perf_counter()
            alpha = method(s.image, s.trimap)
            out[key]["seconds"].append(time.perf_counter() - t0)
            out[key]["cpu_seconds"].append(time.process_time() - c0)
            pred = to_uint8(np.where(s.trimap == 128, alpha, s.trimap / 255.0))
            out[key]["sad"].append(sad(pred, s.gt, s.trimap))
            if stats and key in stats:
                out[key]["stats"].append(stats[key]())
    for r in out.values():
        for k in ("seconds", "cpu_seconds", "sad"):
            r["mean_" + k] = float(np.mean(r[k]))
    return out


def foreground_quality(data, names) -> dict:
    from pymatting import estimate_foreground_ml

    from drip_core.engines.classical.data_term.information_flow import known_to_unknown
    from drip_core.engines.classical.data_term.priors import foreground_prior
    from drip_core.engines.classical.foreground import _resize_nearest, estimate_foreground
    from drip_core.eval.metrics import foreground_errors

    def ours_flow(image, a):
        trimap = np.where(a >= 1, 255, np.where(a <= 0, 0, 128)).astype(np.uint8)
        return estimate_foreground(image, a, prior=foreground_prior(image, known_to_unknown(image, trimap)))

    methods = {"naive (F = I)": lambda image, a: image,
               "pymatting estimate_foreground_ml": estimate_foreground_ml,
               "ours": estimate_foreground, "ours + K-to-U colours": ours_flow}
    rows = {k: [] for k in methods}
    estimate_foreground_ml(np.random.rand(8, 8, 3), np.random.rand(8, 8))  # compile outside the timings
    for i, name in enumerate(names):
        f = load_sample(data, name)
        b = load_sample(data, names[(i + 1) % len(names)])
        F, a = f.image / 255.0, f.gt / 255.0
        B = _resize_nearest(b.image / 255.0, *a.shape)
        image = a[..., None] * F + (1 - a[..., None]) * B
        for key, method in methods.items():
            t0 = time.perf_counter()
            est = method(image, a)
            seconds = time.perf_counter() - t0
            e = foreground_errors(est, F, a)
            rows[key].append((e.sad, e.mse * 1e3, seconds))
    return {k: dict(zip(("sad", "mse_x1e3", "seconds"), np.mean(v, axis=0).tolist()))
            for k, v in rows.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json")
    ap.add_argument("--no-pymatting", action="store_true", help="skip the pymatting baseline")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed / SAD part")
    ap.add_argument("--no-foreground", action="store_true", help="skip the foreground-quality part")
    ap.add_argument("--no-gegl", action="store_true", help="skip the live GEGL matting-global baseline")
    ap.add_argument("--no-v1", action="store_true", help="skip the pre-issue-11 engine (per-image deltas)")
    args = ap.parse_args(argv)
    if not args.data:
        print("no data: pass --data (alphamatting.com low-res folder)", file=sys.stderr)
        return 1
    info = machine()
    print(f"# {info['nproc']} CPUs, {info['cpu']}; load average at start {os.getloadavg()}")
    names = sample_names(args.data)[: args.limit]
    results = {"machine": info, "load_start": os.getloadavg(), "trimaps": {}}

    if not args.no_foreground:
        results["foreground"] = foreground_quality(args.data, names)
        print(f"foreground on exact composites, full image, GT alpha ({len(names)} images):")
        print(f"  {'method':<34}{'SAD/1000':>9}{'MSEx1e3':>9}{'s/image':>9}")
        for key, r in results["foreground"].items():
            print(f"  {key:<34}{r['sad']:9.3f}{r['mse_x1e3']:9.3f}{r['seconds']:9.3f}")
    if args.no_speed:
        return _finish(args, results)
    results["ours_cold"] = cold(args.data, *OURS)
    if not args.no_pymatting:
        # numba keeps compiled code on disk: time both a filled cache and a fresh install's empty one
        results["pymatting_cold"] = cold(args.data, *PYMATTING)
        with tempfile.TemporaryDirectory() as empty:
            results["pymatting_cold_empty_cache"] = cold(args.data, *PYMATTING,
                                                         env={"NUMBA_CACHE_DIR": empty})

    from drip_core.engines.classical.engine import ClassicalEngine
    engine = ClassicalEngine()
    warm_sample = load_sample(args.data, names[0])
    engine.matte(warm_sample.image, warm_sample.trimap)
    if not args.no_pymatting:
        pymatting_matte(warm_sample.image, warm_sample.trimap)  # compile numba outside the timings

    last_stats = {}

    def ours(image, trimap):
        matte = engine.matte(image, trimap)
        last_stats.clear()
        last_stats.update(matte.stats)
        return matte.alpha

    class V1(ClassicalEngine):  # the engine before issue 11: plain closed form, eps 1e-7
        eps, sigma, trim = 1e-7, 0.0, False

    v1 = V1()

    methods = {"ours": ours}
    if not args.no_v1:
        methods["v1"] = lambda image, trimap: v1.matte(image, trimap).alpha
    if not args.no_pymatting:
        methods["pymatting_cf"] = pymatting_matte
    for trimap in ("Trimap1", "Trimap2"):
        samples = [load_sample(args.data, n, trimap) for n in names]
        results["trimaps"][trimap] = run(methods, samples, {"ours": lambda: dict(last_stats)})
        _per_image(trimap, names, results["trimaps"][trimap])

    print(f"{'':10}{'method':<28}{'s/image':>9}{'CPU s':>8}{'SAD':>8}")
    for trimap, entry in results["trimaps"].items():
        for key, label in (("ours", "ours (warm)"), ("v1", "v1 (before issue 11)"),
                           ("pymatting_cf", "pymatting cf (full image)")):
            if key in entry:
                r = entry[key]
                print(f"{trimap:<10}{label:<28}{r['mean_seconds']:9.3f}{r['mean_cpu_seconds']:8.3f}{r['mean_sad']:8.3f}")
        if "pymatting_cf" in entry:
            wall = entry["pymatting_cf"]["mean_seconds"] / entry["ours"]["mean_seconds"]
            cpu = entry["pymatting_cf"]["mean_cpu_seconds"] / entry["ours"]["mean_cpu_seconds"]
            print(f"{trimap:<10}{'speed-up vs pymatting':<28}{wall:8.2f}x{cpu:7.2f}x"
                  f"   (ours / pymatting time: {1 / wall:.2f} wall, {1 / cpu:.2f} CPU)")
    for key, label in (("ours_cold", "ours"), ("pymatting_cold", "pymatting cf, numba cache filled"),
                       ("pymatting_cold_empty_cache", "pymatting cf, numba cache empty")):
        if key in results:
            c = results[key]
            if "error" in c:
                print(f"cold first call, {label}: failed ({c['error']})")
            else:
                print(f"cold first call, {label}: {c['first_call_s']:.2f} s "
                      f"(+ {c['import_s']:.2f} s import), GT01 Trimap1")
    gegl_why = "skipped (--no-gegl)" if args.no_gegl else gegl_baseline.available()
    if gegl_why is None:
        # GIMP's own engine, live, in the GIMP 3.0 chroot (bench/gegl_baseline.py), same run
        results["gegl"] = {}
        for trimap in ("Trimap1", "Trimap2"):
            out = gegl_baseline.run_gegl(names, trimap)
            sads = [alpha_errors(out[n][1], s.gt, s.trimap).sad
                    for n, s in ((n, load_sample(args.data, n, trimap)) for n in names)]
            secs = [out[n][0] for n in names]
            results["gegl"][trimap] = {"mean_seconds": float(np.mean(secs)), "mean_sad": float(np.mean(sads))}
            r = results["gegl"][trimap]
            ours_s = results["trimaps"][trimap]["ours"]["mean_seconds"]
            print(f"{trimap:<10}{'GEGL matting-global (live)':<28}{r['mean_seconds']:9.3f}"
                  f"{'':>8}{r['mean_sad']:8.3f}"
                  f"   ours: {r['mean_seconds'] / ours_s:.2f}x faster")
    else:
        print(f"GEGL matting-global live baseline: {gegl_why}; "
              f"reference from SOURCE.txt: 0.55 s, SAD 9.96 (Trimap1)")
    return _finish(args, results)


STAGES = ("transparency", "trim", "flow", "solve", "foreground")


def _per_image(trimap, names, entry) -> None:
    """Per-image SAD of ours against v1 (flagging losses over 1.0), then CG iterations and
    seconds per stage of ours."""
    ours = entry["ours"]
    print(f"{trimap}: per image (SAD ours, SAD v1, delta; iterations; trimmed px; seconds per stage)")
    for i, name in enumerate(names):
        st = ours["stats"][i]
        line = f"  {name}  {ours['sad'][i]:7.3f}"
        if "v1" in entry:
            d = ours["sad"][i] - entry["v1"]["sad"][i]
            line += f" {entry['v1']['sad'][i]:7.3f} {d:+7.3f}{' !' if d > 1.0 else '  '}"
        line += f"  it {st.get('iterations', 0):3d}  trim {st.get('trimmed', 0):6d}"
        line += "".join(f"  {k} {st.get(k, 0.0):.3f}" for k in STAGES)
        line += "  (transparent: plain closed form)" if st.get("transparent") else ""
        print(line)
    mean = {k: float(np.mean([st.get(k, 0.0) for st in ours["stats"]])) for k in STAGES + ("iterations",)}
    ours["mean_stats"] = mean
    print(f"  mean: it {mean['iterations']:.1f}" + "".join(f"  {k} {mean[k]:.3f} s" for k in STAGES))
    if "v1" in entry:
        d = np.array(ours["sad"]) - np.array(entry["v1"]["sad"])
        entry["delta_vs_v1"] = {"mean": float(d.mean()), "worst": float(d.max()),
                                "worst_image": names[int(d.argmax())],
                                "over_1": [names[i] for i in np.flatnonzero(d > 1.0)]}
        print(f"  delta vs v1: mean {d.mean():+.3f}, worst {d.max():+.3f} ({names[int(d.argmax())]}), "
              f"losses over 1.0: {entry['delta_vs_v1']['over_1'] or 'none'}")


def _finish(args, results) -> int:
    results["load_end"] = os.getloadavg()
    print(f"# load average at end {results['load_end']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
