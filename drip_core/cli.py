"""`drip-matte`: matte photos from the command line, in-process or through a server.

What it reads and refuses (the same words are in `drip-matte --help`):

* A trimap is white (foreground), black (background) and anything else unknown, so soft brush
  edges mean "unsure". A JPEG trimap is lossy: its values are snapped to the nearest of 0, 128
  and 255 instead (below 64 black, above 191 white, grey between), with a warning on stderr, so
  compression noise never turns a pixel unsure. Save trimaps as PNG to keep them exact.
* A mask is white where the object is selected. One with transparency and a uniform visible
  colour (a white layer) gives its alpha as the selection. A mask that selects nothing or the
  whole image (no edge to matte) is refused, and so is a colour picture as a mask or trimap.
* Outputs are PNG or TIFF by their names: any other name (out.jpg: no alpha, lossy) is refused
  before any work.
* Every error is one line: what happened, then what to do, each said once (errors.command_line_text).
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from drip_protocol import AUTO_BAND, DEFAULT_BAND_RADIUS, ENGINES, ProtocolError

from .errors import UserError, command_line_text
from .lazy import lazy_names

# Everything else is imported where a job first needs it: parsing the command line, a server
# job or a classical job must not pay for numpy, scipy, the engines or torch that it never runs
# (tests/test_cli_speed_guards.py holds this). The readers stay reachable as cli.read_trimap & co.
__getattr__ = lazy_names(__package__, {"read_trimap": "guides", "read_mask_as_trimap": "guides",
                                       "read_image": "image_io", "output_problem": "image_io"},
                         owner=__name__)


def band_radius(text: str):
    """--band-radius: 'auto' or a whole number of pixels (0 or more)."""
    if text.strip().lower() == AUTO_BAND:
        return AUTO_BAND
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not 'auto' or a whole number of pixels") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or 0 or more, not {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="drip-matte",
        description="Cut out the foreground of a photo given a trimap (white = foreground, "
                    "black = background, grey = unknown).")
    p.add_argument("image", nargs="?", help="input photo")
    p.add_argument("--trimap", help="trimap image of the same size: white = foreground, black = background, "
                                    "anything else = unknown. A JPEG trimap (lossy) is snapped to the "
                                    "nearest of 0, 128 and 255 instead (with a warning), so compression "
                                    "noise never makes a pixel unsure")
    p.add_argument("--mask", help="instead of --trimap: a selection mask (white = selected; in a one-colour "
                                  "image with transparency, its alpha), turned into a trimap with "
                                  "--band-radius, exactly as the GIMP plug-in does")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto = DRIP when a model is configured, else classical (default)")
    p.add_argument("--drip-model", help="DRIP model folder (default: from the user config)")
    p.add_argument("--alpha", help="write the alpha matte here (grey; .png, .tif or .tiff)")
    p.add_argument("--foreground",
                   help="write the decontaminated foreground colours here (.png, .tif or .tiff)")
    p.add_argument("--rgba", help="write the cut-out (foreground + alpha) here (.png, .tif or .tiff)")
    p.add_argument("--input-dir", help="batch mode: folder of photos")
    p.add_argument("--trimap-dir", help="batch mode: folder of trimaps with the same file names")
    p.add_argument("--mask-dir", help="batch mode, instead of --trimap-dir: folder of selection masks "
                                      "(white = selected) with the same file names, turned into trimaps "
                                      "with --band-radius")
    p.add_argument("--band-radius", type=band_radius, default=DEFAULT_BAND_RADIUS,
                   help="with --mask / --mask-dir: 'auto' (default, as in the GIMP plug-in: a smart band, "
                        "wide over hair and mixed colours, narrow on crisp edges) or the half-width in "
                        "pixels of a fixed unsure band around the mask's edge")
    p.add_argument("--output-dir", help="batch mode: writes alpha/ and foreground/ here (and report.json)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="batch mode on Ray (needs the 'cluster' extra): alone, a local Ray instance on this "
                        "machine; 'auto' joins the cluster named by RAY_ADDRESS; ray://HOST:PORT uses Ray "
                        "Client. Reruns skip images whose outputs are complete")
    p.add_argument("--ray-cpus", type=int,
                   help="with --ray alone: CPUs for the local Ray instance (default: all)")
    p.add_argument("--ray-actors", type=int,
                   help="with --ray and DRIP: model-holding actors (default: one per GPU; CPU-only clusters: "
                        "one per 4 CPUs)")
    p.add_argument("--server", default="none",
                   help="none = run in this process (default); auto = use or start a local server; HOST:PORT")
    p.add_argument("--token", help="token for --server HOST:PORT (default: from the discovery file)")
    p.add_argument("--tls-ca", metavar="CERT",
                   help="for a TLS server at --server HOST:PORT: the CA (or the server's "
                        "self-signed certificate) to verify it with")
    p.add_argument("--discovery-file", help="server discovery file (default: per-user state folder)")
    p.add_argument("--demo", metavar="OUTDIR",
                   help="matte the bundled demo scene and write the results to OUTDIR")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p.parse_args(argv)


# --- reading and writing -----------------------------------------------------------------

def check_outputs(args) -> None:
    """Before any work: each output's name must be a format that holds what is written there."""
    from .image_io import output_problem
    if not (args.alpha or args.foreground or args.rgba):
        raise UserError("say where to write the result: --alpha, --foreground and/or --rgba")
    for path, what, alpha in ((args.alpha, "the alpha matte", False),
                              (args.foreground, "the foreground", False),
                              (args.rgba, "the cut-out (colours + alpha)", True)):
        problem = output_problem(path, what, alpha) if path else None
        if problem:
            raise UserError(problem)


