"""Training data: the Composition-1k layout, composited on the fly.

    root/fg/<name>.png|jpg      foreground colours
    root/alpha/<name>.png|jpg   alpha mattes (same names as fg)
    root/bg/*.jpg|png           backgrounds (COCO for Composition-1k)

Each item: a foreground (cycled ``bg_per_fg`` times per epoch; Composition-1k uses 100) is
jittered (brightness/contrast/saturation/gamma), padded outside the object by repeated blur
where alpha = 0 (paper App. A.2: 13x13 Gaussian, 64 iterations, written back only where
alpha == 0, so the foreground's colour continues smoothly into the background region and the
latent model is not asked to learn arbitrary colours there), randomly cropped (``crop_size``,
centred on the unknown band most of the time), flipped, composited onto a random, jittered
background. The trimap comes from the alpha by eroding the definite-foreground and
definite-background masks by independent random radii of 1..29 px (ViTMatte's GenMask rule).

Tensors are returned in [-1, 1] (image, trimap {0,128,255}/127.5-1, foreground, alpha) plus
the unknown-region mask, all channel-first float32.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import distance_transform_edt

from ....trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN, snap
from .fg_padding import pad_foreground

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _list(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXT))


def _stem(name: str) -> str:
    return os.path.splitext(name)[0]


def load_rgb(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def load_gray(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0


def trimap_from_alpha(alpha: np.ndarray, rng: np.random.Generator, min_px: int = 1,
                      max_px: int = 29) -> np.ndarray:
    """uint8 {0,128,255}: definite fg / bg masks eroded by random radii in [min_px, max_px]."""
    fg = alpha >= 0.999
    bg = alpha <= 0.001
    k_fg, k_bg = rng.integers(min_px, max_px + 1, size=2)
    tri = np.full(alpha.shape, UNKNOWN, np.uint8)
    if fg.any():
        tri[distance_transform_edt(fg) > k_fg] = FOREGROUND
    if bg.any():
        tri[distance_transform_edt(bg) > k_bg] = BACKGROUND
    return tri


def photometric_jitter(rgb: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    if strength <= 0:
        return rgb
    out = rgb * (1 + strength * rng.uniform(-0.2, 0.2))                        # brightness
    mean = out.mean()
    out = (out - mean) * (1 + strength * rng.uniform(-0.2, 0.2)) + mean         # contrast
    gray = out.mean(axis=2, keepdims=True)
    out = (out - gray) * (1 + strength * rng.uniform(-0.3, 0.3)) + gray         # saturation
    out = np.clip(out, 0, 1) ** np.exp(strength * rng.uniform(-0.2, 0.2))        # gamma
    return np.clip(out, 0, 1).astype(np.float32)


def _resize(arr: np.ndarray, size: tuple[int, int], resample=Image.BILINEAR) -> np.ndarray:
    """size = (h, w); float arrays in [0, 1]."""
    h, w = size
    if arr.shape[:2] == (h, w):
        return arr
    if arr.ndim == 2:
        return np.asarray(Image.fromarray(arr.astype(np.float32)).resize((w, h), resample), np.float32)
    return np.stack([_resize(arr[..., c], size, resample) for c in range(arr.shape[2])], axis=2)


class CompositionDataset(torch.utils.data.Dataset):
    def __init__(self, root: str, crop_size: int = 512, *, fg_dir: str = "fg", alpha_dir: str = "alpha",
                 bg_dir: str = "bg", bg_per_fg: int = 1, flip: bool = True, jitter: float = 1.0,
                 fg_pad_iterations: int = 64, fg_pad_kernel: int = 13, trimap_px: tuple[int, int] = (1, 29),
                 unknown_crop_prob: float = 0.7):
        self.root = os.fspath(root)
        self.fg_dir, self.alpha_dir, self.bg_dir = (os.path.join(self.root, d)
                                                    for d in (fg_dir, alpha_dir, bg_dir))
        for d in (self.fg_dir, self.alpha_dir, self.bg_dir):
            if not os.path.isdir(d):
                raise FileNotFoundError(f"{d} is missing: the dataset needs fg/, alpha/ and bg/ folders")
        alphas = {_stem(n): n for n in _list(self.alpha_dir)}
        self.items = [(n, alphas[_stem(n)]) for n in _list(self.fg_dir) if _stem(n) in alphas]
        self.backgrounds = _list(self.bg_dir)
        if not self.items or not self.backgrounds:
            raise FileNotFoundError(f"{self.root}: no matching fg/alpha pairs or no backgrounds")
        self.crop_size = int(crop_size)
        self.bg_per_fg = max(1, int(bg_per_fg))
        self.flip, self.jitter = flip, float(jitter)
        self.fg_pad_iterations, self.fg_pad_kernel = fg_pad_iterations, fg_pad_kernel
        self.trimap_px = trimap_px
        self.unknown_crop_prob = unknown_crop_prob

    def __len__(self) -> int:
        return len(self.items) * self.bg_per_fg

    def _crop_box(self, alpha: np.ndarray, rng) -> tuple[int, int]:
        h, w = alpha.shape
        s = self.crop_size
        band = np.argwhere((alpha > 0.01) & (alpha < 0.99))
        if len(band) and rng.random() < self.unknown_crop_prob:
            cy, cx = band[rng.integers(len(band))]
            y, x = cy - s // 2, cx - s // 2
        else:
            y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        return int(np.clip(y, 0, h - s)), int(np.clip(x, 0, w - s))

    def __getitem__(self, index: int) -> dict:
        # torch's RNG is seeded per worker by the DataLoader (and by torch.manual_seed in the
        # main process), so runs are reproducible and workers differ.
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,)).item()))
        fg_name, alpha_name = self.items[index % len(self.items)]
        fg = load_rgb(os.path.join(self.fg_dir, fg_name))
        alpha = load_gray(os.path.join(self.alpha_dir, alpha_name))
        if alpha.shape != fg.shape[:2]:
            alpha = _resize(alpha, fg.shape[:2])
        s = self.crop_size
        h, w = alpha.shape
        if min(h, w) < s:  # small foregrounds are upscaled to cover the crop
            scale = s / min(h, w)
            size = (max(s, round(h * scale)), max(s, round(w * scale)))
            fg, alpha = _resize(fg, size), _resize(alpha, size)
        y, x = self._crop_box(alpha, rng)
        fg, alpha = fg[y:y + s, x:x + s], alpha[y:y + s, x:x + s]
        if self.flip and rng.random() < 0.5:
            fg, alpha = fg[:, ::-1], alpha[:, ::-1]
        fg = photometric_jitter(np.ascontiguousarray(fg), rng, self.jitter)
        alpha = np.ascontiguousarray(alpha)
        fg = pad_foreground(fg, alpha, self.fg_pad_iterations, self.fg_pad_kernel)

        bg = load_rgb(os.path.join(self.bg_dir, self.backgrounds[rng.integers(len(self.backgrounds))]))
        bh, bw = bg.shape[:2]
        scale = s / min(bh, bw)
        if scale > 1:
            bg = _resize(bg, (max(s, round(bh * scale)), max(s, round(bw * scale))))
        by, bx = rng.integers(0, bg.shape[0] - s + 1), rng.integers(0, bg.shape[1] - s + 1)
        bg = bg[by:by + s, bx:bx + s]
        if self.flip and rng.random() < 0.5:
            bg = bg[:, ::-1]
        bg = photometric_jitter(np.ascontiguousarray(bg), rng, self.jitter)

        a3 = alpha[..., None]
        image = a3 * fg + (1 - a3) * bg
        tri = trimap_from_alpha(alpha, rng, *self.trimap_px)
        return {
            "image": _channels_first(image) * 2 - 1,
            "trimap": torch.from_numpy(tri.astype(np.float32) / 127.5 - 1)[None],
            "foreground": _channels_first(fg) * 2 - 1,
            "alpha": torch.from_numpy(alpha)[None] * 2 - 1,
            "unknown": torch.from_numpy((tri == UNKNOWN).astype(np.float32))[None],
        }


def _channels_first(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))


class ValidationSet:
    """Held-out images with their trimaps and ground-truth alphas, paired by file stem.

    E.g. Composition-1k test: --val-images merged --val-trimaps trimaps --val-alphas alpha_copy."""

    def __init__(self, images: str, trimaps: str, alphas: str, limit: int | None = None):
        tris = {_stem(n): n for n in _list(trimaps)}
        alps = {_stem(n): n for n in _list(alphas)}
        self.items = [(os.path.join(images, n), os.path.join(trimaps, tris[_stem(n)]),
                       os.path.join(alphas, alps[_stem(n)]))
                      for n in _list(images) if _stem(n) in tris and _stem(n) in alps]
        if limit:
            self.items = self.items[:limit]
        if not self.items:
            raise FileNotFoundError(f"no image/trimap/alpha triples in {images}, {trimaps}, {alphas}")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        for ip, tp, ap in self.items:
            image = np.asarray(Image.open(ip).convert("RGB"))
            tri = np.asarray(Image.open(tp).convert("L"))
            tri = snap(tri)
            alpha = np.asarray(Image.open(ap).convert("L"), dtype=np.float32) / 255.0
            yield os.path.basename(ip), image, tri, alpha


def sad(pred_alpha: np.ndarray, gt_alpha: np.ndarray, trimap: np.ndarray) -> float:
    """DIM protocol: sum of absolute differences over the unknown region, / 1000."""
    m = trimap == UNKNOWN
    return float(np.abs(pred_alpha[m] - gt_alpha[m]).sum() / 1000.0)
