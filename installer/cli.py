"""The installer's command line: parse options, show the plan, ask (in a terminal), run.

Exit codes: 0 done (or nothing to do; a dry run always, showing the plan), 1 a step failed (the
message says which and why), 2 bad arguments or nothing to install into (no GIMP 3 profile),
130 interrupted.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from . import model_import, profiles
from . import venv as venv_mod
from .common import COMMAND_ENV, free_mb, installer_command, options_from, parser
from .environment import prepare_venv
from .install_steps import build_install
from .options import Options, default_venv
from .plan import InstallError, Plan
from .uninstall_steps import build_uninstall

BOOTSTRAP_ENV = "DRIP_INSTALLER_GUI_BOOTSTRAPPED"


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
    model_given = options.drip_model or options.download_model or options.model_url
    if options.engine != "classical" and not model_given:
        try:
            path = input("DRIP model folder to import "
                         "(Enter for none; the classical engine needs no model and no torch): ").strip()
        except EOFError:
            path = ""
        if path:
            options.drip_model = path


def finish_text(p: Plan) -> str:
    import drip_protocol as protocol
    lines = ["", "Drip Matting is installed."]
    lines.append("In GIMP: restart GIMP, open an image, select the object roughly (or paint a trimap), then "
                 "Filters > Drip Matting. The first run starts the matting server; later runs reuse it.")
    if any(t.kind == "flatpak" for t in p.targets):
        lines.append("Flatpak GIMP: allow it to start the server on the host once with\n"
                     "  flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP")
    if p.engine == "classical":
        lines.append("DRIP is not installed (the classical engine needs no torch). To add it later, run "
                     f"{installer_command('--drip-model', 'FOLDER')} with a DRIP model folder "
                     "(docs/drip.md).")
    lines.append(f"Server log: {protocol.default_log_file()}")
    lines.append(f"Uninstall: {installer_command('--uninstall')}")
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
    venv = Path(options.venv).expanduser().absolute() if options.venv else default_venv()
    print(f"The installer window needs PyQt6; installing it into {venv} first ...")
    try:
        # never --upgrade here: the window's own install step rebuilds the environment if asked to
        prepare_venv(venv, dataclasses.replace(options, upgrade=False), print)
        venv_mod.pip_install(venv, ["PyQt6>=6.5"], print, extra_args=options.pip_args)
    except (venv_mod.VenvError, InstallError) as exc:
        print(f"error: {exc}\nUse the terminal installer instead (drop --gui).", file=sys.stderr)
        return 1
    script = str(Path(__file__).with_name("install.py"))
    extra = [] if any(a.startswith("--python") for a in argv) else ["--python", options.python]
    # hints in the window name the command the user ran, not the venv's Python
    env = {**os.environ, BOOTSTRAP_ENV: "1", COMMAND_ENV: installer_command()}
    return subprocess.call([str(venv_mod.venv_python(venv)), script, *argv, *extra], env=env)


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
            p = build_uninstall(options)
        else:
            if interactive:
                interactive_choices(options)
            p = build_install(options, dry_run=args.dry_run)
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
            print(f"\nerror: about {p.disk_mb / 1000:.1f} GB of disk space is needed in {p.venv.parent}, "
                  f"but only {free / 1000:.1f} GB is free. Free some space or choose another place "
                  "with --venv DIR.",
                  file=sys.stderr)
            return 2
    if interactive and not ask("\nProceed?"):
        print("Nothing was changed.")
        return 1
    try:
        p.run()
    except KeyboardInterrupt:
        print("\ninterrupted: nothing is left half-installed; run the installer again to finish",
              file=sys.stderr)
        return 130
    except (InstallError, venv_mod.VenvError, model_import.ModelError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        print("The installation did not finish; no half-installed plug-in was left behind. "
              f"Fix the problem and run the installer again:\n  {installer_command(*argv)}", file=sys.stderr)
        return 1
    if args.uninstall:
        print("\nDrip Matting is uninstalled.")
        for k in p.kept:
            print(k[0].upper() + k[1:] + ".")
    else:
        print(finish_text(p))
    return 0
