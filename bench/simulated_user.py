"""A simulated user refining a matte through a real server: a rough lasso, then brush strokes.

    python -m bench.simulated_user                       # 27 photos, seed 0, 5 strokes
    python -m bench.simulated_user --seeds 3 --strokes 5 --json out.json
    python -m bench.simulated_user --photos GT04 GT13    # a few photos

For each alphamatting.com photo and seed: a lasso-like selection (bench/rough_selection.py), the
first run as GIMP sends it (selection + smart band, the trimap coming back), then ``--strokes``
brush strokes, each a rerun with the painted trimap. A careful user paints each stroke where the
error a correct hint can remove is largest: a disc of ``--radius`` px around the maximum of the
alpha error on pixels whose trimap value is not yet right, averaged over that disc; within the
disc it paints white on true foreground (ground truth >= 250), black on true background (<= 5)
or grey on the mixed pixels, whichever class holds most of that error, and only on pixels of
that class (a correct hint). Reruns go through one real
``drip-server`` process with its image cache, exactly as the Python client and drip-matte do.

The brush (``--brush``): ``fixed`` paints that ``--radius`` disc. ``blob`` (the default since
issue 23's engine part; the rule was fixed before any figure was measured with it) picks the
brush as a photographer does, from the size of the wrong area under it: the "blob" is the
pixels of the chosen class, not yet so in the trimap, whose alpha is visibly wrong (error >=
``--blob-error``/255), connected to the ``--radius`` disc; the brush is the largest disc inside
the blob (its deepest point, radius its distance to the blob's edge) when that is larger than
``--radius``, at most ``--max-radius``; else the ``--radius`` disc as before. It still paints only
the chosen class's pixels, so every hint stays correct.

Printed per photo and summarised: whole-image SAD (sum |alpha - gt| / 255 / 1000) after each
stroke; strokes that raised it by more than ``--hurt`` (the issue's 0.2); the largest alpha
change beyond ``--far`` px of the stroke (in 1/255); each rerun's kind (local / full) and time
end to end in the client.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from bench.refine_rerun import start_server
from bench.rough_selection import rough_selection
from drip_core.eval.dataset import default_data_dir, load_sample, sample_names
from drip_core.trimaps import BACKGROUND, FOREGROUND, UNKNOWN

KINDS = {"white": FOREGROUND, "black": BACKGROUND, "grey": UNKNOWN}


def whole_sad(alpha_u8: np.ndarray, gt: np.ndarray) -> float:
    return float(np.abs(alpha_u8.astype(np.int32) - gt.astype(np.int32)).sum() / 255 / 1000)


def disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (yy * yy + xx * xx <= radius * radius).astype(np.float32)


def correct_labels(gt: np.ndarray) -> np.ndarray:
    """What a careful user would paint on each pixel: white on true foreground (ground truth >= 250),
    black on true background (<= 5), grey on the mixed pixels."""
    return np.where(gt >= 250, FOREGROUND, np.where(gt <= 5, BACKGROUND, UNKNOWN)).astype(np.uint8)


def next_stroke(alpha_u8: np.ndarray, gt: np.ndarray, trimap: np.ndarray, radius: int,
                brush: str = "fixed", max_radius: int = 40, blob_error: int = 64):
    """(kind, the pixels the careful user paints) where a correct hint can remove the most error,
    or None: the disc around the largest sum of error on pixels whose trimap value is not yet
    their correct label, painted with the label that holds most of that error, on its pixels only
    (``brush``: the module docstring)."""
    labels = correct_labels(gt)
    fixable = np.abs(alpha_u8.astype(np.float32) - gt.astype(np.float32)) * (trimap != labels)
    if not fixable.any():
        return None
    cy, cx = np.unravel_index(np.argmax(ndimage.convolve(fixable, disc(radius), mode="constant")), gt.shape)
    h, w = gt.shape
    yy, xx = np.ogrid[:h, :w]
    inside = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius) & (trimap != labels)
    kind = max(KINDS, key=lambda k: float(fixable[inside & (labels == KINDS[k])].sum()))
    if brush == "blob":
        inside = blob_brush(fixable, labels == KINDS[kind], inside, radius, max_radius, blob_error) & (
            trimap != labels)
    painted = inside & (labels == KINDS[kind])
    return (kind, painted) if painted.any() else None


def blob_brush(fixable, of_kind, disc_at, radius: int, max_radius: int, blob_error: int) -> np.ndarray:
    """The pixels under the brush a photographer picks for the wrong area under ``disc_at``: the
    largest disc inside that area (radius at most ``max_radius``), or ``disc_at`` itself when
    that disc would be no larger than ``radius``."""
    wrong = of_kind & (fixable >= blob_error)
    parts, _ = ndimage.label(wrong, np.ones((3, 3), int))
    touched = np.unique(parts[disc_at & wrong])
    blob = np.isin(parts, touched[touched > 0])
    if not blob.any():
        return disc_at
    depth = ndimage.distance_transform_edt(blob)
    cy, cx = np.unravel_index(np.argmax(depth), depth.shape)
    r = min(float(depth[cy, cx]), max_radius)
    if r <= radius:
        return disc_at
    yy, xx = np.ogrid[:fixable.shape[0], :fixable.shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def refine(client, image, gt, selection, strokes: int, radius: int, far: int, brush: str = "fixed",
           max_radius: int = 40, blob_error: int = 64) -> dict:
    """One photo's session: the first run, then the strokes; its figures."""
    t0 = time.perf_counter()
    _, alpha, info = client.matte(image, selection, engine="classical", trimap_source="selection_band",
                                  want_trimap=True, return_info=True)
    row = {"first_s": round(time.perf_counter() - t0, 3), "sad": [whole_sad(alpha, gt)], "strokes": []}
    trimap = info["trimap"].copy()
    for _ in range(strokes):
        stroke = next_stroke(alpha, gt, trimap, radius, brush, max_radius, blob_error)
        if stroke is None:
            break
        kind, painted = stroke
        trimap[painted] = KINDS[kind]
        t0 = time.perf_counter()
        _, new_alpha, info = client.matte(image, trimap, engine="classical", return_info=True)
        seconds = time.perf_counter() - t0
        beyond = ndimage.distance_transform_edt(~painted) > far
        far_change = int(np.abs(new_alpha.astype(np.int32) - alpha.astype(np.int32))[beyond].max(initial=0))
        alpha = new_alpha
        row["sad"].append(whole_sad(alpha, gt))
        row["strokes"].append({"kind": kind, "pixels": int(painted.sum()), "rerun": info["rerun"],
                               "seconds": round(seconds, 3), "far_change": far_change,
                               "image_sent": client.connection.image_sent})
    return row


