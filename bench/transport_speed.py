"""Transport overhead: a large layer's round trip through client, protocol and server.

Measures, for a real server process on loopback, the wall time of Client.matte() minus the
engine's own time (reported by the server), i.e. everything the plumbing adds: encoding,
socket transfer both ways, decoding, trimap building and result conversion.

    .venv/bin/python bench/transport_speed.py [--megapixels 24] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drip_core.client import connect  # noqa: E402


def make_layer(megapixels: float):
    """A photo-sized layer with a small unknown band, so the engine's share stays small."""
    h = int((megapixels * 1e6 / 1.5) ** 0.5)
    w = int(h * 1.5)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    selection = np.zeros((h, w), np.uint8)
    cy, cx = h // 2, w // 2
    selection[cy - 150:cy + 150, cx - 200:cx + 200] = 255
    return image, selection


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--megapixels", type=float, default=24)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    image, selection = make_layer(args.megapixels)
    h, w = selection.shape
    with tempfile.TemporaryDirectory() as tmp:
        disc = os.path.join(tmp, "server.json")
        proc = subprocess.Popen([sys.executable, "-m", "drip_core.server", "--discovery-file", disc,
                                 "--log-file", os.path.join(tmp, "log")], cwd=REPO)
        try:
            while not os.path.exists(disc):
                time.sleep(0.05)
            with connect(disc, spawn=False) as client:
                # Warm-up on a small crop (engine start-up is not transport).
                client.matte(image[:300, :300], np.where(selection[:300, :300] > 0, 255, 0).astype(np.uint8),
                             engine="classical", trimap_source="selection_band", band_radius=4) \
                    if selection[:300, :300].any() else None
                rows = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    _, _, info = client.matte(image, selection, engine="classical",
                                              trimap_source="selection_band", band_radius=8, return_info=True)
                    total = time.perf_counter() - t0
                    rows.append((total, info["engine_seconds"], info["seconds"]))
        finally:
            proc.terminate()
            proc.wait()
    print(f"layer {w}x{h} = {w * h / 1e6:.1f} MP, rgb8 in ({w * h * 4 / 1e6:.0f} MB with the mask), "
          f"rgb8+y8 out ({w * h * 4 / 1e6:.0f} MB)")
    print(f"{'round trip s':>13} {'engine s':>9} {'server job s':>13} {'overhead s':>11}")
    for total, eng, job in rows:
        print(f"{total:13.3f} {eng:9.3f} {job:13.3f} {total - eng:11.3f}")
    best = min(r[0] - r[1] for r in rows)
    print(f"best overhead beyond the engine: {best:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
