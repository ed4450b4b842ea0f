"""Composite suite (issue 24): the smart band tried on scenes it was not tuned on, with splits.

    PYTHONPATH=. python bench/composite_suite.py [--split tune|held|both] [--quick]
                [--methods band12 smart_v1 smart] [--smart-params 'k=v,...'] [--jobs 2]
                [--cache /tmp/suite.json] [--only GT05 dark_parts]

Scenes (data read from ../shared at run time, nothing of it is written):
  * composites: each of the 27 alphamatting.com objects (the photo's foreground colours under
    its ground-truth alpha, drip_core.eval.composites) over two other backgrounds: another
    alphamatting photo, and in turn (by object) one of scikit-image's photos or a smooth /
    textured synthetic background, or a camouflage background made of the object's own darkest or
    lightest colours (dark-on-dark / light-on-light).  --quick: the second background only.
  * synthetic: drip_core.eval.failure_scenes (solid dark parts on a dark background, white fur on
    white, whiskers crossing the lasso, an object cut by the image border, a ring with holes), two
    seeds each.
Splits: objects GT01, GT03, ... (odd) with odd-numbered alphamatting backgrounds, the even-indexed
scikit-image photos and even synthetic seeds are the tuning half; the even objects with the other
half of every background kind are held out.  Synthetic scenes: seeds 0 tune, 1 held out.
Lassos: bench/rough_selection.rough_selection on the ground truth (one seed per scene).

Methods (trimap -> classical engine, whole-image alpha SAD / 1000, as bench/rough_selection.py):
  band12     drip_core.trimaps.from_selection(selection, 12)
  smart_v1   smart_band.V1 (the smart band before issue 24)
  smart      smart_band.DEFAULT (today's smart band, with --smart-params changes)
Holes: solid foreground (true alpha >= 0.98) deeper than 15 px inside the lasso whose alpha comes
out below 0.5, in pixels.  Mean / median SAD and summed holes are printed per split and group.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rough_selection import rough_selection, run_engine, smart_params, whole_image_sad  # noqa: E402
from drip_core.eval import composites, failure_scenes  # noqa: E402
from drip_core.eval.dataset import data_dir_or_exit, default_data_dir, load_sample, sample_names  # noqa: E402

METHODS = ("band12", "smart_v1", "smart")
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "colorwheel", "grass", "gravel",
                  "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket",
                  "stereo_motorcycle")
HOLE_DEPTH = 15     # px inside the lasso
SOLID = 250         # true alpha >= 0.98


@dataclass(frozen=True)
class SceneSpec:
    key: str          # e.g. "GT05+am:GT07", "syn:whiskers:1"
    split: str        # "tune" or "held"
    group: str        # "composite" or "synthetic"
    obj: str          # alphamatting object name or synthetic scene kind
    background: str   # "am:GT07", "sk:coffee", "smooth:3", "texture:4", "camo-dark:5"; "" for synthetic
    seed: int         # lasso seed (synthetic: also the scene's seed)


def _other_background(k: int, tune: bool) -> str:
    """Object number k's second background: scikit-image photos of its half, then smooth and
    textured synthetic ones, in turn."""
    photos = SKIMAGE_PHOTOS[0 if tune else 1::2]
    kinds = [f"sk:{p}" for p in photos] + [f"smooth:{k}", f"texture:{k}"]
    return kinds[(k // 2) % len(kinds)]


def scene_specs(names, quick: bool = False) -> list[SceneSpec]:
    specs = []
    numbers = [int(n[2:]) for n in names if n[2:].isdigit()]
    for name in names:
        k = int(name[2:])
        tune = k % 2 == 1
        same = sorted(n for n in numbers if n % 2 == k % 2 and n != k)
        photo = next((n for n in same if n > k), same[0] if same else k)
        second = _other_background(k, tune) if (k // 2) % 2 == 0 else f"camo:{k}"
        backgrounds = [second] if quick else [f"am:GT{photo:02d}", second]
        for j, bg in enumerate(backgrounds):
            specs.append(SceneSpec(f"{name}+{bg}", "tune" if tune else "held", "composite", name, bg,
                                   100 * k + j))
    for kind in failure_scenes.SCENES:
        for seed in (0, 1):
            specs.append(SceneSpec(f"syn:{kind}:{seed}", "tune" if seed == 0 else "held", "synthetic",
                                   kind, "", seed))
    return specs


@lru_cache(maxsize=4)
def _object(data: str, name: str):
    smp = load_sample(data, name)
    return smp.image, smp.gt, composites.object_foreground(smp.image, smp.gt)


def _background(data: str, spec: SceneSpec, fg, gt) -> np.ndarray:
    kind, _, arg = spec.background.partition(":")
    shape = gt.shape
    if kind == "am":
        return composites.fit_background(load_sample(data, arg).image, shape)
    if kind == "sk":
        import skimage.data
        photo = getattr(skimage.data, arg)()
        return composites.fit_background(photo[0] if isinstance(photo, tuple) else photo, shape)
    if kind == "smooth":
        return composites.smooth_background(shape, int(arg))
    if kind == "texture":
        return composites.textured_background(shape, int(arg))
    return composites.camouflage_background(shape, int(arg), fg, gt, composites.solid_side(fg, gt))


def make_scene(data: str, spec: SceneSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image uint8, ground-truth alpha uint8, lasso uint8 0/255)."""
    if spec.group == "synthetic":
        scene = failure_scenes.SCENES[spec.obj](spec.seed)
        image, gt = scene.image, scene.gt
    else:
        _, gt, fg = _object(data, spec.obj)
        image = composites.composite(fg, gt, _background(data, spec, fg, gt))
    return image, gt, rough_selection(gt, spec.seed)


