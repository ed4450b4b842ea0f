"""Where the rough-lasso error lies on the alphamatting photos (issue 24's diagnosis).

    .venv/bin/python bench/error_breakdown.py [--seeds 1] [--method smart|band12|expert1|expert2]
                                              [--images GT04 GT26] [--oracle]

For each photo and seed: the lasso of bench/rough_selection.py (same seeds), the method's trimap,
the classical engine, and drip_core.eval.breakdown's split of the whole-image SAD / 1000: definite
foreground / background the truth disagrees with, unknown pixels by their truth, and the signed
error of the mixed unknown pixels by distance to definite background. ``--oracle`` also mattes the
trimap with its wrong definite foreground made unknown (with_true_foreground): the most a better
foreground in the trimap could give. Means and medians per split: odd photos (the tuning half)
and even photos (held out).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rough_selection import lasso_seed, rough_selection, run_engine, trimap_for  # noqa: E402
from drip_core.eval.breakdown import error_breakdown, with_true_foreground  # noqa: E402
from drip_core.eval.dataset import data_dir_or_exit, default_data_dir, load_sample, sample_names  # noqa: E402

SHOWN = ("sad", "known_fg", "known_bg", "unknown_bg", "unknown_fg", "unknown_mixed")


def photo_figures(data, name: str, seeds, method: str, oracle: bool) -> dict[str, float]:
    """The breakdown of one photo, averaged over the lasso seeds (and the oracle's SAD)."""
    smp = load_sample(data, name)
    rows = []
    for seed in seeds:
        lasso = rough_selection(smp.gt, lasso_seed(name, seed))
        trimap = trimap_for(method, smp.image, lasso, name, data)
        row = error_breakdown(run_engine(smp.image, trimap), smp.gt, trimap)
        if oracle:
            fixed = with_true_foreground(trimap, smp.gt)
            row["oracle"] = error_breakdown(run_engine(smp.image, fixed), smp.gt, fixed)["sad"]
        rows.append(row)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def summary(label: str, figures: list[dict[str, float]]) -> None:
    keys = [k for k in figures[0] if k in SHOWN or k == "oracle" or k.startswith(("over_", "under_"))]
    print(f"{label:<16}" + " ".join(f"{k}={np.mean([f[k] for f in figures]):.2f}" for k in keys))
    medians = ("sad", "oracle")
    print(f"{'':<16}" + " ".join(f"median {k}={np.median([f[k] for f in figures]):.2f}"
                                 for k in medians if k in figures[0]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--method", default="smart", choices=("band12", "smart", "expert1", "expert2"))
    ap.add_argument("--images", nargs="+", help="only these photos")
    ap.add_argument("--oracle", action="store_true",
                    help="also matte with the wrong definite foreground unset")
    args = ap.parse_args(argv)
    data = data_dir_or_exit(args.data)
    names = args.images or sample_names(data)
    figures = {}
    print(f"method {args.method}, seeds 0..{args.seeds - 1}; SAD / 1000 by where the error lies")
    for name in names:
        figures[name] = photo_figures(data, name, range(args.seeds), args.method, args.oracle)
        print(f"{name:<6}" + " ".join(f"{k}={figures[name][k]:.2f}" for k in SHOWN + ("oracle",)
                                      if k in figures[name]), flush=True)
    for label, odd in (("odd (tuning)", 1), ("even (held out)", 0)):
        chosen = [f for n, f in figures.items() if int(n[2:]) % 2 == odd]
        if chosen:
            summary(label, chosen)
    summary("all", list(figures.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
