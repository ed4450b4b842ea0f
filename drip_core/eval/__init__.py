"""Evaluation: DIM matting metrics and a runner for alphamatting.com-style folders."""
from .metrics import AlphaErrors, ForegroundErrors, alpha_errors, foreground_errors, to_uint8

__all__ = ["AlphaErrors", "ForegroundErrors", "alpha_errors", "foreground_errors", "to_uint8"]
