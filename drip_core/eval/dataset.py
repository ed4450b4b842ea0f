"""Reading an alphamatting.com-style folder (input_*/, trimap_*/TrimapK/, gt_*/)."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..trimaps.values import snap

TRIMAPS = ("Trimap1", "Trimap2")


class DatasetError(Exception):
    pass


@dataclass
class Sample:
    name: str
    image: np.ndarray   # uint8 HxWx3
    trimap: np.ndarray  # uint8 HxW in {0, 128, 255}
    gt: np.ndarray      # uint8 HxW alpha
    fg: np.ndarray | None = None  # uint8 HxWx3 ground-truth foreground, where the dataset has one


def default_data_dir() -> Path | None:
    """The shared alphamatting copy, when this checkout sits next to it (tests, benchmarks)."""
    env = os.environ.get("DRIP_ALPHAMATTING_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data" / "alphamatting_lowres")
    for c in candidates:
        if (c / "input_training_lowres").is_dir():
            return c
    return None


def data_dir_or_exit(data) -> Path:
    """A benchmark's ``--data`` folder, or its exit (status 2) with the one message saying how to
    point it at the alphamatting copy."""
    if data is None:
        print("no alphamatting data (set DRIP_ALPHAMATTING_DIR)", file=sys.stderr)
        raise SystemExit(2)
    return Path(data)


def _subdir(root: Path, prefix: str) -> Path:
    found = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix))
    if not found:
        raise DatasetError(f"{root} has no {prefix}*/ folder (expected an alphamatting.com-style layout)")
    return found[0]


def sample_names(root: str | Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder {root} does not exist")
    return sorted(p.stem for p in _subdir(root, "input_").glob("*.png"))


def load_sample(root: str | Path, name: str, trimap: str = "Trimap1") -> Sample:
    root = Path(root)
    tri_dir = _subdir(root, "trimap_") / trimap
    paths = (_subdir(root, "input_") / f"{name}.png", tri_dir / f"{name}.png",
             _subdir(root, "gt_") / f"{name}.png")
    for p in paths:
        if not p.is_file():
            raise DatasetError(f"missing file {p}")
    image = np.asarray(Image.open(paths[0]).convert("RGB"))
    tri = np.asarray(Image.open(paths[1]).convert("L"))
    gt = np.asarray(Image.open(paths[2]).convert("L"))
    if not (image.shape[:2] == tri.shape == gt.shape):
        raise DatasetError(f"{name}: image, trimap and ground truth differ in size")
    return Sample(name, image, snap(tri), gt)
