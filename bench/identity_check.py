"""Fingerprints of the classical engine's results, to show that a refactor changed no pixel.

    python -m bench.identity_check --out before.json     # on the old tree
    python -m bench.identity_check --out after.json      # on the new tree
    python -m bench.identity_check --compare before.json after.json

What it fingerprints (sha256 of the exact bytes):
- the demo scene's alpha and foreground, as ``./dev.sh demo`` computes them (8 bits);
- the classical engine on the 27 alphamatting.com photos with both expert trimaps (float32
  alpha and foreground of the whole image), read from ../shared at run time;
- the smart band's trimap from a simulated lasso (bench/rough_selection.py, seed 0) on
  ``--smart`` photos, and the matte of that trimap;
- a first run and three local reruns (grey, white, black brush discs) through a real
  ``drip-server`` process with its image cache, on one photo.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alphamatting_lowres"


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def load(name: str, trimap_set: str | None = None):
    from PIL import Image
    image = np.asarray(Image.open(DATA / "input_training_lowres" / f"{name}.png").convert("RGB"))
    gt = np.asarray(Image.open(DATA / "gt_training_lowres" / f"{name}.png").convert("L"))
    trimap = None
    if trimap_set:
        trimap = np.asarray(Image.open(DATA / "trimap_training_lowres" / trimap_set / f"{name}.png")
                            .convert("L"))
    return image, gt, trimap


def build_trimap(source, mask, band, image):
    try:
        from drip_core.engines import refining_engine
        from drip_core.trimaps import build
    except ImportError:  # the layout before architecture v3: the smart band found its engine itself
        from drip_core.trimap import build
        return build(source, mask, band, image.shape, image)
    return build(source, mask, band, image.shape, image, engine=refining_engine())


def demo() -> dict:
    from drip_core.demo_scene import make_scene
    from drip_core.engines import get_engine
    image, trimap, _, _ = make_scene()
    m = get_engine("classical").matte(image, trimap, dtype=image.dtype)
    return {"demo": digest(m.alpha, m.foreground)}


def expert(names) -> dict:
    from drip_core.engines import get_engine
    out = {}
    for name in names:
        for t in ("Trimap1", "Trimap2"):
            image, _, trimap = load(name, t)
            m = get_engine("classical").matte(image, trimap)
            out[f"{name}/{t}"] = digest(m.alpha, m.foreground)
            print(name, t, out[f"{name}/{t}"], file=sys.stderr, flush=True)
    return out


def smart(names) -> dict:
    from bench.rough_selection import rough_selection
    from drip_core.engines import get_engine
    out = {}
    for name in names:
        image, gt, _ = load(name)
        selection = rough_selection(gt, 0)
        trimap = build_trimap("selection_band", selection, "auto", image)
        m = get_engine("classical").matte(image, trimap)
        out[f"{name}/smart"] = digest(trimap, m.alpha, m.foreground)
        print(name, "smart", out[f"{name}/smart"], file=sys.stderr, flush=True)
    return out


def reruns(name: str = "GT13") -> dict:
    from bench.refine_rerun import disc, edit_centre, start_server
    from drip_core.client import connect
    image, _, trimap = load(name, "Trimap1")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc, disc_file, _ = start_server(Path(tmp), 2048)
        try:
            with connect(str(disc_file), spawn=False) as client:
                fg, alpha = client.matte(image, trimap, engine="classical")
                out[f"{name}/server-first"] = digest(fg, alpha)
                centre = edit_centre(trimap)
                edited = trimap.copy()
                for label, value in (("grey", 128), ("white", 255), ("black", 0)):
                    edited[disc(trimap.shape, centre, 20)] = value
                    fg, alpha = client.matte(image, edited, engine="classical")
                    out[f"{name}/rerun-{label}"] = digest(fg, alpha)
                status = client.connection.request({"type": "status"})
                out[f"{name}/images_from_cache"] = status.get("images_from_cache")
        finally:
            proc.terminate()
            proc.wait(30)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", help="write the fingerprints here (JSON)")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    p.add_argument("--photos", type=int, default=27, help="how many alphamatting photos (expert trimaps)")
    p.add_argument("--smart", nargs="*", default=["GT02", "GT04", "GT16", "GT24"])
    args = p.parse_args(argv)
    if args.compare:
        before, after = (json.loads(Path(f).read_text()) for f in args.compare)
        differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        print(f"{len(before)} fingerprints before, {len(after)} after, {len(differ)} differ")
        for k in differ:
            print(f"  {k}: {before.get(k)} -> {after.get(k)}")
        return 1 if differ else 0
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    out = demo()
    if DATA.is_dir():
        out.update(reruns())
        out.update(smart(args.smart))
        out.update(expert([f"GT{i:02d}" for i in range(1, args.photos + 1)]))
    else:
        print(f"no {DATA}: only the demo is fingerprinted", file=sys.stderr)
    text = json.dumps(out, indent=1, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
