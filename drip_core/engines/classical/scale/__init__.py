"""Large crops: solved at a coarser scale and carried back up (coarse_to_fine), or in tiles (tiling)."""