def write_image(path: str, array) -> None:
    """PNG or TIFF by the suffix, at the array's depth (docs: drip_core/image_io.py)."""
    from .image_io import ImageFileError, write
    try:
        write(path, array)
    except ImageFileError as exc:
        raise UserError(str(exc)) from None


# --- running the engine ------------------------------------------------------------------

class ProgressLine:
    """A one-line progress bar on stderr (plain lines when not a terminal)."""

    def __init__(self, quiet: bool, prefix: str = ""):
        self.quiet = quiet
        self.prefix = prefix
        self.tty = sys.stderr.isatty()
        self.last_stage = None

    def __call__(self, fraction: float, stage: str = "", message: str = "") -> None:
        if self.quiet:
            return
        if self.tty:
            filled = int(round(fraction * 30))
            sys.stderr.write(f"\r{self.prefix}[{'#' * filled}{'.' * (30 - filled)}] "
                             f"{fraction * 100:5.1f}% {stage:<24.24}")
            sys.stderr.flush()
        elif stage != self.last_stage:
            sys.stderr.write(f"{self.prefix}{fraction * 100:5.1f}% {stage}\n")
        self.last_stage = stage

    def done(self) -> None:
        if not self.quiet and self.tty:
            sys.stderr.write("\n")


class Runner:
    """Runs mattes in this process or through a server; same results either way."""

    def __init__(self, args):
        self.args = args
        self.client = None
        self.noted = False
        if args.server == "none":
            return
        from .client import connect, connect_address
        if args.server == "auto":
            extra = ["--drip-model", args.drip_model] if args.drip_model else []
            self.client = connect(args.discovery_file, spawn=True, server_args=extra)
        else:
            host, _, port = args.server.rpartition(":")
            if not host or not port.isdigit():
                raise UserError(f"--server must be none, auto or HOST:PORT, got '{args.server}'")
            self.client = connect_address(host, int(port), args.token, args.discovery_file,
                                          cafile=args.tls_ca)

    def warm_up(self) -> threading.Thread | None:
        """Loads the classical engine (and the trimap readers) in a thread while the caller decodes
        the photo: Pillow decodes without holding the GIL, so on two cores these imports (mostly
        scipy) take no time of their own. None through a server, which holds its own engines, and
        for DRIP, whose model is loaded where the job has always loaded it."""
        if self.client is not None:
            return None
        thread = threading.Thread(target=_load_classical, args=(self.args.engine, self.args.drip_model),
                                  name="drip-matte-warm-up", daemon=True)
        thread.start()
        return thread

    def matte(self, image, trimap, progress, with_foreground: bool = True):
        """(foreground, alpha) in the image's own sample type, in-process or through the server;
        in-process, ``with_foreground`` False gives no foreground (None): only the alpha is written."""
        if self.client is not None:
            fg, alpha, info = self.client.matte(image, trimap, engine=self.args.engine, progress=progress,
                                                return_info=True)
            self.note(info.get("note", ""))
            self.tell(info.get("notes") or [])
            return fg, alpha
        from .engines import resolve_engine
        engine, note = resolve_engine(self.args.engine, drip_model=self.args.drip_model)
        self.note(note)
        result = engine.matte(image, trimap, progress=progress, dtype=image.dtype,
                              with_foreground=with_foreground)
        self.tell(result.notes)
        return result.foreground, result.alpha

    def note(self, text: str) -> None:
        if text and not self.noted and not self.args.quiet:
            print(f"drip-matte: using {text}", file=sys.stderr)
            self.noted = True

    @staticmethod
    def tell(notes) -> None:
        """How an unusual result was made (the engine's notes): said even with --quiet, since the
        result is not what a plain run gives."""
        for text in notes:
            print(f"drip-matte: note: {text}", file=sys.stderr)

    def close(self):
        if self.client is not None:
            self.client.close()


