"""Large crops in tiles: the unknown band of a big photo is cut into TILE x TILE cores, each
solved with MARGIN pixels of its surroundings, two at a time.

Why: every stage's memory follows the pixels it is given, so a 27-megapixel layer with a
wide band would peak at several copies of the band's per-pixel data at once; tiles bound
that to a tile's worth per worker, and independent tiles keep both cores busy (NumPy,
SciPy's sparse products and k-d tree searches release the GIL). The matting Laplacian's
influence and the K-to-U searches are local, so a core that sees MARGIN pixels around it
gets nearly the alpha of a whole-crop solve (bench/large_photo.py compares the SAD).

Only tiles with unknown pixels are visited. A tile whose surroundings lack known foreground
or background takes a wider margin (doubling) until both are there.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import numpy as np

from ....boxes import widen
from ....errors import Cancelled
from ....trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN

TILE = 1024             # core side in pixels
MARGIN = 64             # context around each core
TILED_ABOVE = 6_000_000  # crops larger than this (pixels) are solved in tiles
WORKERS = max(1, min(2, os.cpu_count() or 1))


def tile_boxes(unknown: np.ndarray, tile: int | None = None) -> list[tuple[slice, slice]]:
    """Core boxes of the tile grid (TILE unless given) that hold unknown pixels."""
    tile = tile or TILE
    h, w = unknown.shape
    ys, xs = np.arange(0, h, tile), np.arange(0, w, tile)
    occupied = np.logical_or.reduceat(np.logical_or.reduceat(unknown, ys, axis=0), xs, axis=1)
    return [(slice(int(ys[i]), min(int(ys[i]) + tile, h)), slice(int(xs[j]), min(int(xs[j]) + tile, w)))
            for i, j in zip(*np.nonzero(occupied))]


def context_box(trimap: np.ndarray, core: tuple[slice, slice],
                margin: int | None = None) -> tuple[slice, slice]:
    """The core widened by ``margin`` (MARGIN unless given; doubled until it holds known foreground
    and background)."""
    margin = margin or MARGIN
    h, w = trimap.shape
    while True:
        box = widen(core, margin, trimap.shape)
        sub = trimap[box]
        if ((sub == FOREGROUND).any() and (sub == BACKGROUND).any()) or (box[0].stop - box[0].start == h and
                                                           box[1].stop - box[1].start == w):
            return box
        margin *= 2


def plan(trimap: np.ndarray) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """(core, context box) of every tile with unknown pixels: the boxes every pass over the
    tiles shares (a first pass's per-tile results stay valid in the next)."""
    return [(core, context_box(trimap, core)) for core in tile_boxes(trimap == UNKNOWN)]


def run_tiles(weights: list[int], work, progress, check_cancel, workers: int | None = None) -> list:
    """``work(i, report, cancelled)`` for every tile i, ``workers`` (WORKERS) at a time; returns
    their results in order. ``progress(fraction)`` (tiles weighted by ``weights``) and
    ``check_cancel()`` are called from this thread only."""
    total = float(sum(weights)) or 1.0
    done = [0.0] * len(weights)
    stop = threading.Event()

    def one(i):
        def report(f):
            done[i] = f

        def cancelled():
            if stop.is_set():
                raise Cancelled()

        out = work(i, report, cancelled)
        done[i] = 1.0
        return out

    results = [None] * len(weights)
    with ThreadPoolExecutor(max_workers=workers or WORKERS) as pool:
        pending = {pool.submit(one, i): i for i in range(len(weights))}
        try:
            while pending:
                finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for f in finished:
                    results[pending.pop(f)] = f.result()
                progress(sum(d * wt for d, wt in zip(done, weights)) / total)
                check_cancel()
        except BaseException:
            stop.set()
            for f in pending:
                f.cancel()
            raise
    return results


def solve_tiled(image: np.ndarray, trimap: np.ndarray, solve, progress, check_cancel,
                workers: int | None = None, tiles: list | None = None):
    """Runs ``solve(i, image_tile, trimap_tile, report, check_cancel) -> (alpha, foreground)`` on
    each tile i of ``tiles`` (``plan(trimap)`` unless given; ``image_tile`` a copy of the tile's
    image with its context: the foreground is written into it; alpha float H x W, foreground
    H x W x 3) and returns (flat indices, alpha values, foreground colours) of the crop's
    unknown pixels."""
    unknown = trimap == UNKNOWN
    tiles = plan(trimap) if tiles is None else tiles
    w = trimap.shape[1]

    def one(i, report, cancelled):
        core, box = tiles[i]
        alpha, fg = solve(i, np.array(image[box]), trimap[box], report, cancelled)
        # the core's unknown pixels, in tile and in crop coordinates
        oy, ox = core[0].start - box[0].start, core[1].start - box[1].start
        ys, xs = np.nonzero(unknown[core])
        return ((ys + core[0].start) * w + xs + core[1].start, alpha[ys + oy, xs + ox].astype(np.float32),
                fg[ys + oy, xs + ox].astype(np.float32))

    weights = [int(np.count_nonzero(unknown[core])) for core, _ in tiles]
    results = run_tiles(weights, one, progress, check_cancel, workers)
    idx = np.concatenate([r[0] for r in results])
    return idx, np.concatenate([r[1] for r in results]), np.concatenate([r[2] for r in results])


def needs_tiles(shape: tuple[int, int]) -> bool:
    """Whether a crop of this shape is solved in tiles."""
    return shape[0] * shape[1] > TILED_ABOVE and max(shape) > TILE + 2 * MARGIN

