"""The job list of a batch and what one job does.

A job is one input photo, paired by file name with a trimap (``--trimap-dir``) or a selection
mask (``--mask-dir`` + ``--band-radius``, turned into a trimap by the same rule as the GIMP
plug-in: ``drip_core.trimaps.build``). Its outputs are ``alpha/NAME.png`` and
``foreground/NAME.png`` under the output folder, the layout the local batch has always written.

Jobs are small (paths only): workers read their own inputs and write their own outputs, so
neither the driver nor the object store ever holds more than a few images.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from drip_protocol import ProtocolError

from ..errors import UserError, command_line_text
from ..guides import GuideError, print_warning, read_mask_as_trimap, read_trimap
from ..image_io import IMAGE_SUFFIXES, encode_png, read_image
from . import atomic, storage

OUTPUT_KINDS = ("alpha", "foreground")
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the last 12 bytes of every complete PNG


class JobError(ProtocolError):
    """One image failed, with a stable code for report.json."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message, hint="")


@dataclass(frozen=True)
class Job:
    name: str          # input file name
    image: str         # path or URI of the photo
    guide: str         # path or URI of its trimap or selection mask
    guide_kind: str    # "trimap" or "mask"
    band_radius: object  # for masks: "auto" (smart band) or the half-width of a fixed band, in pixels
    output_dir: str

    @property
    def output_name(self) -> str:
        return os.path.splitext(self.name)[0] + ".png"

    def output(self, kind: str) -> str:
        return storage.join(storage.join(self.output_dir, kind), self.output_name)


@dataclass
class Plan:
    jobs: list            # jobs to run
    skipped: list         # names whose outputs were already complete
    clashes: list         # (name, message): inputs that would overwrite another input's outputs
    total: int            # images found


def list_inputs(input_dir: str) -> list[str]:
    if not storage.is_dir(input_dir):
        raise UserError(f"not a folder: {input_dir}")
    names = [n for n in storage.list_files(input_dir)
             if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES and not n.startswith(".")]
    if not names:
        raise UserError(f"no images in {input_dir}")
    return names


def make_jobs(input_dir: str, guide_dir: str, guide_kind: str, band_radius, output_dir: str,
              names: list[str] | None = None) -> list[Job]:
    if not storage.is_dir(guide_dir):
        raise UserError(f"not a folder: {guide_dir}")
    names = list_inputs(input_dir) if names is None else names
    # absolute: Ray workers need not share the driver's working directory
    input_dir, guide_dir, output_dir = (d if storage.is_uri(d) else os.path.abspath(d)
                                        for d in (input_dir, guide_dir, output_dir))
    return [Job(n, storage.join(input_dir, n), storage.join(guide_dir, n), guide_kind, band_radius,
                output_dir)
            for n in names]


def is_complete(path: str) -> bool:
    """A PNG that exists and ends with its IEND chunk (a truncated file does not)."""
    n = storage.size(path)
    if not n or n < len(_PNG_END):
        return False
    try:
        return storage.read_tail(path, len(_PNG_END)) == _PNG_END
    except OSError:
        return False


def plan(jobs: list[Job], *, skip_complete: bool = True) -> Plan:
    """Which jobs to run: not those with complete outputs, and never two onto one output."""
    todo, skipped, clashes, owner = [], [], [], {}
    for job in jobs:
        first = owner.setdefault(job.output_name, job.name)
        if first != job.name:
            clashes.append((job.name, f"{job.name} and {first} would both write {job.output_name}; "
                                      "rename one of them"))
            continue
        if skip_complete and all(is_complete(job.output(k)) for k in OUTPUT_KINDS):
            skipped.append(job.name)
        else:
            todo.append(job)
    return Plan(todo, skipped, clashes, len(jobs))


# --- one job ------------------------------------------------------------------------------

def _read(path: str) -> np.ndarray:
    try:
        with storage.local_copy(path) as local:
            try:
                return read_image(local)
            except UserError as exc:  # name the remote path, not the temporary download
                raise JobError("bad_image", str(exc).replace(local, path)) from None
    except (OSError, RuntimeError) as exc:  # a remote read that failed
        raise JobError("bad_image", f"cannot read {path}: {exc}") from None


def load_inputs(job: Job, warn=None) -> tuple[np.ndarray, np.ndarray]:
    """(image H x W x 3 at its own depth, trimap uint8 H x W with 0/128/255), or JobError with a code.

    The guide is read and checked as drip-matte reads a single photo's --trimap / --mask (same
    checks, same words): a colour picture is refused, an RGBA mask's alpha is its selection, a JPEG
    trimap is snapped to 0/128/255 with a warning (``warn(line)``; default: printed on stderr)."""
    image = _read(job.image)
    kind = job.guide_kind
    if storage.size(job.guide) is None:
        raise JobError("missing_trimap", f"no {'trimap' if kind == 'trimap' else 'mask'} {job.guide}")
    say = warn or print_warning
    try:
        with storage.local_copy(job.guide) as local:
            named = lambda text: text.replace(local, job.guide)  # noqa: E731 - not the temporary download
            try:
                if kind == "mask":
                    trimap = read_mask_as_trimap(local, image, job.band_radius)
                else:
                    trimap = read_trimap(local, image.shape, warn=lambda line: say(named(line)))
            except GuideError as exc:
                raise JobError(exc.code, named(str(exc))) from None
            except UserError as exc:
                raise JobError("bad_trimap", named(str(exc))) from None
    except (OSError, RuntimeError) as exc:  # a remote read that failed
        raise JobError("bad_trimap", f"cannot read {job.guide}: {exc}") from None
    return image, trimap


def write_matte(job: Job, fg: np.ndarray, alpha: np.ndarray) -> None:
    # alpha last: a job counts as complete only when both exist, so a crash in between reruns it
    atomic.write_bytes(job.output("foreground"), encode_png(fg))
    atomic.write_bytes(job.output("alpha"), encode_png(alpha))


def run_job(job: Job, engine=None, *, engine_name: str = "classical", drip_model: str | None = None,
            device: str | None = None) -> dict:
    """Matte one job and write its outputs; failures come back as a result, never raise.

    ``engine`` is an already loaded engine (an actor's); otherwise the registry's warm instance
    for ``engine_name`` is used (loaded once per worker process).
    """
    start = time.perf_counter()
    warnings: list[str] = []

    def warn(line: str) -> None:
        warnings.append(line)
        print_warning(line)  # a Ray worker's stderr reaches the driver's terminal
    try:
        image, trimap = load_inputs(job, warn)
        if engine is None:
            from ..engines.registry import get_engine
            engine = get_engine(engine_name, drip_model=drip_model, device=device)
        result = engine.matte(image, trimap, dtype=image.dtype)  # outputs at the photo's own depth
        write_matte(job, result.foreground, result.alpha)
        done = {"image": job.name, "status": "done", "seconds": round(time.perf_counter() - start, 4)}
        return dict(done, warnings=warnings) if warnings else done
    except (ProtocolError, UserError) as exc:  # reported in drip-matte's words, as the local batch's
        return failure(job.name, getattr(exc, "code", "bad_request"), command_line_text(exc))
    except MemoryError:
        return failure(job.name, "out_of_memory",
                       command_line_text(ProtocolError("out_of_memory", "the photo did not fit in memory")))
    except Exception as exc:  # noqa: BLE001 - one image's bug must not stop the catalogue
        return failure(job.name, "internal",
                       command_line_text(ProtocolError("internal", f"{exc.__class__.__name__}: {exc}")))


def failure(name: str, code: str, message: str) -> dict:
    return {"image": name, "status": "failed", "code": code, "message": message}
