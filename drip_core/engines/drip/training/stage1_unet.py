"""drip-train: stage 1, fine-tune the DRIP U-Net (paper section 3.2.3).

    drip-train --model /models/drip-sd2 --data /data/Combined_Dataset/Training_set \
               --output runs/drip-stage1 [--max-steps 30000 --batch-size 2 --grad-accum 12]

Per step: image, triplicated trimap, foreground and triplicated alpha are VAE-encoded in one
batch; one timestep t per sample is shared by both domains; the foreground and alpha latents
get independent annealed multi-resolution noise; the U-Net sees the [foreground ; alpha]
batch (switcher + cross-domain attention) and the loss is MSE(fg half) + MSE(alpha half) on
the scheduler's prediction type (epsilon or v). Only the U-Net trains; the VAE is frozen.
The result is written to OUTPUT/model as a DRIP model folder with "trained": true (its
transparency decoder is still the identity of the VAE decode until drip-train-decoder).
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
    p = argparse.ArgumentParser(prog="drip-train", description=__doc__.split("\n\n")[0])
    add_common_args(p, lr=1e-5, max_steps=30000)
    p.add_argument("--class-embedding-lr-mult", type=float, default=1.0,
                   help="learning-rate multiplier for the new switcher projection (GeoWizard uses 10)")
    p.add_argument("--noise-discount", type=float, default=0.9, help="multi-resolution noise discount")
    p.add_argument("--noise-levels", type=int, default=10, help="multi-resolution noise levels, full size included (1 = plain Gaussian)")
    return p


def train(args) -> dict:
    from diffusers import DDPMScheduler

    from ..model.switcher import class_labels
    from ..noise import multi_res_noise
    from ..pipeline import DripPipeline
    from .losses import diffusion_loss

    rt = Runtime(args)
    setup_logging(args.output, rt.main, "train")
    torch.manual_seed(args.seed + rt.rank)
    # fp32 master weights; autocast does the bf16 work
    pipe = DripPipeline.from_pretrained(args.model, device=rt.device, dtype=torch.float32)
    unet, vae = pipe.unet, pipe.vae
    train_sched = DDPMScheduler.from_config(pipe.scheduler.config)  # the paper: DDPM, 1000 steps, for training
    ptype = train_sched.config.prediction_type
    unet.train().requires_grad_(True)
    if rt.grad_checkpointing:
        unet.enable_gradient_checkpointing()
    model = unet
    if rt.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(unet, device_ids=[rt.device] if rt.device.type == "cuda" else None)

    switcher = [p for n, p in unet.named_parameters() if n.startswith("class_embedding.")]
    rest = [p for n, p in unet.named_parameters() if not n.startswith("class_embedding.")]
    optimizer = make_optimizer(args, [{"params": rest, "lr": args.lr},
                                      {"params": switcher, "lr": args.lr * args.class_embedding_lr_mult}])
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(args.warmup_steps))

    step = 0
    resume = resolve_resume(args)
    if resume:
        state = load_checkpoint(resume, unet, optimizer, lr_sched)
        step = int(state["step"])
        log.info("resumed from %s at step %d", resume, step)
    ds, batches = make_loader(args, rt)
    metrics = MetricsLog(args.output, "train", rt.main)
    log.info("stage 1: %d training composites, device %s, world %d, prediction %s, in_channels %d, "
             "autocast %s, grad checkpointing %s, effective batch %d", len(ds), rt.device, rt.world, ptype,
             pipe.in_channels, rt.autocast_dtype, rt.grad_checkpointing, args.batch_size * args.grad_accum * rt.world)

    emb = pipe.empty_text_embedding
    bar = None
    if rt.main and not args.no_progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=args.max_steps, initial=step, desc="drip-train", dynamic_ncols=True)
    last = {}
    t0 = time.time()
    while step < args.max_steps:
        optimizer.zero_grad(set_to_none=True)
        totals = {"loss": 0.0, "loss_fg": 0.0, "loss_alpha": 0.0}
        for micro in range(args.grad_accum):
            batch = {k: v.to(rt.device, non_blocking=True) for k, v in next(batches).items()}
            b = batch["image"].shape[0]
            with torch.no_grad():
                x = torch.cat([batch["image"], batch["trimap"].expand(-1, 3, -1, -1), batch["foreground"],
                               batch["alpha"].expand(-1, 3, -1, -1)], 0)
                with rt.autocast():
                    z = vae.encode(x).latent_dist.mode().float() * vae.config.scaling_factor
                z_img, z_tri, z_fg, z_alpha = z.chunk(4, 0)
                t = torch.randint(0, train_sched.config.num_train_timesteps, (b,), device=rt.device)
                kw = dict(num_train_timesteps=train_sched.config.num_train_timesteps, discount=args.noise_discount,
                          levels=args.noise_levels, device=rt.device)
                n_fg = multi_res_noise(z_fg.shape, t, **kw)
                n_alpha = multi_res_noise(z_alpha.shape, t, **kw)
                x_fg = train_sched.add_noise(z_fg, n_fg, t)
                x_alpha = train_sched.add_noise(z_alpha, n_alpha, t)
                if ptype == "v_prediction":
                    tgt_fg, tgt_alpha = train_sched.get_velocity(z_fg, n_fg, t), train_sched.get_velocity(z_alpha, n_alpha, t)
                elif ptype == "epsilon":
                    tgt_fg, tgt_alpha = n_fg, n_alpha
                else:
                    raise ValueError(f"unsupported prediction_type {ptype}")
            unet_in = pipe.unet_input(z_img, z_tri, x_fg, x_alpha)
            labels = class_labels(b, pipe.switcher_encoding, device=rt.device)
            sync = micro == args.grad_accum - 1 or rt.world == 1
            ctx = model.no_sync() if (rt.world > 1 and not sync) else contextlib.nullcontext()
            with ctx:
                with rt.autocast():
                    pred = model(unet_in, t.repeat(2), encoder_hidden_states=emb.expand(2 * b, -1, -1),
                                 class_labels=labels).sample
                losses = diffusion_loss(pred, tgt_fg, tgt_alpha)
                (losses["loss"] / args.grad_accum).backward()
            for k in totals:
                totals[k] += float(losses[k].detach()) / args.grad_accum
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_sched.step()
        step += 1
        last = {"step": step, **totals, "lr": lr_sched.get_last_lr()[0]}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{totals['loss']:.4f}")
        if rt.main and (step % args.log_every == 0 or step == args.max_steps):
            last["seconds"] = round(time.time() - t0, 2)
            log.info("step %d loss %.5f (fg %.5f, alpha %.5f) lr %.2e", step, totals["loss"], totals["loss_fg"],
                     totals["loss_alpha"], last["lr"])
            metrics.write(last)
        if rt.main and args.val_images and (step % args.val_every == 0 or step == args.max_steps):
            unet.eval()
            v = validate(pipe, args)
            unet.train()
            log.info("step %d validation SAD %.3f over %d images (%.1fs)", step, v["val_sad"], v["val_images"],
                     v["val_seconds"])
            metrics.write({"step": step, **v})
            last.update(v)
        if rt.main and (step % args.checkpoint_every == 0 or step == args.max_steps):
            path = save_checkpoint(args.output, step, unet, optimizer, lr_sched, {"stage": "diffusion"},
                                   args.keep_checkpoints)
            log.info("checkpoint %s", path)
        rt.barrier()
    if bar is not None:
        bar.close()
    if rt.main:
        unet.eval()
        if rt.grad_checkpointing:
            unet.disable_gradient_checkpointing()
        out_model = os.path.join(args.output, "model")
        export_model(args.model, out_model, {"unet": unet}, stage_key="diffusion_steps", steps=step,
                     extra_source={"stage1_run": os.path.abspath(args.output)})
        log.info("wrote trained model folder %s", out_model)
        last["model"] = out_model
    rt.close()
    return last


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = train(args)
    if "model" in result:
        print(f"done: step {result['step']}, loss {result['loss']:.5f}; model folder {result['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
