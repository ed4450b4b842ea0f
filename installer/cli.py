"""The installer's command line: parse options, show the plan, ask (in a terminal), run.

Exit codes: 0 done (or nothing to do), 1 a step failed (the message says which and why),
2 bad arguments or nothing to install into (no GIMP 3 profile), 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import model_import, plan as plan_mod, profiles, venv as venv_mod
from .plan import InstallError, Options
from .torch_choice import TORCH_CHOICES

BOOTSTRAP_ENV = "DRIP_INSTALLER_GUI_BOOTSTRAPPED"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="install.py",
        description="Install Drip Matting: a private Python environment with the matting server, the GIMP 3 "
                    "plug-in in every GIMP 3 profile, and optionally a DRIP model. Run it again at any time: "
                    "what is already in place is left alone.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--uninstall", action="store_true",
                      help="remove the plug-in folders, the environment and the settings (models are kept)")
    mode.add_argument("--upgrade", action="store_true",
                      help="rebuild the environment and reinstall the software and plug-in; models are kept")
    p.add_argument("--purge", action="store_true", help="with --uninstall: also remove downloaded and imported models")
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument("-y", "--yes", action="store_true", help="ask no questions")
    p.add_argument("--gui", action="store_true", help="open the installer window (PyQt6)")
    p.add_argument("--venv", metavar="DIR", help=f"the server's Python environment (default: {plan_mod.default_venv()})")
    p.add_argument("--python", metavar="PY", default=sys.executable,
                   help="the Python (3.11+) to build the environment with (default: this one)")
    p.add_argument("--engine", choices=plan_mod.ENGINES, default="auto",
                   help="auto: DRIP and the classical engine (default); classical: no torch, small and fast to install")
    p.add_argument("--torch", choices=TORCH_CHOICES, default="auto",
                   help="torch build: auto (CUDA with an NVIDIA GPU, MPS on macOS, else CPU), cpu, cuda, or skip")
    p.add_argument("--gimp-profile", metavar="DIR", action="append", default=[],
                   help="a GIMP 3 profile folder, e.g. ~/.config/GIMP/3.0 (repeatable; default: every one found)")
    p.add_argument("--drip-model", metavar="PATH", help="a DRIP model folder (with drip.json) to import")
    p.add_argument("--model-mode", choices=("copy", "link"), default="copy",
                   help="copy the model into the data folder (default) or use it where it is (link)")
    p.add_argument("--download-model", action="store_true", help="download the DRIP model from the configured source")
    p.add_argument("--model-url", metavar="URL", help="download the DRIP model archive (zip/tar) from URL")
    p.add_argument("--model-sha256", metavar="HEX", help="expected sha256 of the --model-url archive")
    p.add_argument("--source", metavar="PATH",
                   help="drip-matting wheel or source folder to install (default: the bundled wheel or this tree)")
    p.add_argument("--pip-args", metavar="ARGS", default=os.environ.get("DRIP_INSTALLER_PIP_ARGS", ""),
                   help="extra pip arguments, one string, e.g. --pip-args='--no-index --find-links DIR' "
                        "(offline installs, mirrors, proxies)")
    p.add_argument("--system-site-packages", action="store_true",
                   help="let the environment see the packages of --python (e.g. a torch you already have)")
    return p


def options_from(args: argparse.Namespace) -> Options:
    return Options(venv=args.venv, python=args.python, torch=args.torch, engine=args.engine,
                   gimp_profiles=list(args.gimp_profile), drip_model=args.drip_model, model_mode=args.model_mode,
                   download_model=args.download_model, model_url=args.model_url, model_sha256=args.model_sha256,
                   source=args.source, pip_args=shlex.split(args.pip_args or ""),
                   system_site_packages=args.system_site_packages, upgrade=args.upgrade, purge=args.purge)


def ask(question: str, default: bool = True) -> bool:
    suffix = " [Y/n] " if default else " [y/N] "
    while True:
        try:
            answer = input(question + suffix).strip().lower()
        except EOFError:
            return default
        if not answer:
            return default
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False


def interactive_choices(options: Options) -> None:
    """Questions a terminal user gets when nothing was said on the command line."""
    if not options.gimp_profiles:
        found = profiles.find_profiles()
        if len(found) > 1 and not ask("Install into all of these GIMP profiles?\n  "
                                      + "\n  ".join(p.label() for p in found) + "\n"):
            options.gimp_profiles = [str(p.path) for p in found if ask(f"  {p.label()}?")]
    if options.engine != "classical" and not (options.drip_model or options.download_model or options.model_url):
        try:
            path = input("DRIP model folder to import (Enter for none; the classical engine works without): ").strip()
        except EOFError:
            path = ""
        if path:
            options.drip_model = path


def finish_text(p) -> str:
    import drip_protocol as protocol
    lines = ["", "Drip Matting is installed."]
    lines.append("In GIMP: restart GIMP, open an image, select the object roughly (or paint a trimap), then "
                 "Filters > Drip Matting. The first run starts the matting server; later runs reuse it.")
    if any(t.kind == "flatpak" for t in getattr(p, "targets", [])):
        lines.append("Flatpak GIMP: allow it to start the server on the host once with\n"
                     "  flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP")
    lines.append(f"Server log: {protocol.default_log_file()}")
    lines.append("Uninstall: python installer/install.py --uninstall")
    return "\n".join(lines)


def run_gui(argv: list[str], args) -> int:
    try:
        import PyQt6.QtWidgets  # noqa: F401
    except ImportError:
        if os.environ.get(BOOTSTRAP_ENV):
            print("PyQt6 could not be loaded even in the installer's environment; use the terminal installer "
                  "(drop --gui).", file=sys.stderr)
            return 2
        return bootstrap_gui(argv, args)
    from . import gui
    return gui.main(argv)


def bootstrap_gui(argv: list[str], args) -> int:
    """PyQt6 is missing here: build the environment, put PyQt6 in it, and re-run there."""
    options = options_from(args)
    venv = Path(options.venv).expanduser().absolute() if options.venv else plan_mod.default_venv()
    print(f"The installer window needs PyQt6; installing it into {venv} first ...")
    try:
        if not venv_mod.is_venv(venv):
            venv_mod.check_python(options.python)
            venv_mod.create_venv(venv, options.python, print, system_site_packages=options.system_site_packages)
        venv_mod.pip_install(venv, ["PyQt6>=6.5"], print, extra_args=options.pip_args)
    except (venv_mod.VenvError, InstallError) as exc:
        print(f"error: {exc}\nUse the terminal installer instead (drop --gui).", file=sys.stderr)
        return 1
    script = str(Path(__file__).with_name("install.py"))
    extra = [] if any(a.startswith("--python") for a in argv) else ["--python", options.python]
    env = {**os.environ, BOOTSTRAP_ENV: "1"}
    return subprocess.call([str(venv_mod.venv_python(venv)), script, *argv, *extra], env=env)


def free_mb(path: Path) -> float:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free / 1e6
    except OSError:
        return float("inf")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.purge and not args.uninstall:
        parser().error("--purge only goes with --uninstall")
    if args.gui:
        return run_gui(argv, args)
    options = options_from(args)
    interactive = not args.yes and not args.dry_run and sys.stdin.isatty()
    try:
        if args.uninstall:
            p = plan_mod.build_uninstall(options)
        else:
            if interactive:
                interactive_choices(options)
            p = plan_mod.build_install(options)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(p.describe())
    pending = p.pending()
    if args.dry_run:
        print("\n(dry run: nothing was changed)")
        return 0
    if not pending and not args.uninstall and p.all_recorded():
        print("\nNothing to do: everything is already in place.")
        return 0
    if not args.uninstall:
        free = free_mb(p.venv)
        if free < p.disk_mb:
            print(f"\nerror: about {p.disk_mb / 1000:.1f} GB of disk space is needed in {p.venv.parent}, but only "
                  f"{free / 1000:.1f} GB is free. Free some space or choose another place with --venv DIR.",
                  file=sys.stderr)
            return 2
    if interactive and not ask("\nProceed?"):
        print("Nothing was changed.")
        return 1
    try:
        p.run()
    except KeyboardInterrupt:
        print("\ninterrupted: nothing is left half-installed; run the installer again to finish", file=sys.stderr)
        return 130
    except (InstallError, venv_mod.VenvError, model_import.ModelError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        print("The installation did not finish; no half-installed plug-in was left behind. "
              "Fix the problem and run the installer again.", file=sys.stderr)
        return 1
    if args.uninstall:
        print("\nDrip Matting is uninstalled.")
        for k in getattr(p, "kept", []):
            print(k[0].upper() + k[1:] + ".")
    else:
        print(finish_text(p))
    return 0
