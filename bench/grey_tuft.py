"""Issue 12 check: GT24's tuft painted solid grey on a default trimap must get better, not worse.

    PYTHONPATH=. python bench/grey_tuft.py [--seeds 2]

The photographer's refine step from the issue: on GT24 (a plush toy with a black tuft of hair on
top) the user paints the tuft region solid grey (unknown) over the default trimap and runs again.
A large unknown region with no definite foreground inside must get the classical-v2 engine's
colour prior, not a semi-transparent haze.

The tuft is found from the ground-truth alpha: the dark (luminance < 0.25) pixels with alpha > 0
in the top quarter of the object's box, their largest connected component; the painted region is
that component's box widened by 15 % of its size each way (a brush blob, not a trace of the
hairs).  The default trimap is the smart band of the simulated rough selection
(bench/rough_selection.py) for each seed.  Prints whole-image SAD and SAD inside the painted
region (/ 1000), before and after, and the box's error split into haze on background (GT 0),
lost opacity (GT 255) and the hair itself (GT between).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rough_selection import lasso_seed, rough_selection, run_engine, whole_image_sad  # noqa: E402
from drip_core.engines import refining_engine  # noqa: E402
from drip_core.eval.dataset import data_dir_or_exit, default_data_dir, load_sample  # noqa: E402
from drip_core.eval.metrics import to_uint8  # noqa: E402
from drip_core.trimaps import UNKNOWN  # noqa: E402
from drip_core.trimaps.smart_band import smart_trimap  # noqa: E402


def tuft_region(image: np.ndarray, gt: np.ndarray) -> tuple[slice, slice]:
    """The painted box around the dark hair on top of the object (see the module docstring)."""
    obj = gt > 0
    rows = np.nonzero(obj.any(axis=1))[0]
    top, bottom = rows[0], rows[-1]
    luminance = image.astype(np.float32).mean(axis=2) / 255.0
    dark = obj & (luminance < 0.25)
    dark[top + (bottom - top) // 4:] = False
    lab, n = ndimage.label(ndimage.binary_closing(dark, np.ones((5, 5), bool)))
    if n == 0:
        raise SystemExit("no dark region on top of the object")
    biggest = 1 + int(np.argmax(ndimage.sum(np.ones_like(lab), lab, np.arange(1, n + 1))))
    ys, xs = np.nonzero(lab == biggest)
    my, mx = int(0.15 * (np.ptp(ys) + 1)), int(0.15 * (np.ptp(xs) + 1))
    h, w = gt.shape
    return (slice(max(0, ys.min() - my), min(h, ys.max() + my + 1)),
            slice(max(0, xs.min() - mx), min(w, xs.max() + mx + 1)))


def split_in_box(alpha: np.ndarray, gt: np.ndarray) -> str:
    """Where the box's error is: haze on background (GT 0), lost opacity (GT 255), the hair (between)."""
    e = np.abs(to_uint8(alpha).astype(np.float64) - gt) / 255 / 1000
    return (f"background {e[gt == 0].sum():.2f} / opaque {e[gt == 255].sum():.2f} / "
            f"hair {e[(gt > 0) & (gt < 255)].sum():.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--name", default="GT24")
    args = ap.parse_args(argv)
    args.data = data_dir_or_exit(args.data)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    smp = load_sample(args.data, args.name)
    box = tuft_region(smp.image, smp.gt)
    print(f"{args.name} tuft box: rows {box[0].start}-{box[0].stop}, columns {box[1].start}-{box[1].stop}")
    for seed in range(args.seeds):
        sel = rough_selection(smp.gt, lasso_seed(args.name, seed))
        tri = smart_trimap(smp.image.astype(np.float32) / 255.0, sel, engine=refining_engine())
        painted = tri.copy()
        painted[box] = UNKNOWN
        before, after = run_engine(smp.image, tri), run_engine(smp.image, painted)
        print(f"seed {seed}: whole-image SAD {whole_image_sad(before, smp.gt):.2f} -> "
              f"{whole_image_sad(after, smp.gt):.2f}; "
              f"in the painted box {whole_image_sad(before[box], smp.gt[box]):.2f} -> "
              f"{whole_image_sad(after[box], smp.gt[box]):.2f}; foreground in the box before "
              f"{np.mean(tri[box] == 255) * 100:.0f} %")
        print(f"    in the box, before: {split_in_box(before[box], smp.gt[box])}; "
              f"after: {split_in_box(after[box], smp.gt[box])}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
