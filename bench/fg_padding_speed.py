#!/usr/bin/env python3
"""Foreground padding speed (paper Alg. 2: 64 passes of a 13x13 Gaussian, written where alpha == 0)
on 512 x 512 crops, one CPU thread, as a data-loader worker runs it.

    python bench/fg_padding_speed.py [--size 512] [--repeat 5]

Times the torch reference (two depthwise convolutions per pass, the previous implementation)
and the numba kernel used by the loader, in the same run, on three crops: the alpha of a real
alphamatting.com image resized to the crop (when ../shared is present), a disc, and a crop with
no object at all (every pixel is padded). Prints min-of-N wall and CPU seconds, the CPU-time
speed-up and the largest difference.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def crops(size: int, rng) -> dict:
    from PIL import Image

    from drip_core.eval.dataset import default_data_dir

    yy, xx = np.mgrid[:size, :size]
    out = {"disc": (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (0.3 * size) ** 2).astype(np.float32),
           "no object": np.zeros((size, size), np.float32)}
    data = default_data_dir()
    if data is not None:
        gt = Image.open(data / "gt_training_lowres" / "GT04.png").convert("L")
        gt = gt.resize((size, size), Image.BILINEAR)
        out["GT04 alpha"] = np.asarray(gt, np.float32) / 255.0
    return out


def best(fn, repeat: int) -> tuple[float, float]:
    """Min-of-N wall and CPU (process) seconds; CPU time is what a loader worker pays and is
    less disturbed than wall time when other jobs share the cores."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import torch

    from drip_core.engines.drip.training.fg_padding import pad_foreground, pad_foreground_torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    fg = rng.random((args.size, args.size, 3), dtype=np.float32)
    t0 = time.perf_counter()
    pad_foreground(fg[:32, :32], np.zeros((32, 32), np.float32))
    print(f"numba first call (compile or load from cache): {time.perf_counter() - t0:.2f} s")
    print(f"{'crop':<12} {'padded %':>9} {'torch wall':>11} {'torch CPU':>10} {'numba wall':>11} "
          f"{'numba CPU':>10} {'speed-up':>9} {'max |diff|':>11}")
    for name, alpha in crops(args.size, rng).items():
        ref = pad_foreground_torch(fg, alpha)
        fast = pad_foreground(fg, alpha)
        t_ref = best(functools.partial(pad_foreground_torch, fg, alpha), max(1, args.repeat // 2))
        t_fast = best(functools.partial(pad_foreground, fg, alpha), args.repeat)
        print(f"{name:<12} {100 * (alpha <= 0).mean():9.1f} {t_ref[0]:11.3f} {t_ref[1]:10.3f} "
              f"{t_fast[0]:11.3f} {t_fast[1]:10.3f} {t_ref[1] / t_fast[1]:9.1f} "
              f"{np.abs(ref - fast).max():11.2e}")
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
