"""OUTPUT/report.json: what a batch run did to every image, and its one-line summary.

Every image of the input folder is accounted for exactly once: matted in this run
(``done``), already complete from an earlier run (``skipped``), or ``failed`` with a stable
error code and a message. The exit code of drip-matte is non-zero when anything failed.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from . import atomic, storage

REPORT_NAME = "report.json"
FORMAT_VERSION = 1


class Report:
    def __init__(self, output_dir: str, *, mode: str, engine: str, total: int, skipped=(), settings=None):
        self.output_dir = output_dir
        self.mode = mode
        self.engine = engine
        self.total = total
        self.skipped = sorted(skipped)
        self.settings = dict(settings or {})
        self.done: dict[str, float] = {}
        self.failures: dict[str, dict] = {}
        self.started = datetime.now(timezone.utc)
        self._t0 = time.perf_counter()

    def add(self, result: dict) -> None:
        name = result["image"]
        # a name is recorded once: a retried task's second answer cannot count twice
        if name in self.done or name in self.failures:
            return
        if result["status"] == "done":
            self.done[name] = result.get("seconds", 0.0)
        else:
            self.failures[name] = {"image": name, "code": result["code"], "message": result["message"]}

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._t0

    def path(self) -> str:
        return storage.join(self.output_dir, REPORT_NAME)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "mode": self.mode,
            "engine": self.engine,
            **self.settings,
            "output_dir": self.output_dir,
            "started": self.started.isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 3),
            "total": self.total,
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": self.failed,
            "images_per_second": round(len(self.done) / self.seconds, 3) if self.seconds > 0 else None,
            "failures": [self.failures[n] for n in sorted(self.failures)],
            "done_images": sorted(self.done),
            "skipped_images": self.skipped,
        }

    def write(self) -> str:
        data = json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        atomic.write_bytes(self.path(), data)
        return self.path()

    def summary(self) -> str:
        ok = len(self.done) + len(self.skipped)
        text = f"{ok}/{self.total} images matted in {self.seconds:.1f} s"
        if self.skipped:
            text += f" ({len(self.skipped)} already complete, skipped)"
        if self.failures:
            text += f", {self.failed} failed (see {self.path()})"
        return text + f" -> {self.output_dir}"