def summarise(rows: dict, hurt: float) -> dict:
    """Mean and median SAD after each stroke, strokes that hurt, the largest far change, rerun times."""
    curves = [r["sad"] for r in rows.values()]
    n = min(len(c) for c in curves)
    strokes = [s | {"photo": k, "delta": r["sad"][i + 1] - r["sad"][i]}
               for k, r in rows.items() for i, s in enumerate(r["strokes"])]
    seconds = [s["seconds"] for s in strokes]
    return {"mean": [round(float(np.mean([c[i] for c in curves])), 3) for i in range(n)],
            "median": [round(float(np.median([c[i] for c in curves])), 3) for i in range(n)],
            "hurting": [(s["photo"], s["kind"], round(s["delta"], 3)) for s in strokes if s["delta"] > hurt],
            "max_far_change": max((s["far_change"] for s in strokes), default=0),
            "median_rerun_s": round(float(np.median(seconds)), 3) if seconds else None,
            "reruns": {kind: sum(s["rerun"] == kind for s in strokes)
                       for kind in ("local", "full", "unchanged")},
            "images_sent_on_reruns": sum(bool(s["image_sent"]) for s in strokes)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="alphamatting low-res folder (default: ../shared/...)")
    p.add_argument("--photos", nargs="*", help="photo names (default: all 27)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--strokes", type=int, default=5)
    p.add_argument("--radius", type=int, default=10, help="brush radius, px (the smallest with --brush blob)")
    p.add_argument("--brush", choices=("blob", "fixed"), default="blob",
                   help="blob: the brush fits the wrong area under it (module docstring); fixed: --radius")
    p.add_argument("--max-radius", type=int, default=40, help="the largest brush radius, px (--brush blob)")
    p.add_argument("--blob-error", type=int, default=64, help="visibly wrong: alpha error >= this / 255")
    p.add_argument("--far", type=int, default=100, help="'far from the stroke': beyond this many px")
    p.add_argument("--hurt", type=float, default=0.2, help="a stroke that raises SAD by more hurts")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args(argv)
    data = Path(args.data) if args.data else default_data_dir()
    names = args.photos or sample_names(data)
    from drip_core.client import connect
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc, disc_file, _ = start_server(Path(tmp), 4096)
        try:
            with connect(str(disc_file), spawn=False) as client:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    for name in names:
                        smp = load_sample(data, name)
                        row = refine(client, smp.image, smp.gt, rough_selection(smp.gt, seed), args.strokes,
                                     args.radius, args.far, args.brush, args.max_radius, args.blob_error)
                        rows[f"{name}/{seed}"] = row
                        print(f"{name} seed {seed}: SAD " + " -> ".join(f"{v:.2f}" for v in row["sad"])
                              + "  reruns " + ", ".join(f"{s['kind']} {s['rerun']} {s['seconds']:.2f}s "
                                                        f"far {s['far_change']}" for s in row["strokes"]),
                              flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    summary = summarise(rows, args.hurt)
    print(json.dumps(summary, indent=1))
    if args.json:
        record = {"args": vars(args), "rows": rows, "summary": summary}
        Path(args.json).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
