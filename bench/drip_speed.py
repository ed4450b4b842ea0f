#!/usr/bin/env python3
"""DRIP speed benchmark with random weights (no model download, no trained weights needed).

    python bench/drip_speed.py --random-weights                 # GPU: full SD2-size parts, fp16,
                                                                #      512 / 1024 / 2048 px, 10 steps
    python bench/drip_speed.py --random-weights --tiny          # CPU smoke run: tiny parts, fp32

Builds the DRIP parts from their configs (Stable Diffusion 2's U-Net with a 16-channel conv_in,
the projection switcher and cross-domain attention on every attn1; SD2's VAE; the default
LayerDiffuse-size transparency decoder; DPM-Solver++), randomly initialised, and reports for
each size: the time of one U-Net call (batch of 2 = foreground + alpha, at native resolution),
the end-to-end pipeline time (encode, N steps, decode, transparency decoder; the pipeline's own
max-side / tiling rule applies, so the number of tiles is reported too) and the peak GPU memory.
Speed does not depend on the weights' values, so these figures hold for trained weights too.

Performance options (all off unless asked, see docs/drip.md "Performance options"):

    --tiled-vae [--vae-tile PX]   tiled VAE encode/decode
    --bucket PX                   pad regions to multiples of PX (static shapes)
    --compile [MODE]              torch.compile'd U-Net, compiled in the background (persistent
                                  inductor cache); the first job runs eager, timed runs wait for it
    --roi-4k                      adds a 3840x2160 layer with a subject-sized unknown region
                                  (ROI + max-side tiles; tiny: 480x270)

Also reported: cold start (process start -> first result, model build and first job included),
U-Net TFLOP/s (FLOPs counted by torch.utils.flop_counter) and its share of --peak-tflops, and
peak GPU memory (torch.cuda.max_memory_allocated) of the U-Net call and of the whole job.
"""
from __future__ import annotations

# The imports below come after the process clock starts: cold start counts them too.
# ruff: noqa: E402
import time

_PROCESS_T0 = time.perf_counter()

import argparse
import json
import os
import platform
import resource
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from drip_core.engines.drip.pipeline import DripPipeline, _quiet_diffusers

# stabilityai/stable-diffusion-2 (diffusers layout) configs, written out so nothing is fetched
SD2_UNET = {
    "sample_size": 96, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20), "use_linear_projection": True,
    "norm_num_groups": 32, "flip_sin_to_cos": True, "freq_shift": 0,
}
SD2_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
    "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4, "sample_size": 768, "scaling_factor": 0.18215,
}
SD2_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                 "num_train_timesteps": 1000, "prediction_type": "v_prediction"}


def build_pipeline(tiny: bool, device: torch.device, dtype: torch.dtype, in_channels: int, max_side: int,
                   **perf):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from drip_core.engines.drip.model.convert import dpm_solver_config
    from drip_core.engines.drip.model.transparency_decoder import TransparencyDecoder
    from drip_core.engines.drip.testing import TINY_DECODER_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG

    ucfg = dict(TINY_UNET_CONFIG if tiny else SD2_UNET)
    ucfg.update(in_channels=in_channels, class_embed_type="projection",
                projection_class_embeddings_input_dim=2)
    torch.manual_seed(0)
    with torch.device(device):  # initialise in place: no multi-GB CPU detour
        unet = UNet2DConditionModel(**ucfg)
        vae = AutoencoderKL(**(TINY_VAE_CONFIG if tiny else SD2_VAE))
        decoder = TransparencyDecoder(**(TINY_DECODER_CONFIG if tiny else {}))
    with _quiet_diffusers():
        for m in (unet, vae, decoder):
            m.to(dtype=dtype).eval().requires_grad_(False)
    emb = torch.randn(1, 77, ucfg["cross_attention_dim"], device=device, dtype=dtype)
    options = {"in_channels": in_channels, "switcher_encoding": "scalar", "cross_domain_attention": True}
    pipe = DripPipeline(unet, vae, decoder, dpm_solver_config(SD2_SCHEDULER, "v_prediction"), emb, options,
                        {"trained": False}, max_side=max_side, **perf)
    return pipe