def solid_holes(alpha: np.ndarray, gt: np.ndarray, lasso: np.ndarray) -> int:
    """Solid foreground deeper than HOLE_DEPTH inside the lasso that comes out below 0.5."""
    deep = ndimage.distance_transform_edt(lasso >= 128) > HOLE_DEPTH
    return int(np.count_nonzero(deep & (gt >= SOLID) & (alpha < 0.5)))


def trimap_for(method: str, image: np.ndarray, lasso: np.ndarray, params) -> np.ndarray:
    from drip_core.engines import refining_engine
    from drip_core.trimaps import from_selection
    from drip_core.trimaps.smart_band import V1, smart_trimap
    if method == "band12":
        return from_selection(lasso, 12)
    chosen = V1 if method == "smart_v1" else params
    return smart_trimap(image.astype(np.float32) / 255.0, lasso, params=chosen, engine=refining_engine())


def run_scene(data: str, spec: SceneSpec, methods, params) -> dict:
    image, gt, lasso = make_scene(data, spec)
    out = {}
    for m in methods:
        t0 = time.perf_counter()
        tri = trimap_for(m, image, lasso, params)
        seconds = time.perf_counter() - t0
        try:
            alpha = run_engine(image, tri)
        except Exception as exc:  # noqa: BLE001 - an engine refusal: the user gets the bare lasso
            print(f"  {spec.key} {m}: engine failed ({exc}); scored as the lasso", file=sys.stderr)
            alpha = lasso / 255.0
        out[m] = {"sad": whole_image_sad(alpha, gt), "holes": solid_holes(alpha, gt, lasso), "s": seconds}
    return out


def _worker(task):
    data, spec, methods, params = task
    return spec, run_scene(data, spec, methods, params)


def _cache_key(spec: SceneSpec, method: str, params) -> str:
    # smart_v1 is frozen: its key does not change when Params gains fields
    return f"{spec.key}|{method}|{params if method == 'smart' else ''}"


def run_all(data: str, specs, methods, params, jobs: int, cache: dict) -> dict:
    """{scene key: {method: {"sad", "holes", "s"}}}, reading and filling ``cache``."""
    results: dict = {s.key: {} for s in specs}
    todo = []
    for spec in specs:
        missing = [m for m in methods if _cache_key(spec, m, params) not in cache]
        for m in set(methods) - set(missing):
            results[spec.key][m] = cache[_cache_key(spec, m, params)]
        if missing:
            todo.append((data, spec, tuple(missing), params))
    if jobs > 1:
        from multiprocessing import get_context
        with get_context("fork").Pool(jobs) as pool:
            done = list(pool.imap(_worker, todo))
    else:
        done = map(_worker, todo)
    for spec, res in done:
        for m, v in res.items():
            results[spec.key][m] = cache[_cache_key(spec, m, params)] = v
        print(f"{spec.key:<34} {spec.split:<5}" + "".join(
            f"{m}={v['sad']:7.2f}/{v['holes']:<6d}" for m, v in res.items()), flush=True)
    return results


def summarise(specs, results, methods) -> None:
    print(f"\n{'split':<6}{'group':<10}{'n':>4}  " + "".join(
        f"{m + ' mean':>15}{'median':>8}{'holes':>8}{'worse':>6}" for m in methods))
    for split in ("tune", "held"):
        for group in ("composite", "synthetic", "all"):
            chosen = [s for s in specs if s.split == split and group in ("all", s.group)]
            if not chosen:
                continue
            row = f"{split:<6}{group:<10}{len(chosen):>4}  "
            for m in methods:
                sads = [results[s.key][m]["sad"] for s in chosen]
                holes = sum(results[s.key][m]["holes"] for s in chosen)
                worse = sum(results[s.key][m]["sad"] > results[s.key]["band12"]["sad"] + 0.05
                            for s in chosen) if "band12" in methods else 0
                row += f"{np.mean(sads):15.2f}{np.median(sads):8.2f}{holes:8d}{worse:6d}"
            print(row)
    for m in methods:
        print(f"{m}: trimap seconds mean {np.mean([results[s.key][m]['s'] for s in specs]):.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--split", choices=("tune", "held", "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="one background per object instead of two")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--smart-params", default="", help="change smart_band.DEFAULT fields for 'smart'")
    ap.add_argument("--only", nargs="+", help="only scenes whose key contains one of these")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--cache", help="JSON file of results reused across runs (same scene, method, params)")
    args = ap.parse_args(argv)
    args.data = data_dir_or_exit(args.data)
    data = str(args.data)
    specs = scene_specs(sample_names(data), args.quick)
    specs = [s for s in specs if args.split in ("both", s.split)]
    if args.only:
        specs = [s for s in specs if any(o in s.key for o in args.only)]
    params = smart_params(args.smart_params)
    cache = json.loads(Path(args.cache).read_text()) if args.cache and Path(args.cache).is_file() else {}
    print(f"{len(specs)} scenes; load average at start {os.getloadavg()[0]:.2f}, nproc {os.cpu_count()}"
          + (f"; smart params changed: {args.smart_params}" if args.smart_params else ""))
    t0 = time.perf_counter()
    results = run_all(data, specs, args.methods, params, args.jobs, cache)
    if args.cache:
        Path(args.cache).write_text(json.dumps(cache))
    summarise(specs, results, args.methods)
    print(f"wall {time.perf_counter() - t0:.0f} s; load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
