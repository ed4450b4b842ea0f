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
import sys

import torch

from .harness import TrainingRun, TrainingStage, add_common_args, log, run_cli

STAGE = TrainingStage(name="train_decoder", program="drip-train-decoder", kind="decoder",
                      part="transparency_decoder", steps_key="decoder_steps", run_key="stage2_run")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drip-train-decoder", description=__doc__.split("\n\n")[0])
    add_common_args(p, lr=1e-4, max_steps=20000)
    p.add_argument("--min-denoise-steps", type=int, default=1)
    p.add_argument("--max-denoise-steps", type=int, default=10)
    return p


class DecoderObjective:
    """The stage-2 loss: the frozen model denoises each batch for a random number of steps, and
    the decoder turns its decodes and latents into foreground and alpha (combined matting loss)."""

    def __init__(self, pipe, args, rank: int):
        self.pipe = pipe
        self.steps = (args.min_denoise_steps, args.max_denoise_steps)
        # the step counts and the sampler's noise: a generator of their own, apart from the data's
        self.generator = torch.Generator(device="cpu").manual_seed(args.seed * 1000 + rank)

    def inputs(self, batch: dict) -> dict:
        n = int(torch.randint(self.steps[0], self.steps[1] + 1, (1,), generator=self.generator))
        z_img, z_tri = self.pipe.encode_conditions(batch["image"], batch["trimap"])
        z_fg, z_alpha = self.pipe.denoise(z_img, z_tri, n, self.generator)
        dec_fg, dec_alpha = self.pipe.vae_decode(z_fg, z_alpha)
        return {"batch": batch, "decodes": (dec_fg, dec_alpha), "latents": (z_fg, z_alpha)}

    def predict(self, model, inputs: dict) -> torch.Tensor:
        batch = inputs["batch"]
        return model(batch["image"], batch["trimap"], *inputs["decodes"], *inputs["latents"])

    def losses(self, pred: torch.Tensor, inputs: dict) -> dict:
        from .losses import decoder_loss

        batch = inputs["batch"]  # targets from [-1, 1] to the decoder's [0, 1]
        return decoder_loss(pred, batch["foreground"] * 0.5 + 0.5, batch["alpha"] * 0.5 + 0.5,
                            batch["unknown"])


def train_decoder(args) -> dict:
    """Stage 2. Returns the last step's figures, with "model": the folder written (main process)."""
    from ..pipeline import DripPipeline

    # 1. this process: device, precision, logging, seed
    run = TrainingRun(args, STAGE)
    rt = run.rt
    # 2. the frozen diffusion model in half precision on GPU (inference only), the decoder in fp32
    frozen_dtype = torch.float16 if rt.device.type == "cuda" else torch.float32
    pipe = DripPipeline.from_pretrained(args.model, device=rt.device, dtype=frozen_dtype)
    decoder = pipe.decoder if pipe.decoder.dtype == torch.float32 else pipe.decoder.to(dtype=torch.float32)
    decoder.train().requires_grad_(True)
    if not pipe.trained:
        log.warning("%s holds an untrained diffusion model: the decoder will learn from noise "
                    "(fine for smoke tests, useless otherwise; run drip-train first)", args.model)
    # 3. optimizer, schedule, resume, data
    run.prepare(pipe, decoder, decoder.parameters())
    objective = DecoderObjective(pipe, args, rt.rank)
    log.info("stage 2: %d training composites, device %s, world %d, denoising steps %d..%d", len(run.dataset),
             rt.device, rt.world, args.min_denoise_steps, args.max_denoise_steps)
    # 4. optimizer steps until --max-steps, with logs, validation and checkpoints
    run.loop(objective)
    # 5. the model folder with the trained decoder
    return run.finish()


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser, train_decoder, argv)


if __name__ == "__main__":
    sys.exit(main())
