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
import sys

import torch

from .harness import TrainingRun, TrainingStage, add_common_args, log, run_cli

STAGE = TrainingStage(name="train", program="drip-train", kind="diffusion", part="unet",
                      steps_key="diffusion_steps", run_key="stage1_run")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drip-train", description=__doc__.split("\n\n")[0])
    add_common_args(p, lr=1e-5, max_steps=30000)
    p.add_argument("--class-embedding-lr-mult", type=float, default=1.0,
                   help="learning-rate multiplier for the new switcher projection (GeoWizard uses 10)")
    p.add_argument("--noise-discount", type=float, default=0.9, help="multi-resolution noise discount")
    p.add_argument("--noise-levels", type=int, default=10,
                   help="multi-resolution noise levels, full size included (1 = plain Gaussian)")
    return p


class DiffusionObjective:
    """The stage-1 loss: both domains' latents noised at one timestep per sample, the U-Net
    predicts the noise or the velocity of each (the scheduler's prediction type)."""

    def __init__(self, pipe, args, runtime):
        from diffusers import DDPMScheduler

        self.pipe, self.rt = pipe, runtime
        self.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)  # the paper: DDPM, 1000 steps
        self.prediction_type = self.scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"unsupported prediction_type {self.prediction_type}")
        self.noise_kw = dict(num_train_timesteps=self.scheduler.config.num_train_timesteps,
                             discount=args.noise_discount, levels=args.noise_levels, device=runtime.device)

    def inputs(self, batch: dict) -> dict:
        from ..model.switcher import class_labels
        from ..noise import multi_res_noise

        b = batch["image"].shape[0]
        z_img, z_tri, z_fg, z_alpha = self._encode(batch)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (b,), device=self.rt.device)
        n_fg = multi_res_noise(z_fg.shape, t, **self.noise_kw)
        n_alpha = multi_res_noise(z_alpha.shape, t, **self.noise_kw)
        x_fg = self.scheduler.add_noise(z_fg, n_fg, t)
        x_alpha = self.scheduler.add_noise(z_alpha, n_alpha, t)
        if self.prediction_type == "v_prediction":
            targets = (self.scheduler.get_velocity(z_fg, n_fg, t),
                       self.scheduler.get_velocity(z_alpha, n_alpha, t))
        else:
            targets = n_fg, n_alpha
        return {"unet_in": self.pipe.unet_input(z_img, z_tri, x_fg, x_alpha), "t": t, "batch_size": b,
                "labels": class_labels(b, self.pipe.switcher_encoding, device=self.rt.device),
                "targets": targets}

    def _encode(self, batch: dict):
        """Image, trimap, foreground and alpha (the last three-channel like the image) through
        the frozen VAE in one batch; latent = posterior mean x scaling factor."""
        vae = self.pipe.vae
        x = torch.cat([batch["image"], batch["trimap"].expand(-1, 3, -1, -1), batch["foreground"],
                       batch["alpha"].expand(-1, 3, -1, -1)], 0)
        with self.rt.autocast():
            z = vae.encode(x).latent_dist.mode().float() * vae.config.scaling_factor
        return z.chunk(4, 0)

    def predict(self, model, inputs: dict) -> torch.Tensor:
        b = inputs["batch_size"]
        return model(inputs["unet_in"], inputs["t"].repeat(2),
                     encoder_hidden_states=self.pipe.empty_text_embedding.expand(2 * b, -1, -1),
                     class_labels=inputs["labels"]).sample

    def losses(self, pred: torch.Tensor, inputs: dict) -> dict:
        from .losses import diffusion_loss

        return diffusion_loss(pred, *inputs["targets"])


def train(args) -> dict:
    """Stage 1. Returns the last step's figures, with "model": the folder written (main process)."""
    from ..pipeline import DripPipeline

    # 1. this process: device, precision, logging, seed
    run = TrainingRun(args, STAGE)
    rt = run.rt
    # 2. the pipeline in fp32 (master weights; autocast does the bf16 work), its U-Net trainable
    pipe = DripPipeline.from_pretrained(args.model, device=rt.device, dtype=torch.float32)
    unet = pipe.unet
    unet.train().requires_grad_(True)
    if rt.grad_checkpointing:
        unet.enable_gradient_checkpointing()
    # 3. optimizer (the new switcher projection may get its own learning rate), schedule, resume, data
    run.prepare(pipe, unet, _param_groups(unet, args))
    objective = DiffusionObjective(pipe, args, rt)
    log.info("stage 1: %d training composites, device %s, world %d, prediction %s, in_channels %d, "
             "autocast %s, grad checkpointing %s, effective batch %d", len(run.dataset), rt.device, rt.world,
             objective.prediction_type, pipe.in_channels, rt.autocast_dtype, rt.grad_checkpointing,
             args.batch_size * args.grad_accum * rt.world)
    # 4. optimizer steps until --max-steps, with logs, validation and checkpoints
    run.loop(objective)
    # 5. the trained model folder
    if rt.main and rt.grad_checkpointing:
        unet.disable_gradient_checkpointing()
    return run.finish()


def _param_groups(unet, args) -> list[dict]:
    """Everything at --lr but the switcher projection (class_embedding), which is new."""
    switcher = [p for n, p in unet.named_parameters() if n.startswith("class_embedding.")]
    rest = [p for n, p in unet.named_parameters() if not n.startswith("class_embedding.")]
    return [{"params": rest, "lr": args.lr},
            {"params": switcher, "lr": args.lr * args.class_embedding_lr_mult}]


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser, train, argv)


if __name__ == "__main__":
    sys.exit(main())
