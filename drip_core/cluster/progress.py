"""The batch progress bar (tqdm): images done / failed, images per second and ETA."""
from __future__ import annotations

import sys


class BatchProgress:
    def __init__(self, total: int, *, quiet: bool = False, skipped: int = 0, desc: str = "drip-matte"):
        from tqdm import tqdm
        self.quiet = quiet
        self.done = 0
        self.failed = 0
        self.skipped = skipped
        # Drawn on a terminal only, so logs stay readable (failures and the summary line are
        # printed either way).
        tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True,
                        disable=quiet or not tty, smoothing=0.1)
        self._postfix()

    def _postfix(self) -> None:
        fields = {"done": self.done, "failed": self.failed}
        if self.skipped:
            fields["skipped"] = self.skipped
        self.bar.set_postfix(fields, refresh=False)

    def update(self, result: dict) -> None:
        if result["status"] == "done":
            self.done += 1
        else:
            self.failed += 1
            self.write(f"drip-matte: {result['image']}: {result['message']}")
        self._postfix()
        self.bar.update(1)

    def restart_clock(self) -> None:
        """Rates and ETA from now on (called once Ray is up: its start-up is not matting time)."""
        if self.bar.n == 0:
            self.bar.reset()

    def write(self, line: str) -> None:
        # failures are printed even with --quiet, as the batch always did; above the bar
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
