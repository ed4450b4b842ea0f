"""The closed-form matting system (Levin et al. 2008) and the multigrid solver it is solved with."""
