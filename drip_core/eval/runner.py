"""Run an engine over an alphamatting.com-style folder and score it with the DIM metrics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dataset import TRIMAPS, load_sample, sample_names
from .metrics import alpha_errors, to_uint8

COLUMNS = ("sad", "mse", "grad", "conn", "seconds")


@dataclass
class RunResult:
    engine: str
    trimap: str
    rows: list[dict] = field(default_factory=list)  # one per image: name + COLUMNS

    def mean(self) -> dict:
        return {k: float(np.mean([r[k] for r in self.rows])) if self.rows else float("nan") for k in COLUMNS}

    def as_dict(self) -> dict:
        return {"engine": self.engine, "trimap": self.trimap, "images": self.rows, "mean": self.mean()}


def evaluate(data: str | Path, engine, trimap: str = "Trimap1", limit: int | None = None,
             on_row=None) -> RunResult:
    """Matte every image with ``engine`` (an Engine instance); alpha is quantised to uint8 first."""
    names = sample_names(data)[:limit] if limit else sample_names(data)
    result = RunResult(getattr(engine, "name", str(engine)), trimap)
    for name in names:
        s = load_sample(data, name, trimap)
        t0 = time.perf_counter()
        matte = engine.matte(s.image, s.trimap)
        seconds = time.perf_counter() - t0
        e = alpha_errors(to_uint8(matte.alpha), s.gt, s.trimap)
        row = {"name": name, **e.as_dict(), "seconds": seconds}
        result.rows.append(row)
        if on_row:
            on_row(row)
    return result


def trimap_list(choice: str) -> list[str]:
    return list(TRIMAPS) if choice == "all" else [choice]


def format_row(row: dict) -> str:
    return (f"{row['name']:<8} {row['sad']:9.3f} {row['mse'] * 1e3:10.3f} {row['grad']:9.3f} "
            f"{row['conn']:9.3f} {row['seconds']:8.3f}")


HEADER = f"{'image':<8} {'SAD':>9} {'MSEx1e3':>10} {'Grad':>9} {'Conn':>9} {'seconds':>8}"