def synthetic_input(size: int):
    """A disc with a wide unknown ring (about a third of the pixels unknown)."""
    yy, xx = np.mgrid[:size, :size]
    d = np.hypot(yy - size / 2, xx - size / 2) / size
    tri = np.where(d < 0.25, 255, np.where(d < 0.42, 128, 0)).astype(np.uint8)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return image, tri


def synthetic_layer(width: int, height: int):
    """A wide layer (e.g. 3840x2160) with a subject-sized ellipse: unknown ring of about 1/20 of the
    height around a foreground core, background elsewhere; the pipeline processes only its ROI."""
    yy, xx = np.mgrid[:height, :width]
    d = np.hypot((yy - height * 0.55) / (height * 0.38), (xx - width * 0.5) / (width * 0.16))
    ring = 0.05 * height / (height * 0.38)
    tri = np.where(d < 1 - ring, 255, np.where(d < 1 + ring, 128, 0)).astype(np.uint8)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return image, tri


def unet_flops(pipe, unet_in) -> int | None:
    try:
        from torch.utils.flop_counter import FlopCounterMode

        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            pipe.unet(*pipe._unet_args(unet_in, 999, 1)[:2], **pipe._unet_args(unet_in, 999, 1)[2])
        return int(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - FLOPs are optional: not every op or torch version counts them
        return None


def wait_compiled(pipe):
    if pipe.compiled_unet is not None:
        t0 = time.perf_counter()
        pipe.compiled_unet.wait()
        return round(time.perf_counter() - t0, 2)
    return None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_size(pipe, size: int, steps: int, repeats: int, device, peak_tflops: float | None = None,
               layer: tuple[int, int] | None = None) -> dict:
    row = {"size": size if layer is None else f"{layer[0]}x{layer[1]}"}
    hw = pipe.working_size(size, size) if layer is None else None
    lat_h, lat_w = (hw[0] // pipe.latent_scale, hw[1] // pipe.latent_scale) if hw else (0, 0)
    if layer is not None:  # the U-Net runs on the ROI tiles: time one full tile
        lat_h = lat_w = pipe.max_side // pipe.latent_scale
    x = torch.randn(1, 4, lat_h, lat_w, device=device, dtype=pipe.dtype)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with torch.no_grad():
            unet_in = pipe.unet_input(x, x, x, x)
            flops = unet_flops(pipe, unet_in)
            pipe.unet_forward(unet_in, 999, 1)  # warm-up (queues the compile of this shape, if on)
            row["compile_wait_s"] = wait_compiled(pipe)
            pipe.unet_forward(unet_in, 999, 1)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(repeats):
                pipe.unet_forward(unet_in, 999, 1)
            sync(device)
        row["unet_step_s"] = round((time.perf_counter() - t0) / repeats, 4)
        if flops:
            row["unet_tflops"] = round(flops / row["unet_step_s"] / 1e12, 4)
            if peak_tflops:
                row["unet_peak_frac"] = round(row["unet_tflops"] / peak_tflops, 3)
        if device.type == "cuda":
            row["unet_peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    except torch.OutOfMemoryError:
        row["unet_step_s"] = "OOM"
    del x
    image, tri = synthetic_input(size) if layer is None else synthetic_layer(*layer)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        row["tiles"] = len(pipe._plan(tri == 128))
        pipe(image, tri, num_inference_steps=1)  # warm-up (kernel selection, allocator)
        wait_compiled(pipe)  # every shape this job needs is compiled before the timed run
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        t0 = time.perf_counter()
        pipe(image, tri, num_inference_steps=steps, generator=torch.Generator().manual_seed(0))
        sync(device)
        row["end_to_end_s"] = round(time.perf_counter() - t0, 3)
        if device.type == "cuda":
            row["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    except torch.OutOfMemoryError:
        row["end_to_end_s"] = "OOM"
    if device.type == "cpu":
        row["process_peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--random-weights", action="store_true", required=True,
                   help="required: build the parts from configs with random weights")
    p.add_argument("--tiny", action="store_true", help="tiny parts (CPU smoke run)")
    p.add_argument("--sizes", type=int, nargs="+",
                   help="square sizes in px (default 512 1024 2048; tiny: 64 128 256)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5, help="U-Net calls timed per size")
    p.add_argument("--device", help="default: cuda if available, else cpu")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), help="default: fp16 on GPU, fp32 on CPU")
    p.add_argument("--in-channels", type=int, default=16, choices=(16, 12))
    p.add_argument("--max-side", type=int, default=1024, help="the pipeline's native-resolution limit")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--tiled-vae", action="store_true", help="tiled VAE encode/decode")
    p.add_argument("--vae-tile", type=int, help="VAE tile size in px (default: the VAE's sample_size)")
    p.add_argument("--bucket", type=int, default=0, help="pad regions to multiples of this many px")
    p.add_argument("--compile", nargs="?", const="max-autotune-no-cudagraphs", default=None, metavar="MODE",
                   help="torch.compile the U-Net in the background (default mode max-autotune-no-cudagraphs)")
    p.add_argument("--roi-4k", action="store_true",
                   help="add a 3840x2160 layer (tiny: 480x270) with a subject ROI")
    p.add_argument("--peak-tflops", type=float,
                   help="dense peak of the device for --dtype (H100 SXM bf16/fp16: 989) for the U-Net share")
    args = p.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[
        args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    sizes = args.sizes or ([64, 128, 256] if args.tiny else [512, 1024, 2048])
    if not args.tiny and device.type == "cpu":
        print("warning: full-size DRIP on a CPU takes minutes per image; use --tiny for a smoke run",
              file=sys.stderr)
    t0 = time.perf_counter()
    options = {"bucket_size": args.bucket // (8 if args.tiny else 1)}
    if args.tiled_vae:
        options.update(vae_tiling=True, vae_tile_size=args.vae_tile)
    pipe = build_pipeline(args.tiny, device, dtype, args.in_channels,
                          args.max_side if not args.tiny else max(64, args.max_side // 8), **options)
    if args.compile:
        pipe.enable_compile(args.compile)  # shapes are compiled in the background as they are first seen
    build_s = time.perf_counter() - t0
    # cold start: process start -> first result (served eager while any compile runs)
    image, tri = synthetic_input(sizes[0])
    pipe(image, tri, num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0))
    sync(device)
    cold_start_s = time.perf_counter() - _PROCESS_T0
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or "cpu"
    info = {"device": device_name, "torch": torch.__version__, "dtype": str(dtype).replace("torch.", ""),
            "tiny": args.tiny,
            "steps": args.steps, "in_channels": args.in_channels, "max_side": pipe.max_side,
            "cpu_threads": torch.get_num_threads(), "build_s": round(build_s, 2),
            "cold_start_s": round(cold_start_s, 2), "cold_start_size": sizes[0], "tiled_vae": args.tiled_vae,
            "vae_tile": getattr(pipe.vae, "tile_sample_min_size", None) if args.tiled_vae else None,
            "bucket": pipe.bucket_size, "compile": args.compile,
            "unet_params_m": round(sum(p.numel() for p in pipe.unet.parameters()) / 1e6, 1),
            "decoder_params_m": round(sum(p.numel() for p in pipe.decoder.parameters()) / 1e6, 1)}
    print(json.dumps(info))
    rows = []
    peak = args.peak_tflops
    cases = [(size, None) for size in sizes]
    if args.roi_4k:
        cases.append((0, (480, 270) if args.tiny else (3840, 2160)))
    for size, layer in cases:
        row = bench_size(pipe, size, args.steps, args.repeats, device, peak, layer)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(f"| size | U-Net step (batch 2) | U-Net TFLOP/s (share of peak) | end-to-end ({args.steps} steps) "
          "| tiles | peak memory |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        mem = r.get("peak_gib", r.get("process_peak_rss_gib", "-"))
        unit = "GiB GPU" if "peak_gib" in r else "GiB RSS (process)"
        tf = f"{r.get('unet_tflops', '-')} ({r.get('unet_peak_frac', '-')})"
        print(f"| {r['size']} px | {r['unet_step_s']} s | {tf} | {r['end_to_end_s']} s "
              f"| {r.get('tiles', '-')} | {mem} {unit} |")
    print(f"\ncold start (process start -> first {sizes[0]} px result): {info['cold_start_s']} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"info": info, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
