"""DRIP (NeurIPS 2024): diffusion priors for joint foreground and alpha matting.

torch + diffusers re-implementation. Heavy imports happen only when a name below is used,
so ``import drip_core.engines.drip`` stays cheap (the server imports it lazily too).

Parts (one concept per module):
    conv_in                 expanding the U-Net's first convolution to the four latent inputs
    switcher                the foreground / alpha domain encoding (class embedding input)
    cross_domain_attention  self-attention over both domains' tokens
    transparency_decoder    pixel-space refinement of the VAE decode (D_trans)
    model_folder            drip.json, sha256 manifest, verification
    convert                 Stable Diffusion 2 folder -> DRIP model folder (drip-convert)
    pipeline                DripPipeline: image + trimap -> foreground + alpha
    noise                   annealed multi-resolution noise
    data                    Composition-1k style dataset and augmentations
    losses                  diffusion and matting losses
    train / train_decoder   stage 1 (U-Net) and stage 2 (D_trans) training
    testing                 tiny random SD2-layout folders for tests
"""
from __future__ import annotations

import importlib

_LAZY = {
    "DripPipeline": "pipeline",
    "DripOutput": "pipeline",
    "convert_sd2": "convert",
    "TransparencyDecoder": "transparency_decoder",
    "CrossDomainAttnProcessor": "cross_domain_attention",
    "install_cross_domain_attention": "cross_domain_attention",
    "expand_conv_in": "conv_in",
    "domain_encoding": "switcher",
    "make_tiny_sd2": "testing",
    "ModelFolderError": "model_folder",
    "read_manifest": "model_folder",
    "verify_model_folder": "model_folder",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'drip_core.engines.drip' has no attribute '{name}'")
    return getattr(importlib.import_module(f".{module}", __name__), name)
