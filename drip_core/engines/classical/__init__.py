"""The classical engine: closed-form alpha (Levin et al. 2008) with the known-to-unknown
information flow and patch-based trimming of Aksoy et al. (CVPR 2017), and multilevel foreground
estimation (Germer et al. 2020), in vectorised NumPy / SciPy.

    engine.py     ClassicalEngine: the interface's run / rerun, orchestration
    data_term/    what the known pixels say about the unknown ones: K-to-U flow, trimming,
                  far-from-known trimming, the transparency check, and the priors they make
    solve/        the closed-form system and its multigrid solver
    foreground.py foreground (and background) colours for a solved alpha
    scale/        large crops: solved at a coarser scale, or in tiles
    rerun.py      re-solving only an edited neighbourhood (Engine.rerun)
"""
from .engine import ClassicalEngine

__all__ = ["ClassicalEngine"]
