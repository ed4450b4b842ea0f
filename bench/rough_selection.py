"""Rough-selection benchmark (issue 12): the trimap a user can make from a lasso, scored.

    PYTHONPATH=. python bench/rough_selection.py [--seeds 3] [--methods band12 smart expert]
                                                 [--images GT04 GT24] [--time-large]
                                                 [--first-seed 1] [--smart-params 'hole_min=0.04']

For each of the 27 alphamatting.com low-res photos and each seed, a lasso-like rough selection
is simulated from the ground-truth alpha (see ``rough_selection``): the alpha > 0.5 region with
its holes filled, thin structures (hair, strands) opened away, the outline smoothed at a scale
relative to the object (a lasso does not follow every bump), then shifted in or out by a few
pixels (a global shift plus a slowly varying one along the outline), holes filled again.
The GT is used only to make the selection; the trimap methods see the photo and the selection.

Methods (trimap -> classical engine -> whole-image alpha SAD / 1000, drip_core.eval.metrics):
  bare     the selection itself as the alpha (no matting)
  band12   today's default: drip_core.trimaps.from_selection(selection, 12)
  band40   the same with a 40-px band
  smart    drip_core.trimaps.smart_band.smart_trimap(image, selection)  (band radius "auto")
  expert   the data set's Trimap1 and Trimap2 (independent of the selection; reference)

Prints a per-image table (mean over seeds), mean / median over the photos, and for ``smart`` the
number of photos where it is worse than band12.  ``--time-large`` also times smart_trimap with and
without its second pass, per photo and on one photo upscaled to ~25 megapixels (trimap only).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drip_core.eval.dataset import data_dir_or_exit, default_data_dir, load_sample, sample_names  # noqa: E402
from drip_core.eval.metrics import sad, to_uint8  # noqa: E402

METHODS = ("bare", "band12", "band40", "smart", "expert1", "expert2")


def smart_params(text: str = ""):
    """'trust_deep=0.3,hole_min=0.02' -> smart_band.Params with those fields changed ('' -> the default)."""
    from dataclasses import replace

    from drip_core.trimaps.smart_band import DEFAULT
    changes = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        kind = type(getattr(DEFAULT, key))
        changes[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return replace(DEFAULT, **changes)


# -- the simulated user ---------------------------------------------------------------------

def lasso_seed(name: str, seed: int) -> int:
    """The lasso seed of photo ``name`` (GT04 ...) in the benchmarks' seed ``seed``: each photo and
    seed its own lasso."""
    return 1000 * seed + (int(name[2:]) if name[2:].isdigit() else 0)


def rough_selection(gt: np.ndarray, seed: int, smooth: float = 0.025, thin: float = 0.012,
                    shift_px: float = 6.0) -> np.ndarray:
    """A lasso-like selection (uint8 0/255) simulated from a GT alpha (uint8).

    ``smooth`` and ``thin`` are fractions of the object's scale s = sqrt(area of alpha > 0.5):
    the outline's smoothing sigma and the radius of the opening that drops strands.  The
    shift is a random global offset in [-shift_px, shift_px] plus a low-frequency field (std
    shift_px / 2, clipped to +-shift_px), positive = the selection grows outwards.
    """
    rng = np.random.default_rng(seed)
    obj = ndimage.binary_fill_holes(gt >= 128)
    s = float(np.sqrt(obj.sum()))
    r = max(1, int(round(thin * s)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = yy * yy + xx * xx <= r * r
    opened = ndimage.binary_opening(obj, disk)
    # keep the parts a user would circle: components of at least 1% of the object
    lab, n = ndimage.label(opened)
    if n:
        sizes = ndimage.sum(opened, lab, np.arange(1, n + 1))
        keep = np.zeros(n + 1, bool)
        keep[1:] = sizes >= 0.01 * obj.sum()
        opened = keep[lab]
    sdf = ndimage.distance_transform_edt(opened) - ndimage.distance_transform_edt(~opened)
    sdf = ndimage.gaussian_filter(sdf, smooth * s)
    h, w = gt.shape
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), 0.15 * s)
    noise *= 0.5 * shift_px / max(noise.std(), 1e-9)
    offset = rng.uniform(-shift_px, shift_px) + np.clip(noise, -shift_px, shift_px)
    sel = ndimage.binary_fill_holes(sdf + offset > 0)
    return sel.astype(np.uint8) * 255


# -- trimap methods and the engine ------------------------------------------------------------

def trimap_for(method: str, image: np.ndarray, selection: np.ndarray, name: str, data,
               params=None) -> np.ndarray | None:
    """``params``: smart_band.Params for "smart" (None: the default)."""
    from drip_core.trimaps import from_selection
    if method == "band12":
        return from_selection(selection, 12)
    if method == "band40":
        return from_selection(selection, 40)
    if method == "smart":
        from drip_core.engines import refining_engine
        from drip_core.trimaps.smart_band import DEFAULT, smart_trimap
        return smart_trimap(image.astype(np.float32) / 255.0, selection, params=params or DEFAULT,
                            engine=refining_engine())
    if method in ("expert1", "expert2"):
        return load_sample(data, name, "Trimap" + method[-1]).trimap
    return None  # bare


def run_engine(image_uint8: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """The one place the engine is called: uint8 image + trimap -> float alpha HxW (whole image,
    through the engine's JobRegion, as the server does)."""
    from drip_core.engines import get_engine
    return get_engine("classical").matte(image_uint8, trimap).alpha


def whole_image_sad(alpha: np.ndarray, gt: np.ndarray) -> float:
    return sad(to_uint8(alpha), gt, np.full(gt.shape, 128, np.uint8))


def score(method: str, image, selection, gt, name, data, cache: dict, params=None) -> tuple[float, float]:
    """(SAD, seconds for the trimap)."""
    if method.startswith("expert") and (name, method) in cache:
        return cache[name, method], 0.0
    if method == "bare":
        return whole_image_sad(selection / 255.0, gt), 0.0
    t0 = time.perf_counter()
    tri = trimap_for(method, image, selection, name, data, params)
    seconds = time.perf_counter() - t0
    try:
        alpha = run_engine(image, tri)
    except Exception as exc:  # noqa: BLE001 - an engine refusal (no FG / BG): the user gets
        # nothing better than the selection
        print(f"  {name} {method}: engine failed ({exc}); scored as the bare selection", file=sys.stderr)
        alpha = selection / 255.0
    value = whole_image_sad(alpha, gt)
    if method.startswith("expert"):
        cache[name, method] = value
    return value, seconds


def time_large(data, name: str = "GT04", megapixels: float = 25.0) -> None:
    """smart_trimap's seconds with and without its second pass (Params.refine), alternating in one
    process: per photo over the 27 photos (seed 0), and on one photo upscaled to ~25 megapixels."""
    from dataclasses import replace

    from PIL import Image

    from drip_core.engines import refining_engine
    from drip_core.trimaps.smart_band import DEFAULT, smart_trimap
    variants = (("one pass", replace(DEFAULT, refine=False)), ("default", DEFAULT))
    seconds = {label: [] for label, _ in variants}
    for n in sample_names(data):
        smp = load_sample(data, n)
        image = smp.image.astype(np.float32) / 255.0
        sel = rough_selection(smp.gt, int(n[2:]) if n[2:].isdigit() else 0)
        for label, params in variants:
            t0 = time.perf_counter()
            smart_trimap(image, sel, params=params, engine=refining_engine())
            seconds[label].append(time.perf_counter() - t0)
    print("per photo (27 photos, seed 0): " + ", ".join(
        f"{label} median {np.median(v):.3f} s max {np.max(v):.3f} s" for label, v in seconds.items())
        + f"  (load {os.getloadavg()[0]:.2f})")
    s = load_sample(data, name)
    h, w = s.gt.shape
    k = np.sqrt(megapixels * 1e6 / (h * w))
    W, H = int(round(w * k)), int(round(h * k))
    image = np.asarray(Image.fromarray(s.image).resize((W, H), Image.BILINEAR)).astype(np.float32) / 255.0
    sel = rough_selection(s.gt, 0)
    sel = np.asarray(Image.fromarray(sel).resize((W, H), Image.NEAREST))
    for _ in range(2):
        for label, params in variants:
            t0 = time.perf_counter()
            tri = smart_trimap(image, sel, params=params, engine=refining_engine())
            dt = time.perf_counter() - t0
            print(f"large layer: {name} upscaled to {W}x{H} ({W * H / 1e6:.1f} MP): smart_trimap ({label}) "
                  f"{dt:.2f} s, unknown {np.mean(tri == 128) * 100:.1f} % of the layer  "
                  f"(load {os.getloadavg()[0]:.2f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1 "
                    "(tune on seed 0, check on --first-seed 1 --seeds 2)")
    ap.add_argument("--smart-params", default="",
                    help="change smart_band.Params fields, e.g. 'hole_min=0.04'")
    ap.add_argument("--methods", nargs="+", default=["bare", "band12", "smart", "expert1", "expert2"],
                    choices=METHODS)
    ap.add_argument("--images", nargs="+", help="only these photos (e.g. GT04 GT24)")
    ap.add_argument("--smooth", type=float, default=0.025, help="outline smoothing sigma / object scale")
    ap.add_argument("--thin", type=float, default=0.012, help="strand-removing opening radius / object scale")
    ap.add_argument("--shift", type=float, default=6.0, help="in/out shift amplitude, px")
    ap.add_argument("--time-large", action="store_true", help="also time smart_trimap on a ~25-MP upscale")
    ap.add_argument("--time-only", action="store_true", help="only the large-layer timing")
    args = ap.parse_args(argv)
    args.data = data_dir_or_exit(args.data)
    params = smart_params(args.smart_params)
    if args.smart_params:
        print(f"smart band parameters changed: {args.smart_params}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, nproc {os.cpu_count()}")
    if not args.time_only:
        names = args.images or sample_names(args.data)
        methods = args.methods
        cache: dict = {}
        table = {m: [] for m in methods}
        tri_seconds = {m: [] for m in methods}
        print(f"{'image':<6}" + "".join(f"{m:>9}" for m in methods))
        for name in names:
            smp = load_sample(args.data, name)
            per = {m: [] for m in methods}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                sel = rough_selection(smp.gt, lasso_seed(name, seed),
                                      args.smooth, args.thin, args.shift)
                for m in methods:
                    v, t = score(m, smp.image, sel, smp.gt, name, args.data, cache, params)
                    per[m].append(v)
                    tri_seconds[m].append(t)
            for m in methods:
                table[m].append(float(np.mean(per[m])))
            print(f"{name:<6}" + "".join(f"{table[m][-1]:9.2f}" for m in methods), flush=True)
        print(f"{'mean':<6}" + "".join(f"{np.mean(table[m]):9.2f}" for m in methods))
        print(f"{'median':<6}" + "".join(f"{np.median(table[m]):9.2f}" for m in methods))
        print(f"{'trim s':<6}" + "".join(f"{np.mean(tri_seconds[m]):9.3f}" for m in methods))
        if "smart" in methods and "band12" in methods:
            worse = [n for n, a, b in zip(names, table["smart"], table["band12"]) if a > b]
            print(f"smart worse than band12 on {len(worse)} of {len(names)} photos: {' '.join(worse)}")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.time_large or args.time_only:
        time_large(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
