"""The DRIP model's parts and its folder: conv_in expansion, the domain switcher, cross-domain
attention, the transparency decoder, the model folder (drip.json manifest) and drip-convert."""