def _load_classical(name: str, drip_model: str | None) -> None:
    try:
        from . import guides  # noqa: F401 - the trimap readers
        from .engines import get_engine, intended_engine
        if intended_engine(name, drip_model) == "classical":
            get_engine("classical")  # kept warm by the registry for Runner.matte
    except Exception:  # noqa: BLE001 - the job meets the same error itself, where it always has
        pass


def run_single(args, runner: Runner) -> None:
    if args.trimap and args.mask:
        raise UserError("both --trimap and --mask were given, but one guide is used: drop --mask to use the "
                        "trimap as painted, or drop --trimap to build one from the mask's selection")
    if not (args.trimap or args.mask):
        raise UserError("a trimap is needed: --trimap TRIMAP.png (or a selection: --mask MASK.png)")
    check_outputs(args)
    warm_up = runner.warm_up()
    try:
        from .image_io import read_image
        image = read_image(args.image)
        from .guides import read_mask_as_trimap, read_trimap
        if args.mask:
            trimap = read_mask_as_trimap(args.mask, image, args.band_radius)
        else:
            trimap = read_trimap(args.trimap, image.shape)
    finally:
        if warm_up is not None:
            warm_up.join()  # never left importing while the process ends
    bar = ProgressLine(args.quiet)
    fg, alpha = runner.matte(image, trimap, bar, with_foreground=bool(args.foreground or args.rgba))
    bar.done()
    write_outputs(args.alpha, args.foreground, args.rgba, fg, alpha)


def write_outputs(alpha_path, fg_path, rgba_path, fg, alpha) -> None:
    if alpha_path:
        write_image(alpha_path, alpha)
    if fg_path:
        write_image(fg_path, fg)
    if rgba_path:
        import numpy as np
        write_image(rgba_path, np.dstack([fg, alpha.astype(fg.dtype, copy=False)]))


def run_batch(args, runner: Runner) -> int:
    from .cluster import atomic
    from .cluster import jobs as batch
    from .cluster.progress import BatchProgress
    from .cluster.report import Report
    if args.trimap_dir and args.mask_dir:
        raise UserError("both --trimap-dir and --mask-dir were given, but one guide is used per photo: drop "
                        "one of them")
    if not args.output_dir or not (args.trimap_dir or args.mask_dir):
        raise UserError("batch mode needs --input-dir, one of --trimap-dir or --mask-dir, and --output-dir")
    guide_dir, kind = (args.trimap_dir, "trimap") if args.trimap_dir else (args.mask_dir, "mask")
    jobs = batch.make_jobs(args.input_dir, guide_dir, kind, args.band_radius, args.output_dir)
    # The local batch recomputes everything, as it always has; a Ray run skips complete outputs.
    plan = batch.plan(jobs, skip_complete=bool(args.ray))
    settings = {"input_dir": args.input_dir, f"{kind}_dir": guide_dir}
    if kind == "mask":
        settings["band_radius"] = args.band_radius
    report = Report(args.output_dir, mode="ray" if args.ray else "local", engine=args.engine,
                    total=plan.total, skipped=plan.skipped, settings=settings)
    progress = BatchProgress(len(plan.jobs) + len(plan.clashes), quiet=args.quiet, skipped=len(plan.skipped))
    try:
        for name, message in plan.clashes:
            result = batch.failure(name, "name_clash", message)
            report.add(result)
            progress.update(result)
        if args.ray:
            from .cluster import ray_runner
            ray_runner.run(plan.jobs, report, progress, engine=args.engine, drip_model=args.drip_model,
                           address=None if args.ray == "local" else args.ray, cpus=args.ray_cpus,
                           actors=args.ray_actors,
                           announce=progress.write if not args.quiet else lambda _: None)
        else:
            for job in plan.jobs:
                result = _local_job(job, runner)
                report.add(result)
                progress.update(result)
    finally:
        progress.close()
        report.write()
    for sub in batch.OUTPUT_KINDS:  # temporary files of writers that were killed
        atomic.remove_stale_temps(os.path.join(args.output_dir, sub))
    if not args.quiet:
        print(f"drip-matte: {report.summary()}", file=sys.stderr)
    return 1 if report.failed else 0


