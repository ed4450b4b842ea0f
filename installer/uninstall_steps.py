"""The uninstall steps: ``build_uninstall(options)`` returns the Plan (plan.py) that removes
what the installer put in place: the plug-in folders, the environments it made, the model
setting it wrote and the server's state. Models are kept unless --purge; an environment the
installer did not make is kept. Standard library only.
"""
from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Callable

import drip_protocol as protocol
from drip_core import config as drip_config

from . import manifest as manifest_mod
from . import plugin_files, profiles, server_stop, user_config
from .environment import venv_is_ours
from .options import Options, default_venv, downloads_dir, models_dir
from .plan import Context, InstallError, Plan, Step


def build_uninstall(options: Options) -> Plan:
    record = manifest_mod.load()
    data = Path(drip_config.data_dir())
    venv = Path(options.venv).expanduser().absolute() if options.venv else \
        Path(record["venv"].get("path") or default_venv())
    steps = [_server_step()]
    steps += [_removal(f"remove the plug-in {f}", f, _our_plugin) for f in _plugin_folders(record, options)]
    steps += _venv_removals(record, venv)
    steps.append(_config_undo(record))
    steps += _state_removals(data)
    if options.purge:
        steps += [_removal(f"remove {p} (--purge)", p) for p in (models_dir(), downloads_dir())]
    kept = _kept(venv, options)
    summary = ["Drip Matting uninstaller"] + [f"  {k}" for k in kept]
    return Plan("uninstall", steps, summary, record, finish=partial(_finish, record, data),
                venv=venv, kept=kept)


def _server_step() -> Step:
    running = server_stop.running_server()
    name = f"stop {server_stop.describe(running)}" if running else \
        "no Drip server is running: nothing to stop"
    return Step(name, lambda: server_stop.running_server() is None, _stop_server)


def _stop_server(ctx: Context) -> None:
    if not server_stop.stop_server(log=ctx.log):
        ctx.log("  no Drip server was running: nothing was stopped")


def _plugin_folders(record: dict, options: Options) -> list[Path]:
    """The recorded plug-in folders, plus ours in every profile we can see (sorted)."""
    folders = {str(e["folder"]): Path(e["folder"]) for e in record["plugins"].values()}
    try:
        seen = [profiles.named_profile(p) for p in options.gimp_profiles] if options.gimp_profiles else []
    except profiles.ProfileError as exc:
        raise InstallError(str(exc)) from None
    for prof in seen + profiles.find_profiles():
        f = prof.plugins_dir / plugin_files.PLUGIN_NAME
        folders[str(f)] = f
    return [f for _, f in sorted(folders.items())]


def _venv_removals(record: dict, venv: Path) -> list[Step]:
    """Earlier environments (--venv moved away), a leftover in the installer's own place (e.g.
    the window's PyQt6 bootstrap, or a failed first run), then the current one."""
    earlier = [Path(p) for p in record.get("stale_venvs", [])]
    if default_venv() not in earlier and default_venv().exists() and venv_is_ours(default_venv()):
        earlier.append(default_venv())
    steps = [_removal(f"remove the earlier Python environment {p}", p, venv_is_ours)
             for p in earlier if p != venv]
    steps.append(_removal(f"remove the Python environment {venv}", venv, venv_is_ours))
    return steps


def _config_undo(record: dict) -> Step:
    """Take back the DRIP model setting the install wrote, unless the user changed it since."""
    def config_unchanged() -> bool:
        rec = record.get("user_config") or {}
        return not rec or user_config.read().get(user_config.KEY) != rec.get("set")

    return Step(f"remove the DRIP model setting from {user_config.path()}", config_unchanged,
                lambda ctx: user_config.undo(record.get("user_config") or {}, ctx.log))


def _state_removals(data: Path) -> list[Step]:
    state = Path(protocol.state_dir())
    if state != data:
        return [_removal(f"remove {state}", state)]
    # Windows/macOS: the server's state lives in the data folder, which holds the models too
    return [_removal(f"remove {state / name}", state / name) for name in ("server.json", "server.log")]


def _kept(venv: Path, options: Options) -> list[str]:
    kept = []
    if venv.exists() and not venv_is_ours(venv):
        kept.append(f"the environment {venv} was not made by this installer and is kept")
    if not options.purge and models_dir().is_dir():
        kept.append(f"models are kept in {models_dir()} (add --purge to remove them)")
    return kept


def _finish(record: dict, data: Path, ctx: Context) -> None:
    """Forget the installation and remove the folders it made, deepest first, if they are empty."""
    manifest_mod.remove()
    created = [Path(d) for d in record.get("created_dirs", [])]
    folders = {data, Path(drip_config.config_dir()), *created}
    for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()  # only if empty
        except OSError:
            pass


def _absent(path: Path, ours: Callable[[Path], bool] | None = None) -> bool:
    """Nothing (of ours) left at ``path``."""
    return not (path.exists() and (ours is None or ours(path)))


def _remove(path: Path, ctx: Context) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    ctx.log(f"  removed {path}")


def _removal(name: str, path: Path, ours: Callable[[Path], bool] | None = None) -> Step:
    return Step(name, partial(_absent, path, ours), partial(_remove, path))


def _our_plugin(folder: Path) -> bool:
    return folder.is_dir() and plugin_files.is_our_plugin(folder)
