"""Training DRIP: stage 1 fine-tunes the U-Net (drip-train, stage1_unet), stage 2 the transparency
decoder (drip-train-decoder, stage2_decoder); harness holds what both share; data, losses and
fg_padding are their inputs and objectives."""
