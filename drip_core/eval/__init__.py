"""Evaluation: DIM matting metrics, the foreground error, and a runner for the alphamatting.com,
Composition-1k and AIM-500 folder layouts."""
from .metrics import AlphaErrors, ForegroundErrors, alpha_errors, foreground_errors, to_uint8

__all__ = ["AlphaErrors", "ForegroundErrors", "alpha_errors", "foreground_errors", "to_uint8"]
