"""The benchmark folder layouts drip-eval reads, each as names() + load(name) -> Sample.

alphamatting   alphamatting.com: input_*/, trimap_*/TrimapK/, gt_*/ (one trimap set at a time)
comp1k         Composition-1k test set as prepared by the Adobe composition script:
                   merged/<fg>_<k>.png    the 1000 composites (what the engine sees)
                   trimaps/<fg>_<k>.png   the official trimaps (one per composite)
                   alpha/<fg>.png         the 50 ground-truth alphas (or alpha_copy/<fg>_<k>.png)
                   fg/<fg>.png|jpg        the 50 ground-truth foregrounds (optional; fg_copy/ too)
               A composite's alpha / foreground is found by its own stem first, then by the stem
               without its trailing "_<k>" (the background index the script appends).
aim500         AIM-500: original/<name>.jpg, mask/<name>.png (alpha), trimap/<name>.png; no
               foreground ground truth, so no foreground metric.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from ..trimaps.values import snap
from .dataset import DatasetError, Sample, load_sample, sample_names

LAYOUTS = ("alphamatting", "comp1k", "aim500")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_BG_INDEX = re.compile(r"_\d+$")


def _folder(root: Path, *candidates: str, required: bool = True) -> Path | None:
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    if required:
        raise DatasetError(f"{root} has none of the folders {', '.join(c + '/' for c in candidates)}")
    return None


def _by_stem(folder: Path | None) -> dict[str, Path]:
    if folder is None:
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXT}


def _match(stem: str, files: dict[str, Path]) -> Path | None:
    """The file for this composite: same stem, else the stem without its background index."""
    return files.get(stem) or files.get(_BG_INDEX.sub("", stem))


def _rgb(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGB"))


def _gray(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("L"))


class FolderLayout:
    """Images + trimaps + alphas (+ foregrounds) in sibling folders, paired by file stem."""

    def __init__(self, root, images: tuple, trimaps: tuple, alphas: tuple, fgs: tuple = ()):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"data folder {self.root} does not exist")
        self.images = _by_stem(_folder(self.root, *images))
        self.trimaps = _by_stem(_folder(self.root, *trimaps))
        self.alphas = _by_stem(_folder(self.root, *alphas))
        self.fgs = _by_stem(_folder(self.root, *fgs, required=False)) if fgs else {}

    def names(self) -> list[str]:
        return [n for n in self.images if n in self.trimaps and _match(n, self.alphas)]

    def load(self, name: str) -> Sample:
        alpha_path = _match(name, self.alphas)
        if name not in self.images or name not in self.trimaps or alpha_path is None:
            raise DatasetError(f"{name}: image, trimap or alpha missing under {self.root}")
        image, tri, gt = _rgb(self.images[name]), _gray(self.trimaps[name]), _gray(alpha_path)
        fg_path = _match(name, self.fgs)
        fg = _rgb(fg_path) if fg_path is not None else None
        if not (image.shape[:2] == tri.shape == gt.shape) or (fg is not None and fg.shape != image.shape):
            raise DatasetError(f"{name}: image, trimap, alpha (and foreground) differ in size")
        return Sample(name, image, snap(tri), gt, fg)


class AlphamattingLayout:
    def __init__(self, root, trimap: str = "Trimap1"):
        self.root, self.trimap = Path(root), trimap
        sample_names(self.root)  # raises DatasetError on a wrong folder

    def names(self) -> list[str]:
        return sample_names(self.root)

    def load(self, name: str) -> Sample:
        return load_sample(self.root, name, self.trimap)


def open_layout(kind: str, root, trimap: str = "Trimap1"):
    if kind == "alphamatting":
        return AlphamattingLayout(root, trimap)
    if kind == "comp1k":
        return FolderLayout(root, ("merged",), ("trimaps", "trimap"), ("alpha", "alpha_copy"),
                            ("fg", "fg_copy"))
    if kind == "aim500":
        return FolderLayout(root, ("original",), ("trimap", "trimaps"), ("mask", "alpha"))
    raise DatasetError(f"unknown layout '{kind}' (one of {', '.join(LAYOUTS)})")
