"""Before / after pictures of the smart band (issue 24) on two scikit-image photos (public domain).

    PYTHONPATH=. python bench/smart_band_pictures.py [--out docs/images]

The astronaut (data.astronaut(), a rough polygon around the woman and the helmet she holds) and the
cat (data.chelsea(), a rough polygon around its head), default settings: photo with the lasso in
red | alpha with smart_band.V1 (before issue 24) | alpha with today's smart band | alpha with a
fixed 12-px band, at half size.  Writes smart-band-astronaut.png and smart-band-cat.png and prints, per photo,
how much of each alpha is below 0.5 deeper than 15 px inside the lasso.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# rough polygons (x, y), as a user would click them
ASTRONAUT = [(175, 18), (235, 8), (290, 30), (305, 95), (300, 150), (335, 240), (358, 300), (365, 338),
             (430, 338), (485, 355), (508, 410), (511, 511), (15, 511), (18, 400), (28, 300), (60, 245),
             (110, 200), (150, 150), (152, 70)]
CAT = [(0, 0), (400, 0), (392, 45), (372, 110), (358, 200), (330, 258), (302, 299), (0, 299)]


def polygon_mask(shape, points) -> np.ndarray:
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=255)
    return np.asarray(canvas)


def alphas(image: np.ndarray, lasso: np.ndarray) -> dict:
    from drip_core.engines import get_engine, refining_engine
    from drip_core.trimaps import from_selection
    from drip_core.trimaps.smart_band import DEFAULT, V1, smart_trimap
    engine = get_engine("classical")
    out = {}
    for label, params in (("before", V1), ("after", DEFAULT)):
        tri = smart_trimap(image, lasso, params=params, engine=refining_engine())
        out[label] = engine.matte(image, tri).alpha
    out["band12"] = engine.matte(image, from_selection(lasso, 12)).alpha
    return out


def picture(image: np.ndarray, lasso: np.ndarray, results: dict) -> Image.Image:
    outline = lasso ^ ndimage.binary_erosion(lasso >= 128, iterations=2) * 255
    shown = image.copy()
    shown[outline > 0] = (255, 0, 0)
    panels = [shown] + [np.repeat((np.clip(a, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
                        for a in (results["before"], results["after"], results["band12"])]
    gap = np.full((image.shape[0], 6, 3), 255, np.uint8)
    row = [p for panel in panels for p in (panel, gap)][:-1]
    whole = Image.fromarray(np.concatenate(row, axis=1))
    return whole.resize((whole.width // 2, whole.height // 2), Image.LANCZOS)   # light enough for docs


def main(argv=None) -> int:
    import skimage.data
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/images")
    args = ap.parse_args(argv)
    for name, photo, points in (("astronaut", skimage.data.astronaut(), ASTRONAUT),
                                ("cat", skimage.data.chelsea(), CAT)):
        lasso = polygon_mask(photo.shape, points)
        results = alphas(photo, lasso)
        deep = ndimage.distance_transform_edt(lasso >= 128) > 15
        print(name + ": below 0.5 deeper than 15 px inside the lasso: "
              + ", ".join(f"{k} {int(np.count_nonzero(deep & (a < 0.5)))} px" for k, a in results.items()))
        picture(photo, lasso, results).save(Path(args.out) / f"smart-band-{name}.png", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
