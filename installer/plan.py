"""The installation as a list of steps: each knows whether it is already done, and how to do it.

``build_install(options)`` and ``build_uninstall(options)`` return a Plan. ``plan.describe()``
is what --dry-run prints; ``plan.run(reporter)`` does it. A step that is already done is
skipped, so a second run changes nothing. The GIMP plug-in folders come last, and each is
assembled in a temporary folder and renamed into place, so a failure anywhere leaves no
half-installed plug-in; plug-in folders a failed run added are removed again. A virtual
environment survives a failed torch/pip step (recorded as unfinished in the manifest), so
the next run resumes instead of downloading again. Standard library only.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from drip_core import config as drip_config
import drip_protocol as protocol

from . import manifest as manifest_mod
from . import model_import, plugin_files, profiles, server_stop, user_config, venv as venv_mod
from .torch_choice import TorchPlan, choose_torch, disk_needed_mb

INSTALLER_DIR = Path(__file__).resolve().parent
ROOT = INSTALLER_DIR.parent
ENGINES = ("auto", "drip", "classical")


class InstallError(Exception):
    """A problem the user can fix; the message says how."""


def version() -> str:
    try:
        from drip_core import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "0"


def default_venv() -> Path:
    return Path(drip_config.data_dir()) / "venv"


def models_dir() -> Path:
    return Path(drip_config.data_dir()) / "models"


def downloads_dir() -> Path:
    return Path(drip_config.data_dir()) / "downloads"


def default_source() -> Path:
    """What to pip-install: the wheel shipped in a bundle (wheels/), else this source tree."""
    wheels = sorted((ROOT / "wheels").glob("drip_matting-*.whl"))
    if wheels:
        return wheels[-1]
    if (ROOT / "pyproject.toml").is_file():
        return ROOT
    raise InstallError(f"found neither a wheel in {ROOT / 'wheels'} nor a source tree at {ROOT}: "
                       "this copy of the installer is incomplete; download the bundle again")


@dataclass
class Options:
    venv: str | None = None
    python: str = sys.executable
    torch: str = "auto"
    engine: str = "auto"
    gimp_profiles: list[str] = field(default_factory=list)
    drip_model: str | None = None
    model_mode: str = "copy"            # copy | link (use the folder where it is)
    download_model: bool = False
    model_url: str | None = None
    model_sha256: str | None = None
    source: str | None = None           # wheel or source tree (default_source())
    pip_args: list[str] = field(default_factory=list)
    system_site_packages: bool = False
    upgrade: bool = False
    purge: bool = False
    gpus: list | None = None            # detected NVIDIA GPUs (None = detect)


class Reporter:
    """Where progress goes: the terminal here, signals in the window (gui.py)."""

    def log(self, text: str) -> None:
        print(text, flush=True)

    def step(self, index: int, total: int, title: str) -> None:
        self.log(f"[{index + 1}/{total}] {title}")

    def fraction(self, value: float) -> None:
        """Progress within the current step (0..1), for copies and downloads."""


@dataclass
class Step:
    title: str
    done: Callable[[], bool]                       # already in the wanted state?
    apply: Callable[["Context"], None]
    detail: str = ""


@dataclass
class Context:
    reporter: Reporter
    record: dict                                   # the install manifest being updated

    def log(self, text: str) -> None:
        self.reporter.log(text)

    def save(self) -> None:
        manifest_mod.save(self.record)


@dataclass
class Plan:
    action: str
    steps: list[Step]
    summary: list[str]
    record: dict
    on_failure: list[Callable[[Context], None]] = field(default_factory=list)
    finish: Callable[[Context], None] | None = None

    def pending(self) -> list[Step]:
        return [s for s in self.steps if not s.done()]

    def describe(self) -> str:
        lines = list(self.summary)
        lines.append("Steps:")
        for s in self.steps:
            mark = "ok  " if s.done() else "do  "
            lines.append(f"  [{mark}] {s.title}" + (f"  ({s.detail})" if s.detail else ""))
        return "\n".join(lines)

    def run(self, reporter: Reporter | None = None) -> int:
        """Do every pending step; returns how many steps changed something."""
        reporter = reporter or Reporter()
        ctx = Context(reporter, self.record)
        changed = 0
        total = len(self.steps)
        try:
            for i, s in enumerate(self.steps):
                reporter.step(i, total, s.title)
                if s.done():
                    reporter.log("  already done")
                else:
                    s.apply(ctx)
                    changed += 1
            if self.finish is not None:
                self.finish(ctx)
        except BaseException:
            for undo in self.on_failure:
                try:
                    undo(ctx)
                except Exception as exc:  # noqa: BLE001 - report, keep cleaning up
                    reporter.log(f"  clean-up after the failure also failed: {exc}")
            raise
        return changed


# --- install ------------------------------------------------------------------------------------

def resolve_profiles(options: Options) -> list[profiles.Profile]:
    if options.gimp_profiles:
        try:
            return [profiles.named_profile(p) for p in options.gimp_profiles]
        except profiles.ProfileError as exc:
            raise InstallError(str(exc)) from None
    found = profiles.find_profiles()
    if not found:
        raise InstallError(profiles.no_gimp_message())
    return found


def server_command(python: Path, model: str | None, profile: profiles.Profile) -> list[str]:
    cmd = [str(python), "-m", "drip_core.server", "--engine", "auto"]
    if model:
        cmd += ["--drip-model", model]
    if profile.kind == "flatpak":
        # The plug-in runs inside the sandbox; the server must start on the host.
        cmd = ["flatpak-spawn", "--host", *cmd]
    return cmd


def plugin_config_for(python: Path, model: str | None, profile: profiles.Profile) -> dict:
    return plugin_files.plugin_config(server_command(python, model, profile),
                                      log_file=protocol.default_log_file(),
                                      discovery_file=protocol.default_discovery_file(),
                                      version=version())


def check_options(options: Options) -> None:
    if options.engine not in ENGINES:
        raise InstallError(f"--engine must be one of {', '.join(ENGINES)}, not {options.engine!r}")
    if options.model_mode not in ("copy", "link"):
        raise InstallError(f"--model-mode must be copy or link, not {options.model_mode!r}")
    if options.drip_model and (options.download_model or options.model_url):
        raise InstallError("choose one: --drip-model PATH (a folder you have) or --download-model")
    if options.drip_model and not Path(options.drip_model).expanduser().is_dir():
        raise InstallError(f"--drip-model {options.drip_model}: no such folder. Name the DRIP model folder "
                           "(the one holding drip.json) that drip-convert or drip-train wrote.")
    if options.engine == "classical" and (options.drip_model or options.download_model or options.model_url):
        raise InstallError("--engine classical installs no DRIP engine, so a DRIP model is of no use: "
                           "drop --drip-model/--download-model or use --engine auto")


def build_install(options: Options) -> Plan:
    check_options(options)
    try:
        torch = choose_torch(options.torch, options.engine, gpus=options.gpus)
    except ValueError as exc:
        raise InstallError(str(exc)) from None
    record = manifest_mod.load()
    targets = resolve_profiles(options)
    source = Path(options.source).expanduser().resolve() if options.source else default_source()
    if not source.exists():
        raise InstallError(f"--source {options.source}: no such wheel or folder")
    venv = Path(options.venv).expanduser().absolute() if options.venv else \
        Path(record["venv"].get("path") or default_venv())
    py = venv_mod.venv_python(venv)
    fingerprint = venv_mod.source_fingerprint(source)
    extras = "[drip]" if (options.engine != "classical" and torch.build != "skip") else ""
    ver = version()

    # Where the model ends up (decided now: the plug-in config names it).
    model_src = Path(options.drip_model).expanduser().resolve() if options.drip_model else None
    download = None
    if options.download_model or options.model_url:
        download = _download_source(options)
    if model_src is not None:
        model_path = str(model_src) if options.model_mode == "link" else \
            str(models_dir() / model_import.model_name(model_src))
    elif download is not None:
        model_path = str(models_dir() / download["name"])
    else:
        model_path = record["model"].get("path") if record["model"].get("path") and \
            Path(record["model"]["path"]).is_dir() else None

    steps: list[Step] = []
    on_failure: list[Callable[[Context], None]] = []
    created_venv: dict = {"value": False}

    # 1. the virtual environment
    def same_venv() -> bool:
        return record["venv"].get("path") == str(venv)

    def venv_rec() -> dict:
        """What the manifest knows about *this* venv (nothing if it names another one)."""
        return record["venv"] if same_venv() else {}

    def venv_done() -> bool:
        if options.upgrade and venv_mod.ours(venv) and not created_venv["value"]:
            return False  # --upgrade rebuilds an environment this installer made
        return same_venv() and venv_mod.is_venv(venv) and venv_mod.can_import(venv, "pip")

    def venv_apply(ctx: Context) -> None:
        venv_mod.check_python(options.python)
        healthy = venv_mod.is_venv(venv) and venv_mod.can_import(venv, "pip")
        if venv.exists() and venv_mod.ours(venv) and (options.upgrade or not healthy):
            ctx.log(f"  removing the old environment {venv} (models and settings are kept)")
            shutil.rmtree(venv)
        elif venv.exists() and not venv_mod.is_venv(venv) and any(venv.iterdir()):
            raise InstallError(f"{venv} exists and is not a virtual environment: choose another --venv")
        if not venv_mod.is_venv(venv):
            venv_mod.create_venv(venv, options.python, ctx.log, system_site_packages=options.system_site_packages)
            created_venv["value"] = True
        old = ctx.record["venv"]
        if old.get("path") and old["path"] != str(venv) and old.get("created"):
            # moved with --venv: the old one is removed by --uninstall (a server may still run from it)
            ctx.record["stale_venvs"] = sorted(set(ctx.record.get("stale_venvs", [])) | {old["path"]})
            ctx.log(f"  the previous environment {old['path']} is no longer used (--uninstall removes it)")
        keep = old if old.get("path") == str(venv) and not created_venv["value"] else {}
        ctx.record["venv"] = {**keep, "path": str(venv), "created": venv_mod.ours(venv)}
        ctx.record["status"] = "incomplete"
        ctx.save()

    steps.append(Step(f"Python environment {venv}", venv_done, venv_apply,
                      "rebuilt (--upgrade)" if options.upgrade else ""))

    def keep_new_venv(ctx: Context) -> None:
        # A failed torch/software step keeps the environment (recorded as ours and unfinished):
        # the next run continues there instead of downloading gigabytes again, and
        # --uninstall removes it. GIMP never sees it: the plug-ins come last.
        if created_venv["value"] and venv.exists():
            ctx.log(f"  kept the unfinished environment {venv}: the next run continues there")
    on_failure.append(keep_new_venv)

    # 2. torch
    def torch_done() -> bool:
        if torch.build == "skip":
            return True
        return venv_rec().get("torch") == torch.build and not created_venv["value"] and \
            venv_mod.can_import(venv, "torch")

    def torch_apply(ctx: Context) -> None:
        ctx.log(f"  {torch.reason}")
        venv_mod.upgrade_pip(venv, ctx.log, extra_args=options.pip_args)
        venv_mod.pip_install(venv, torch.pip_args(), ctx.log, extra_args=options.pip_args)
        ctx.record["venv"]["torch"] = torch.build
        ctx.save()

    steps.append(Step(f"torch ({torch.build})", torch_done, torch_apply, torch.reason))

    # 3. drip-matting itself
    def software_done() -> bool:
        rec = venv_rec()
        return (not options.upgrade and not created_venv["value"] and rec.get("fingerprint") == fingerprint
                and rec.get("extras") == extras and venv_mod.installed_version(venv) == ver)

    def software_apply(ctx: Context) -> None:
        if not created_venv["value"] and venv_mod.installed_version(venv) == ver:
            # same version number, other contents (or --upgrade): replace the package itself
            venv_mod.pip_install(venv, [str(source)], ctx.log,
                                 extra_args=[*options.pip_args, "--force-reinstall", "--no-deps"])
            if extras:
                venv_mod.pip_install(venv, [f"{source}{extras}"], ctx.log, extra_args=options.pip_args)
        else:
            venv_mod.pip_install(venv, [f"{source}{extras}"], ctx.log, extra_args=options.pip_args)
        got = venv_mod.installed_version(venv)
        if got != ver:
            raise InstallError(f"drip-matting {ver} did not end up in {venv} (found {got}); see the log above")
        ctx.record["venv"].update({"fingerprint": fingerprint, "extras": extras, "engine": options.engine,
                                   "python": str(py)})
        ctx.save()

    steps.append(Step(f"drip-matting {ver}{extras} from {source.name}", software_done, software_apply))

    # 0. a server running from the old software is stopped first (the next filter run starts
    # the new one; on Windows its files could not even be replaced while it runs)
    software_steps = list(steps)

    def server_done() -> bool:
        return server_stop.running_server() is None or all(s.done() for s in software_steps)

    steps.insert(0, Step("a running Drip server is stopped if its software changes", server_done,
                         lambda ctx: server_stop.stop_server(log=ctx.log)))

    # 4. the DRIP model
    if model_src is not None or download is not None:
        steps += _model_steps(options, model_src, download, model_path, record)
    if model_path:
        def cfg_done() -> bool:
            return not user_config.needs_model(model_path)

        def cfg_apply(ctx: Context) -> None:
            ctx.record["user_config"] = user_config.set_model(model_path, ctx.record.get("user_config") or {})
            ctx.log(f"  {user_config.path()}: drip_model = {model_path}")
            ctx.save()
        steps.append(Step(f"server config: DRIP model {model_path}", cfg_done, cfg_apply))

    # 5. the plug-in, last
    created_plugins: list[Path] = []

    def drop_new_plugins(ctx: Context) -> None:
        # A failed run must not leave plug-ins behind that point at a half-made installation.
        for folder in created_plugins:
            shutil.rmtree(folder, ignore_errors=True)
            ctx.record["plugins"].pop(str(folder.parent), None)
            ctx.log(f"  removed {folder} again (the installation failed)")
        if created_plugins:
            ctx.save()
    on_failure.insert(0, drop_new_plugins)

    for prof in targets:
        cfg = plugin_config_for(py, model_path, prof)

        def plug_done(prof=prof, cfg=cfg) -> bool:
            return not options.upgrade and plugin_files.plugin_folder_matches(prof.plugins_dir, cfg) and \
                str(prof.plugins_dir) in record["plugins"]

        def plug_apply(ctx: Context, prof=prof, cfg=cfg) -> None:
            fresh = not (prof.plugins_dir / plugin_files.PLUGIN_NAME).exists()
            folder = plugin_files.install_plugin_folder(prof.plugins_dir, cfg)
            if fresh:
                created_plugins.append(folder)
            ctx.record["plugins"][str(prof.plugins_dir)] = {**prof.to_json(), "folder": str(folder)}
            ctx.log(f"  installed {folder}")
            if prof.kind == "snap":
                ctx.log("  Snap GIMP is strictly confined: it may not be allowed to start the server from your home "
                        "folder. If Filters > Drip Matting says no server answers, start it yourself with\n"
                        f"    {py} -m drip_core.server")
            if prof.kind == "flatpak":
                ctx.log("  Flatpak GIMP starts the server on the host through flatpak-spawn; allow it once with:\n"
                        "    flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP")
            ctx.save()
        steps.append(Step(f"plug-in into {prof.label()}", plug_done, plug_apply))

    # Folders that did not exist before: uninstall removes them again if they are empty
    # (the state folder appears later, when the server first writes its log).
    watched = _missing_ancestors([Path(drip_config.data_dir()), Path(drip_config.config_dir()),
                                  Path(protocol.state_dir()), *[t.plugins_dir for t in targets]])

    def note_dirs(ctx: Context) -> None:
        made = set(ctx.record.get("created_dirs", []))
        made.update(str(d) for d in watched)
        ctx.record["created_dirs"] = sorted(made)
        ctx.save()
    on_failure.append(note_dirs)

    def finish(ctx: Context) -> None:
        note_dirs(ctx)
        ctx.record["status"] = "complete"
        ctx.record["installed_version"] = ver
        ctx.record["venv"].setdefault("path", str(venv))
        ctx.save()

    # the record is only rewritten by a step that changed something (or a first finish)
    def all_recorded() -> bool:
        return record.get("status") == "complete" and record.get("installed_version") == ver

    disk = disk_needed_mb(torch, options.engine, bool(model_src or download) and options.model_mode == "copy")
    summary = [
        f"Drip Matting {ver} installer",
        f"  environment: {venv} (Python {options.python})",
        f"  engine:      {options.engine}; torch: {torch.build} - {torch.reason}",
        f"  software:    {source}",
        f"  model:       {model_path or 'none (the classical engine works without one)'}",
        "  GIMP:        " + ("\n               ".join(p.label() for p in targets)),
        f"  disk space:  about {disk / 1000:.1f} GB",
        f"  server log:  {protocol.default_log_file()}",
    ]
    plan = Plan("install", steps, summary, record, on_failure, finish)
    plan.targets = targets  # type: ignore[attr-defined]
    plan.model_path = model_path  # type: ignore[attr-defined]
    plan.torch = torch  # type: ignore[attr-defined]
    plan.venv = venv  # type: ignore[attr-defined]
    plan.disk_mb = disk  # type: ignore[attr-defined]
    plan.all_recorded = all_recorded  # type: ignore[attr-defined]
    return plan


def _missing_ancestors(paths: list[Path]) -> list[Path]:
    """Folders on the way to ``paths`` (inside the home folder) that do not exist yet."""
    home = Path(os.path.expanduser("~")).absolute()
    out = []
    for p in paths:
        p = p.absolute()
        while p != home and home in p.parents and not p.exists():
            out.append(p)
            p = p.parent
    return out


def _download_source(options: Options) -> dict:
    if options.model_url:
        url = options.model_url
        name = Path(url.split("?")[0].rstrip("/")).name
        for suffix in (".zip", ".tar.gz", ".tgz", ".tar"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        return {"url": url, "sha256": options.model_sha256, "name": name or "drip-model",
                "file": Path(url.split("?")[0]).name or "drip-model.zip"}
    sources = model_import.configured_sources()
    if not sources:
        raise InstallError("no model download source is configured for this release. Make a DRIP model folder "
                           "with drip-convert (see docs/install.md) and import it with --drip-model FOLDER, "
                           "or give an archive address with --model-url URL.")
    s = sources[0]
    return {"url": s["url"], "sha256": s.get("sha256"), "name": s.get("name", "drip-model"),
            "file": s.get("file") or Path(s["url"].split("?")[0]).name}


def _model_steps(options: Options, model_src: Path | None, download: dict | None, model_path: str,
                 record: dict) -> list[Step]:
    steps = []
    if download is not None:
        archive = downloads_dir() / download["file"]

        def dl_done() -> bool:
            return _model_unchanged(model_path, record)

        def dl_apply(ctx: Context) -> None:
            model_import.download(download["url"], archive, sha256=download.get("sha256"), log=ctx.log,
                                  progress=ctx.reporter.fraction)
            unpack = Path(model_import.tempfile.mkdtemp(prefix=".unpack-", dir=downloads_dir()))
            try:
                folder = model_import.unpack_model(archive, unpack)
                dest = model_import.copy_model(folder, models_dir(), log=ctx.log, name=download["name"])
            finally:
                shutil.rmtree(unpack, ignore_errors=True)
            archive.unlink(missing_ok=True)
            ctx.record["model"] = {"path": str(dest), "mode": "download", "source": download["url"],
                                   "snapshot": model_import.snapshot(dest)}
            ctx.save()
        steps.append(Step(f"download the DRIP model from {download['url']}", dl_done, dl_apply))
        return steps

    assert model_src is not None
    if options.model_mode == "link":
        def link_done() -> bool:
            rec = record["model"]
            return rec.get("path") == str(model_src) and rec.get("mode") == "link" and \
                rec.get("snapshot") == model_import.snapshot(model_src)

        def link_apply(ctx: Context) -> None:
            model_import.verify_in_place(model_src)
            ctx.log(f"  verified {model_src}; the server uses it where it is")
            ctx.record["model"] = {"path": str(model_src), "mode": "link", "source": str(model_src),
                                   "snapshot": model_import.snapshot(model_src)}
            ctx.save()
        steps.append(Step(f"verify the DRIP model {model_src} (used in place)", link_done, link_apply))
    else:
        def copy_done() -> bool:
            return _model_unchanged(model_path, record) and model_import.same_model(
                model_src, model_path, record["model"].get("snapshot"))

        def copy_apply(ctx: Context) -> None:
            dest = model_import.copy_model(model_src, models_dir(), log=ctx.log, progress=ctx.reporter.fraction)
            ctx.record["model"] = {"path": str(dest), "mode": "copy", "source": str(model_src),
                                   "snapshot": model_import.snapshot(dest)}
            ctx.save()
        steps.append(Step(f"copy and verify the DRIP model {model_src}", copy_done, copy_apply))
    return steps


def _model_unchanged(model_path: str, record: dict) -> bool:
    rec = record["model"]
    return rec.get("path") == model_path and Path(model_path).is_dir() and \
        rec.get("snapshot") == model_import.snapshot(model_path)


# --- uninstall ----------------------------------------------------------------------------------

def build_uninstall(options: Options) -> Plan:
    record = manifest_mod.load()
    steps: list[Step] = []
    data = Path(drip_config.data_dir())

    # plug-in folders: the recorded ones, plus ours in every profile we can see
    folders: dict[str, Path] = {}
    for entry in record["plugins"].values():
        folders[str(entry["folder"])] = Path(entry["folder"])
    try:
        seen = [profiles.named_profile(p) for p in options.gimp_profiles] if options.gimp_profiles else []
    except profiles.ProfileError as exc:
        raise InstallError(str(exc)) from None
    for prof in seen + profiles.find_profiles():
        f = prof.plugins_dir / plugin_files.PLUGIN_NAME
        folders[str(f)] = f

    venv_rec = record["venv"]
    venv = Path(options.venv).expanduser().absolute() if options.venv else Path(venv_rec.get("path") or default_venv())

    def server_done() -> bool:
        return server_stop.running_server() is None

    steps.append(Step("stop the running Drip server", server_done,
                      lambda ctx: server_stop.stop_server(log=ctx.log)))

    for key, f in sorted(folders.items()):
        def gone(f=f) -> bool:
            return not (f.is_dir() and plugin_files.is_our_plugin(f))

        def rm(ctx: Context, f=f) -> None:
            shutil.rmtree(f)
            ctx.log(f"  removed {f}")
        steps.append(Step(f"remove the plug-in {f}", gone, rm))

    for stale in record.get("stale_venvs", []):
        sv = Path(stale)
        if sv == venv:
            continue

        def stale_gone(sv=sv) -> bool:
            return not (sv.exists() and venv_mod.ours(sv))

        def stale_rm(ctx: Context, sv=sv) -> None:
            shutil.rmtree(sv)
            ctx.log(f"  removed {sv}")
        steps.append(Step(f"remove the earlier Python environment {sv}", stale_gone, stale_rm))

    def venv_gone() -> bool:
        return not (venv.exists() and venv_mod.ours(venv))

    def venv_rm(ctx: Context) -> None:
        shutil.rmtree(venv)
        ctx.log(f"  removed {venv}")
    steps.append(Step(f"remove the Python environment {venv}", venv_gone, venv_rm))

    def cfg_done() -> bool:
        rec = record.get("user_config") or {}
        return not rec or user_config.read().get(user_config.KEY) != rec.get("set")

    steps.append(Step(f"remove the DRIP model setting from {user_config.path()}", cfg_done,
                      lambda ctx: user_config.undo(record.get("user_config") or {}, ctx.log)))

    state = Path(protocol.state_dir())
    purge_paths = [state] if state != data else []
    purge_paths += [models_dir(), downloads_dir()] if options.purge else []
    for name in ("server.json", "server.log"):
        f = Path(protocol.state_dir()) / name
        if state == data:  # Windows/macOS: state lives in the data folder
            purge_paths.append(f)
    for p in purge_paths:
        def p_gone(p=p) -> bool:
            return not p.exists()

        def p_rm(ctx: Context, p=p) -> None:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            ctx.log(f"  removed {p}")
        why = " (--purge)" if p in (models_dir(), downloads_dir()) else ""
        steps.append(Step(f"remove {p}{why}", p_gone, p_rm))

    def finish(ctx: Context) -> None:
        manifest_mod.remove()
        created = [Path(d) for d in record.get("created_dirs", [])]
        for d in sorted({data, Path(drip_config.config_dir()), *created}, key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()  # only if empty
            except OSError:
                pass

    kept = []
    if not options.purge and models_dir().is_dir():
        kept.append(f"models are kept in {models_dir()} (add --purge to remove them)")
    summary = ["Drip Matting uninstaller"] + [f"  {k}" for k in kept]
    plan = Plan("uninstall", steps, summary, record, [], finish)
    plan.kept = kept  # type: ignore[attr-defined]
    return plan
