"""drip-train-decoder: stage 2, train the latent transparency decoder (paper section 3.3).

    drip-train-decoder --model runs/drip-stage1/model --data /data/Combined_Dataset/Training_set \
                       --output runs/drip-stage2

The stage-1 diffusion model is frozen. For each batch it denoises the image + trimap from
noise for a random number of DPM-Solver++ steps (1..10, as the paper), the VAE decodes the
predicted latents, and the decoder learns to turn (image, trimap, decodes, latents) into the
ground-truth foreground and alpha with the combined matting loss (separate L1 + L2 +
Laplacian + gradient, on alpha and on alpha-weighted foreground). The result is written to
OUTPUT/model with the trained decoder.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import torch

from .harness import (
    MetricsLog,
    Runtime,
    add_common_args,
    export_model,
    load_checkpoint,
    log,
    lr_lambda,
    make_loader,
    make_optimizer,
    resolve_resume,
    save_checkpoint,
    setup_logging,
    validate,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drip-train-decoder", description=__doc__.split("\n\n")[0])
    add_common_args(p, lr=1e-4, max_steps=20000)
    p.add_argument("--min-denoise-steps", type=int, default=1)
    p.add_argument("--max-denoise-steps", type=int, default=10)
    return p


def train_decoder(args) -> dict:
    from ..pipeline import DripPipeline
    from .losses import decoder_loss

    rt = Runtime(args)
    setup_logging(args.output, rt.main, "train_decoder")
    torch.manual_seed(args.seed + rt.rank)
    # frozen diffusion model in half precision on GPU (inference only); the decoder in fp32
    frozen_dtype = torch.float16 if rt.device.type == "cuda" else torch.float32
    pipe = DripPipeline.from_pretrained(args.model, device=rt.device, dtype=frozen_dtype)
    decoder = pipe.decoder if pipe.decoder.dtype == torch.float32 else pipe.decoder.to(dtype=torch.float32)
    decoder.train().requires_grad_(True)
    if not pipe.trained:
        log.warning("%s holds an untrained diffusion model: the decoder will learn from noise "
                    "(fine for smoke tests, useless otherwise; run drip-train first)", args.model)
    model = decoder
    if rt.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(decoder, device_ids=[rt.device] if rt.device.type == "cuda" else None)
    optimizer = make_optimizer(args, decoder.parameters())
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(args.warmup_steps))
    step = 0
    resume = resolve_resume(args)
    if resume:
        step = int(load_checkpoint(resume, decoder, optimizer, lr_sched)["step"])
        log.info("resumed from %s at step %d", resume, step)
    ds, batches = make_loader(args, rt)
    metrics = MetricsLog(args.output, "train_decoder", rt.main)
    log.info("stage 2: %d training composites, device %s, world %d, denoising steps %d..%d", len(ds), rt.device,
             rt.world, args.min_denoise_steps, args.max_denoise_steps)
    gen = torch.Generator(device="cpu").manual_seed(args.seed * 1000 + rt.rank)
    bar = None
    if rt.main and not args.no_progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=args.max_steps, initial=step, desc="drip-train-decoder", dynamic_ncols=True)
    last = {}
    t0 = time.time()
    while step < args.max_steps:
        optimizer.zero_grad(set_to_none=True)
        totals = {"loss": 0.0, "loss_fg": 0.0, "loss_alpha": 0.0}
        for micro in range(args.grad_accum):
            batch = {k: v.to(rt.device, non_blocking=True) for k, v in next(batches).items()}
            with torch.no_grad():
                n = int(torch.randint(args.min_denoise_steps, args.max_denoise_steps + 1, (1,), generator=gen))
                z_img, z_tri = pipe.encode_conditions(batch["image"], batch["trimap"])
                z_fg, z_alpha = pipe.denoise(z_img, z_tri, n, gen)
                dec_fg, dec_alpha = pipe.vae_decode(z_fg, z_alpha)
            sync = micro == args.grad_accum - 1 or rt.world == 1
            ctx = model.no_sync() if (rt.world > 1 and not sync) else contextlib.nullcontext()
            with ctx:
                with rt.autocast():
                    pred = model(batch["image"], batch["trimap"], dec_fg, dec_alpha, z_fg, z_alpha)
                losses = decoder_loss(pred, batch["foreground"] * 0.5 + 0.5, batch["alpha"] * 0.5 + 0.5,
                                      batch["unknown"])
                (losses["loss"] / args.grad_accum).backward()
            for k in totals:
                totals[k] += float(losses[k].detach()) / args.grad_accum
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        lr_sched.step()
        step += 1
        last = {"step": step, **totals, "lr": lr_sched.get_last_lr()[0]}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{totals['loss']:.4f}")
        if rt.main and (step % args.log_every == 0 or step == args.max_steps):
            last["seconds"] = round(time.time() - t0, 2)
            log.info("step %d loss %.5f (fg %.5f, alpha %.5f)", step, totals["loss"], totals["loss_fg"],
                     totals["loss_alpha"])
            metrics.write(last)
        if rt.main and args.val_images and (step % args.val_every == 0 or step == args.max_steps):
            decoder.eval()
            v = validate(pipe, args)
            decoder.train()
            log.info("step %d validation SAD %.3f over %d images", step, v["val_sad"], v["val_images"])
            metrics.write({"step": step, **v})
            last.update(v)
        if rt.main and (step % args.checkpoint_every == 0 or step == args.max_steps):
            log.info("checkpoint %s", save_checkpoint(args.output, step, decoder, optimizer, lr_sched,
                                                      {"stage": "decoder"}, args.keep_checkpoints))
        rt.barrier()
    if bar is not None:
        bar.close()
    if rt.main:
        decoder.eval()
        out_model = os.path.join(args.output, "model")
        export_model(args.model, out_model, {"transparency_decoder": decoder}, stage_key="decoder_steps",
                     steps=step, extra_source={"stage2_run": os.path.abspath(args.output)})
        log.info("wrote model folder with the trained decoder: %s", out_model)
        last["model"] = out_model
    rt.close()
    return last


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = train_decoder(args)
    if "model" in result:
        print(f"done: step {result['step']}, loss {result['loss']:.5f}; model folder {result['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
