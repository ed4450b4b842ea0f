"""How fast the GIMP dialog's preview answers, through a real server (issue 25: "a preview update
<= 1 s for an 800-px layer").

The plug-in reads the region reduced to dialog_rules.PREVIEW_LONGEST pixels a side and sends a
preview job; a change of the edge controls or of the background re-sends only the mask (the
server keeps the copy) and is served from the matte it holds. The baseline, measured in the same
run, is the full-size run of the same job that OK starts.

    .venv/bin/python bench/preview_speed.py [--width 800] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gimp_plugin" / "drip_matting"))
import dialog_rules as rules  # noqa: E402

from drip_core.client import connect  # noqa: E402
from drip_core.demo_scene import make_scene  # noqa: E402
from drip_protocol import EdgeSettings  # noqa: E402


def reduced(image, mask, scale):
    h, w = mask.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.BOX))
    return small, np.asarray(Image.fromarray(mask).resize(size, Image.BOX))


def timed(call):
    started = time.perf_counter()
    out = call()
    return time.perf_counter() - started, out


def one_round(c, image, selection, small, small_sel, scale, shift):
    edge = EdgeSettings(shift=shift).scaled(scale)
    kinds = {}
    kinds["preview, first"], _ = timed(lambda: c.matte(small, small_sel, engine="classical",
                                                       trimap_source="selection_band",
                                                       preview="checkerboard"))
    kinds["preview, edge change"], _ = timed(lambda: c.matte(small, small_sel, engine="classical",
                                                             trimap_source="selection_band",
                                                             preview="checkerboard", edge=edge))
    kinds["preview, background change"], _ = timed(lambda: c.matte(small, small_sel, engine="classical",
                                                                   trimap_source="selection_band",
                                                                   preview="black", edge=edge))
    kinds["full-size run (OK)"], _ = timed(lambda: c.matte(image, selection, engine="classical",
                                                           trimap_source="selection_band"))
    return kinds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    height = args.width * 2 // 3
    image, _, alpha = make_scene(args.width, height)[:3]
    selection = np.where(alpha >= 0.5, 255, 0).astype(np.uint8)
    scale = rules.preview_scale(args.width, height)
    small, small_sel = reduced(image, selection, scale)
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            connect(str(Path(tmp) / "server.json"), server_args=["--engine", "classical"]) as c:
        for i in range(args.repeats):
            # new images each round (one grey level off): the first runs are really first runs
            small_i, image_i = (np.clip(a.astype(np.int16) + i + 1, 0, 255).astype(np.uint8)
                                for a in (small, image))
            for kind, seconds in one_round(c, image_i, selection, small_i, small_sel, scale, 4 + i).items():
                figures.setdefault(kind, []).append(seconds)
    print(f"{args.width}x{height} layer, preview copy {small.shape[1]}x{small.shape[0]} "
          f"(scale {scale:.2f}), {args.repeats} rounds, classical engine, one local server")
    base = statistics.median(figures["full-size run (OK)"])
    for kind, values in figures.items():
        med = statistics.median(values)
        print(f"  {kind:28s} median {med:6.3f} s  (min {min(values):.3f}, max {max(values):.3f})  "
              f"{med / base:5.2f} x the full-size run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
