"""Run an engine over a benchmark folder and score it with the DIM metrics (full resolution,
unknown region) and, where the dataset has ground-truth foregrounds, the foreground error."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .dataset import TRIMAPS
from .metrics import alpha_errors, foreground_errors, to_uint8

COLUMNS = ("sad", "mse", "grad", "conn", "seconds")
FG_COLUMNS = ("fg_sad", "fg_mse")


@dataclass
class RunResult:
    engine: str
    trimap: str
    rows: list[dict] = field(default_factory=list)  # one per image: name + COLUMNS (+ FG_COLUMNS)

    def mean(self) -> dict:
        keys = [k for k in COLUMNS + FG_COLUMNS if self.rows and all(k in r for r in self.rows)]
        if not self.rows:
            return {k: float("nan") for k in COLUMNS}
        return {k: float(np.mean([r[k] for r in self.rows])) for k in keys}

    def as_dict(self) -> dict:
        return {"engine": self.engine, "trimap": self.trimap, "images": self.rows, "mean": self.mean()}


def score(sample, matte, fg_variant: str = "drip") -> dict:
    """Metrics of one matte; alpha and foreground are quantised to uint8 first, as saved PNGs."""
    row = alpha_errors(to_uint8(matte.alpha), sample.gt, sample.trimap).as_dict()
    if sample.fg is not None:
        pred_fg = to_uint8(matte.foreground) / 255.0
        e = foreground_errors(pred_fg, sample.fg / 255.0, sample.gt / 255.0, sample.trimap,
                              variant=fg_variant)
        row.update(fg_sad=e.sad, fg_mse=e.mse)
    return row


def evaluate_layout(layout, engine, limit: int | None = None, on_row=None, fg_variant: str = "drip",
                    label: str = "") -> RunResult:
    """Matte every image of ``layout`` (see layouts.py) with ``engine`` (an Engine instance)."""
    names = layout.names()[:limit] if limit else layout.names()
    result = RunResult(getattr(engine, "name", str(engine)), label)
    for name in names:
        s = layout.load(name)
        t0 = time.perf_counter()
        matte = engine.matte(s.image, s.trimap)
        seconds = time.perf_counter() - t0
        row = {"name": name, **score(s, matte, fg_variant), "seconds": seconds}
        result.rows.append(row)
        if on_row:
            on_row(row)
    return result


def trimap_list(choice: str) -> list[str]:
    return list(TRIMAPS) if choice == "all" else [choice]


def format_row(row: dict, width: int = 8) -> str:
    text = (f"{row['name']:<{width}} {row['sad']:9.3f} {row['mse'] * 1e3:10.3f} {row['grad']:9.3f} "
            f"{row['conn']:9.3f} {row['seconds']:8.3f}")
    if "fg_sad" in row:
        text += f" {row['fg_sad']:9.3f} {row['fg_mse'] * 1e3:10.3f}"
    return text


def header(width: int = 8, foreground: bool = False) -> str:
    text = f"{'image':<{width}} {'SAD':>9} {'MSEx1e3':>10} {'Grad':>9} {'Conn':>9} {'seconds':>8}"
    return text + (f" {'fgSAD':>9} {'fgMSEx1e3':>10}" if foreground else "")


HEADER = header()
