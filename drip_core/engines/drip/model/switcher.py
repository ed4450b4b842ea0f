"""The domain switcher: which output (foreground or alpha) the shared U-Net should produce.

Paper: s_F = PosEnc(1), s_alpha = PosEnc(0), low-dimensional, added to the time embedding.
diffusers does the "projection and add" for us: ``class_embed_type="projection"`` builds a
Linear-SiLU-Linear from ``projection_class_embeddings_input_dim`` to the time-embedding width
and adds its output to the timestep embedding; we pass the encoding as ``class_labels``.

Two encodings (config value ``switcher_encoding``):
  "scalar"  (default, the paper's literal wording) [sin v, cos v] for v = 1 (fg) / 0 (alpha)
  "onehot"  GeoWizard / Wonder3D: one-hot [0,1] / [1,0] -> [sin(onehot), cos(onehot)] (4 dims)
"""
from __future__ import annotations

import math

import torch

FOREGROUND = "foreground"
ALPHA = "alpha"
ENCODINGS = {"scalar": 2, "onehot": 4}


def encoding_dim(encoding: str) -> int:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ValueError(f"unknown switcher encoding '{encoding}' (choose {', '.join(ENCODINGS)})") from None


def domain_encoding(domain: str, encoding: str = "scalar") -> torch.Tensor:
    """The 1-D switcher vector for ``domain`` ('foreground' or 'alpha')."""
    if domain not in (FOREGROUND, ALPHA):
        raise ValueError(f"unknown domain '{domain}'")
    if encoding == "scalar":
        v = 1.0 if domain == FOREGROUND else 0.0
        return torch.tensor([math.sin(v), math.cos(v)])
    if encoding == "onehot":
        onehot = torch.tensor([0.0, 1.0]) if domain == FOREGROUND else torch.tensor([1.0, 0.0])
        return torch.cat([torch.sin(onehot), torch.cos(onehot)])
    encoding_dim(encoding)  # raises
    raise AssertionError


def class_labels(batch: int, encoding: str, device=None, dtype=None) -> torch.Tensor:
    """Switcher inputs for a U-Net batch laid out as [foreground x batch ; alpha x batch]."""
    fg = domain_encoding(FOREGROUND, encoding)
    al = domain_encoding(ALPHA, encoding)
    labels = torch.cat([fg.expand(batch, -1), al.expand(batch, -1)], dim=0)
    return labels.to(device=device, dtype=dtype)
