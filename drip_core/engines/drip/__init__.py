"""DRIP (NeurIPS 2024): diffusion priors for joint foreground and alpha matting.

torch + diffusers re-implementation. Heavy imports happen only when a name below is used,
so ``import drip_core.engines.drip`` stays cheap (the server imports it lazily too).

Parts (one concept per module):
    engine                          DripEngine: the pipeline behind the common Engine interface
    pipeline                        DripPipeline: image + trimap -> foreground + alpha
    noise                           annealed multi-resolution noise
    performance                     size buckets, tiled VAE, background torch.compile
    testing                         tiny random SD2-layout models, synthetic data, the learning check
    model/
        conv_in                     expanding the U-Net's first convolution to the four latent inputs
        switcher                    the foreground / alpha domain encoding (class embedding input)
        cross_domain_attention      self-attention over both domains' tokens
        transparency_decoder        pixel-space refinement of the VAE decode (D_trans)
        folder                      drip.json, sha256 manifest, verification
        convert                     Stable Diffusion 2 folder -> DRIP model folder (drip-convert)
    training/
        data                        Composition-1k style dataset and augmentations
        fg_padding                  foreground padding of the training crops (paper Alg. 2)
        losses                      diffusion and matting losses
        harness                     what both stages share: runtime, loop, checkpoints, export
        stage1_unet                 stage 1, the U-Net (drip-train)
        stage2_decoder              stage 2, the transparency decoder (drip-train-decoder)
"""
from __future__ import annotations

from ...lazy import lazy_names

_LAZY = {
    "DripPipeline": "pipeline",
    "DripOutput": "pipeline",
    "convert_sd2": "model.convert",
    "TransparencyDecoder": "model.transparency_decoder",
    "CrossDomainAttnProcessor": "model.cross_domain_attention",
    "install_cross_domain_attention": "model.cross_domain_attention",
    "expand_conv_in": "model.conv_in",
    "domain_encoding": "model.switcher",
    "make_tiny_sd2": "testing",
    "ModelFolderError": "model.folder",
    "read_manifest": "model.folder",
    "verify_model_folder": "model.folder",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_names(__name__, _LAZY)