def _local_job(job, runner: Runner) -> dict:
    from .cluster import jobs as batch
    try:
        image, trimap = batch.load_inputs(job)
        fg, alpha = runner.matte(image, trimap, None)
        batch.write_matte(job, fg, alpha)
        return {"image": job.name, "status": "done"}
    except (UserError, ProtocolError) as exc:
        return batch.failure(job.name, getattr(exc, "code", "bad_request"),
                             command_line_text(exc, runner.args.server))


def run_demo(args, runner: Runner) -> None:
    import numpy as np

    from .demo_scene import make_scene, side_by_side
    from .eval.metrics import sad
    from .trimaps.values import UNKNOWN
    out = Path(args.demo)
    image, trimap, alpha_gt, _ = make_scene()
    bar = ProgressLine(args.quiet)
    fg, alpha = runner.matte(image, trimap, bar)
    bar.done()
    write_image(str(out / "image.png"), image)
    write_image(str(out / "trimap.png"), trimap)
    write_outputs(str(out / "alpha.png"), str(out / "foreground.png"), str(out / "cutout.png"), fg, alpha)
    side_by_side(image, trimap, alpha / 255.0, fg / 255.0).save(out / "side_by_side.png")
    gt_u8 = np.clip(np.rint(alpha_gt * 255), 0, 255).astype(np.uint8)
    print(f"Demo done: {out.resolve()}")
    print("  side_by_side.png  photo | trimap | alpha | cut-out")
    print("  alpha.png, foreground.png, cutout.png (RGBA), image.png, trimap.png")
    grey_guess = np.where(trimap == UNKNOWN, 128, trimap).astype(np.uint8)
    print(f"  alpha SAD vs ground truth: {sad(alpha, gt_u8, trimap):.2f} "
          f"(the trimap's own grey guess scores {sad(grey_guess, gt_u8, trimap):.2f})")


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> None:
    """Lets this short-lived process reuse the memory its arrays free instead of handing it back
    at once: by default glibc unmaps a freed block of 128 kB and up, and the next array of that
    size is faulted in and zeroed by the kernel page by page again, which a large photo's many
    temporaries pay for over and over (kernel time). Blocks under 32 MB (glibc's largest
    threshold) now come from the heap, and up to 1 GB freed at its top stays there. Elsewhere
    than glibc (macOS, Windows; musl ignores it) nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def main(argv=None) -> int:
    args = parse_args(argv)
    keep_freed_memory()
    modes = [bool(args.demo), bool(args.input_dir), bool(args.image)]
    runner = None
    try:
        if sum(modes) != 1:
            raise UserError("give one of: IMAGE --trimap T, --input-dir ..., or --demo OUTDIR (see --help)")
        if args.ray and (not args.input_dir or args.server != "none"):
            raise UserError("--ray is for batch mode (--input-dir) and runs the engines on the cluster, "
                            "not --server")
        runner = Runner(args)
        if args.demo:
            run_demo(args, runner)
            return 0
        if args.input_dir:
            return run_batch(args, runner)
        run_single(args, runner)
        return 0
    except (UserError, ProtocolError) as exc:
        print(f"drip-matte: {command_line_text(exc, args.server)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drip-matte: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"drip-matte: {command_line_text(ProtocolError('out_of_memory', 'out of memory'))}",
              file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - a bug still gets one line, not a traceback
        bug = ProtocolError("internal", f"internal error ({exc.__class__.__name__}: {exc})")
        print(f"drip-matte: {command_line_text(bug)}", file=sys.stderr)
        return 4
    finally:
        if runner is not None:
            runner.close()


if __name__ == "__main__":
    sys.exit(main())
