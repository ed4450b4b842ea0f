"""The installation as a list of small named steps: the Step and Plan types and running them.

A Plan is a list of Steps, each with a name, a ``done()`` check (already in the wanted state?)
and a ``run(ctx)`` that gets it there. ``plan.describe()`` is what --dry-run prints;
``plan.run(reporter)`` runs them in order. A step that is already done is skipped, so a second
run changes nothing. A step marked ``blocked`` cannot run as things are (the plug-in step
without a GIMP 3 profile): a dry run shows it as ``[stop]`` with what to do. If a step fails,
the plan's ``on_failure`` actions clean up before the error goes on to the caller.

The steps themselves are made by install_steps.py (``build_install``) and uninstall_steps.py
(``build_uninstall``). Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import manifest as manifest_mod
from . import profiles
from .torch_choice import TorchPlan


class InstallError(Exception):
    """A problem the user can fix; the message says how."""


class Reporter:
    """Where progress goes: the terminal here, signals in the window (gui.py)."""

    def log(self, text: str) -> None:
        print(text, flush=True)

    def step(self, index: int, total: int, title: str) -> None:
        self.log(f"[{index + 1}/{total}] {title}")

    def fraction(self, value: float) -> None:
        """Progress within the current step (0..1), for copies and downloads."""


@dataclass
class Context:
    reporter: Reporter
    record: dict                                   # the install manifest being updated

    def log(self, text: str) -> None:
        self.reporter.log(text)

    def save(self) -> None:
        manifest_mod.save(self.record)


@dataclass
class Step:
    name: str                                      # what --dry-run and the progress show
    done: Callable[[], bool]                       # already in the wanted state?
    run: Callable[[Context], None]                 # get there
    description: str = ""                          # why, shown after the name
    blocked: bool = False                          # cannot run as things are (only a dry run shows it)


@dataclass
class Plan:
    action: str                                    # "install" | "uninstall"
    steps: list[Step]
    summary: list[str]
    record: dict                                   # the manifest as loaded; steps update it
    on_failure: list[Callable[[Context], None]] = field(default_factory=list)
    finish: Callable[[Context], None] | None = None
    version: str = ""                              # the version an install puts in place
    venv: Path | None = None
    targets: list[profiles.Profile] = field(default_factory=list)
    model_path: str | None = None
    engine: str = ""                               # the engine set installed: options.ENGINE_SETS
    torch: TorchPlan | None = None
    disk_mb: float = 0.0
    kept: list[str] = field(default_factory=list)  # what an uninstall leaves, and why

    def pending(self) -> list[Step]:
        return [s for s in self.steps if not s.done()]

    def all_recorded(self) -> bool:
        """The manifest already says this version is completely installed."""
        return self.record.get("status") == "complete" and \
            self.record.get("installed_version") == self.version

    def describe(self) -> str:
        lines = list(self.summary)
        lines.append("Steps:")
        for s in self.steps:
            mark = "stop" if s.blocked else "ok  " if s.done() else "do  "
            lines.append(f"  [{mark}] {s.name}" + (f"  ({s.description})" if s.description else ""))
        return "\n".join(lines)

    def run(self, reporter: Reporter | None = None) -> int:
        """Do every pending step; returns how many steps changed something."""
        reporter = reporter or Reporter()
        ctx = Context(reporter, self.record)
        try:
            changed = self._run_steps(ctx)
            if self.finish is not None:
                self.finish(ctx)
        except BaseException:
            self._clean_up(ctx)
            raise
        return changed

    def _run_steps(self, ctx: Context) -> int:
        changed = 0
        total = len(self.steps)
        for i, s in enumerate(self.steps):
            ctx.reporter.step(i, total, s.name)
            if s.done():
                ctx.log("  already done")
            else:
                s.run(ctx)
                changed += 1
        return changed

    def _clean_up(self, ctx: Context) -> None:
        for undo in self.on_failure:
            try:
                undo(ctx)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning up
                ctx.log(f"  clean-up after the failure also failed: {exc}")
