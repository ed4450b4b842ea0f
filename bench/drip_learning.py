#!/usr/bin/env python3
"""Does DRIP training learn? The shipped drip-train / drip-train-decoder on a tiny SD2-shaped
model, CPU, a few minutes.

    python bench/drip_learning.py [--stage1-steps 300] [--stage2-steps 150] [--vae-steps 300]
                                  [--vae-batch 8] [--threads 1] [--work DIR] [--json OUT.json]

Steps (drip_core.engines.drip.testing.learning_check): write 8 synthetic foregrounds (soft
ellipses over smooth colour fields) and 4 smooth backgrounds in the Composition-1k layout;
make_tiny_sd2; fit
its VAE as a plain autoencoder on composites / trimaps / foregrounds / alphas (a random VAE
cannot represent an alpha matte); drip-convert; score the untrained model; drip-train; score;
drip-train-decoder; score. Score = mean over the 8 training foregrounds composited on the
backgrounds (fixed 4-px trimap band) of the alpha SAD on the unknown region (/1000) and the
DRIP foreground SAD (alpha_gt-weighted, unknown pixels with alpha_gt > 0, /1000), 10
DPM-Solver++ steps, seed 0. Prints the figures and the ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage1-steps", type=int, default=300)
    ap.add_argument("--stage2-steps", type=int, default=150)
    ap.add_argument("--vae-steps", type=int, default=300)
    ap.add_argument("--vae-batch", type=int, default=8, help="foregrounds per VAE step (x4 images)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--work", help="keep the run here (default: a temporary folder)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)

    import torch

    from drip_core.engines.drip.testing import learning_check

    torch.set_num_threads(args.threads)
    t0, c0 = time.time(), time.process_time()

    def log(msg):
        print(f"[{time.time() - t0:7.1f} s] {msg}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        fig = learning_check(args.work or tmp, stage1_steps=args.stage1_steps,
                             stage2_steps=args.stage2_steps, vae_steps=args.vae_steps,
                             vae_batch=args.vae_batch, log=log)
    fig["cpu_seconds"] = round(time.process_time() - c0, 1)
    fig["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
    u, s1, s2 = fig["untrained"], fig["stage1"], fig["stage2"]
    alpha_ratio = u["alpha_sad"] / max(s1["alpha_sad"], 1e-9)
    fg_gain = 100 * (1 - s2["fg_sad"] / max(s1["fg_sad"], 1e-9))
    print(f"alpha SAD: untrained {u['alpha_sad']:.4f} -> drip-train {s1['alpha_sad']:.4f} "
          f"({alpha_ratio:.1f}x lower) -> drip-train-decoder {s2['alpha_sad']:.4f}")
    print(f"foreground SAD: untrained {u['fg_sad']:.4f} -> drip-train {s1['fg_sad']:.4f} -> "
          f"drip-train-decoder {s2['fg_sad']:.4f} ({fg_gain:.0f}% lower than stage 1)")
    print(f"wall {fig['seconds']} s, CPU {fig['cpu_seconds']} s, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores, peak RSS {fig['peak_rss_gib']} GiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
