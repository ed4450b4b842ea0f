"""Step 7 of the smart band, candidate by candidate: what keeping each interior hole gains over
filling it, and what it looks like (issue 24: telling hair seen against the background from a
solid part the first matte guessed away).

    .venv/bin/python bench/hole_candidates.py --split tune --json holes.json

For every scene of the split (bench/composite_suite.py's scenes, plus the original photos of that
split with lasso seed 0), the smart band runs up to step 7; then the trimap is finished twice,
with every candidate kept (left as the first steps made it) and with every candidate filled
(definite foreground, as a fixed band would have it), and both are matted at full size. Per
candidate: the SAD that keeping it gains over filling it inside its own neighbourhood, the solid
foreground it turns into holes, and its features at the working resolution. The interactions
between neighbouring candidates are ignored (each is scored inside its own neighbourhood).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.composite_suite import SOLID, make_scene, scene_specs  # noqa: E402
from bench.rough_selection import rough_selection, run_engine  # noqa: E402
from drip_core.blocks import expand_blocks  # noqa: E402
from drip_core.eval.dataset import data_dir_or_exit, default_data_dir, load_sample, sample_names  # noqa: E402
from drip_core.trimaps import smart_band as sb  # noqa: E402


def steps_before_seven(image: np.ndarray, lasso: np.ndarray):
    """What step 7 sees: (working trimap, working selection, first alpha, sw, f, rows, cols)."""
    from drip_core.engines import refining_engine
    seen = {}
    original = sb._keep_the_interior_solid

    def capture(tri, inside, alpha, sw, p):
        seen.update(tri=tri.copy(), inside=inside, alpha=alpha, sw=sw)
        return original(tri, inside, alpha, sw, p)

    sb._keep_the_interior_solid = capture
    try:
        sb.smart_trimap(image.astype(np.float32) / 255.0, lasso, engine=refining_engine())
    finally:
        sb._keep_the_interior_solid = original
    f, _, (rows, cols) = sb._working_frame(lasso >= 128, sb.DEFAULT)
    return seen, f, rows, cols


def features(seen, img_small, lab, radius, mixed):
    """Per candidate 1..n (``radius``, ``mixed``: step 7's own figures of them): its look at the
    working resolution."""
    tri, inside, alpha, sw = seen["tri"], seen["inside"], seen["alpha"], seen["sw"]
    idx = np.arange(1, len(radius) + 1)
    grey = img_small.mean(axis=2)
    detail = np.abs(grey - ndimage.gaussian_filter(grey, 1.0))
    grad = np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))
    interior_detail = float(detail[inside].mean()) + 1e-6
    depth = ndimage.distance_transform_edt(inside) / sw
    mean = lambda x: np.asarray(ndimage.mean(x, lab, idx), float)  # noqa: E731
    return {
        "radius": radius.tolist(), "rim_mixed": mixed.tolist(),
        "area": (np.asarray(ndimage.sum(np.ones_like(lab), lab, idx)) / sw ** 2).tolist(),
        "alpha_mean": mean(alpha).tolist(),
        "alpha_std": np.asarray(ndimage.standard_deviation(alpha, lab, idx)).tolist(),
        "mixed_inside": mean((alpha > 0.05) & (alpha < 0.95)).tolist(),
        "detail": (mean(detail) / interior_detail).tolist(),
        "grad": mean(grad).tolist(),
        "depth": mean(depth).tolist(),
        "was_background": mean(tri == 0).tolist(),
    }


def score_candidates(image, gt, lasso) -> list[dict]:
    seen, f, rows, cols = steps_before_seven(image, lasso)
    if not seen or seen["alpha"] is None:
        return []
    tri, inside, alpha, sw = seen["tri"], seen["inside"], seen["alpha"], seen["sw"]
    lab, radius, mixed = sb._interior_holes(tri, inside, sb._interior(inside, sw, sb.DEFAULT), alpha, sw)
    n = len(radius)
    if not n:
        return []
    keep_all = sb.Params(hole_tiny=1e9)              # every candidate is evidence: kept
    fill_all = sb.Params(hole_tiny=-1.0, crisp_rim=-1.0)  # none is: filled
    alphas = {}
    for name, p in (("keep", keep_all), ("fill", fill_all)):
        small = sb._keep_the_interior_solid(tri, inside, alpha, sw, p)
        alphas[name] = run_engine(image, sb._full_size(small, f, (rows, cols), lasso >= 128))
    img_small = sb.reduce_image(image[rows, cols].astype(np.float32) / 255.0, f)
    feats = features(seen, img_small, lab, radius, mixed)
    # each candidate's neighbourhood at full size: the region, its rim and the erosion's reach
    reach = int(np.ceil(max(sb.DEFAULT.erode_min, sb.DEFAULT.erode * sw) + sb.RIM + 2))
    grown = ndimage.grey_dilation(lab, size=2 * reach + 1)
    full_lab = np.zeros(lasso.shape, np.int32)
    full_lab[rows, cols] = expand_blocks(grown, f, ((rows.stop - rows.start), (cols.stop - cols.start)))
    g = gt.astype(np.float32) / 255.0
    err = {k: np.abs(a - g) for k, a in alphas.items()}
    idx = np.arange(1, n + 1)
    gain = (np.asarray(ndimage.sum(err["fill"], full_lab, idx)) -
            np.asarray(ndimage.sum(err["keep"], full_lab, idx))) / 1000.0
    deep = ndimage.distance_transform_edt(lasso >= 128) > 15
    holes = np.asarray(ndimage.sum(deep & (gt >= SOLID) & (alphas["keep"] < 0.5), full_lab, idx))
    return [{"gain": float(gain[i]), "holes": int(holes[i]), **{k: v[i] for k, v in feats.items()}}
            for i in range(n)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--split", choices=("tune", "held"), default="tune")
    ap.add_argument("--json", required=True)
    ap.add_argument("--only", nargs="+")
    args = ap.parse_args(argv)
    data = str(data_dir_or_exit(args.data))
    names = sample_names(data)
    rows = []
    scenes = [s for s in scene_specs(names) if s.split == args.split]
    originals = [n for n in names if (int(n[2:]) % 2 == 1) == (args.split == "tune")]
    todo = [(s.key, lambda s=s: make_scene(data, s)) for s in scenes]
    todo += [(f"{n}:seed0", lambda n=n: _original(data, n)) for n in originals]
    for key, make in todo:
        if args.only and not any(o in key for o in args.only):
            continue
        image, gt, lasso = make()
        found = score_candidates(image, gt, lasso)
        rows += [{"scene": key, **c} for c in found]
        gain, holes = sum(c["gain"] for c in found), sum(c["holes"] for c in found)
        print(f"{key:<34} {len(found):4d} candidates, keeping all gains {gain:7.2f}, holes {holes}")
    Path(args.json).write_text(json.dumps(rows))
    return 0


def _original(data, name):
    smp = load_sample(data, name)
    return smp.image, smp.gt, rough_selection(smp.gt, 0)


if __name__ == "__main__":
    sys.exit(main())
