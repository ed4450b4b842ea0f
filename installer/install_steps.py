"""The install steps: ``build_install(options)`` returns the Plan (plan.py) that installs.

The decisions (which venv, torch build, model, profiles) are made once, up front, by
``Install``; its methods are the steps' checks and actions. The GIMP plug-in folders come
last, and each is assembled in a temporary folder and renamed into place, so a failure
anywhere leaves no half-installed plug-in; plug-in folders a failed run added are removed
again. A virtual environment survives a failed torch/pip step (recorded as unfinished in the
manifest), so the next run resumes instead of downloading again; one whose creation failed is
removed, and one of ours without pip is rebuilt. Standard library only.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

import drip_protocol as protocol
from drip_core import config as drip_config

from . import manifest as manifest_mod
from . import model_import, plugin_files, profiles, server_stop, user_config
from . import venv as venv_mod
from .environment import prepare_venv, venv_is_ours
from .options import (
    ENGINE_SETS,
    Options,
    check_options,
    choose_engine,
    default_source,
    default_venv,
    downloads_dir,
    models_dir,
    version,
)
from .plan import Context, InstallError, Plan, Step
from .torch_choice import TORCH_CHOICES, choose_torch, disk_needed_mb


def build_install(options: Options, dry_run: bool = False) -> Plan:
    """The install plan; ``dry_run`` plans even without a GIMP 3 profile (the plug-in step then
    says why it cannot run), where a real install stops before changing anything."""
    return Install(options, dry_run).plan()


def resolve_profiles(options: Options, allow_none: bool = False) -> list[profiles.Profile]:
    if options.gimp_profiles:
        try:
            return [profiles.named_profile(p) for p in options.gimp_profiles]
        except profiles.ProfileError as exc:
            raise InstallError(str(exc)) from None
    found = profiles.find_profiles()
    if not found and not allow_none:
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


class Install:
    """What an install will do (decided when it is made, nothing changed yet) and its steps'
    checks and actions. Only ``created_venv`` and ``created_plugins`` change while it runs."""

    def __init__(self, options: Options, dry_run: bool = False):
        check_options(options)
        self.options = options
        self.record = manifest_mod.load()
        self.engine = choose_engine(options, self.record)
        self.torch_request, torch_kept = _torch_request(options, self.record)
        try:
            self.torch = choose_torch(self.torch_request, self.engine.engine, gpus=options.gpus)
        except ValueError as exc:
            raise InstallError(str(exc)) from None
        if torch_kept and self.engine.engine == "drip":
            self.torch = dataclasses.replace(self.torch,
                                             reason=f"{self.torch.reason} (kept from the last install)")
        self.targets = resolve_profiles(options, allow_none=dry_run)
        self.source = Path(options.source).expanduser().resolve() if options.source else default_source()
        if not self.source.exists():
            raise InstallError(f"--source {options.source}: no such wheel or folder")
        self.venv = Path(options.venv).expanduser().absolute() if options.venv else \
            Path(self.record["venv"].get("path") or default_venv())
        self.py = venv_mod.venv_python(self.venv)
        self.fingerprint = venv_mod.source_fingerprint(self.source)
        self.extras = "[drip]" if (self.engine.engine == "drip" and self.torch.build != "skip") else ""
        self.ver = version()
        self.model_src, self.download, self.model_path = self._model_choice()
        # Folders that did not exist before: uninstall removes them again if they are empty
        # (the state folder appears later, when the server first writes its log).
        self.watched = _missing_ancestors([Path(drip_config.data_dir()), Path(drip_config.config_dir()),
                                           Path(protocol.state_dir()),
                                           *[t.plugins_dir for t in self.targets]])
        self.created_venv = False                  # made (or rebuilt) by this run: later steps must redo
        self.created_plugins: list[Path] = []      # plug-in folders this run added (removed on failure)

    def _model_choice(self) -> tuple[Path | None, dict | None, str | None]:
        """(folder to import, download source, where the model ends up): decided now, because the
        plug-in config names the model."""
        o = self.options
        src = Path(o.drip_model).expanduser().resolve() if o.drip_model else None
        download = _download_source(o) if (o.download_model or o.model_url) else None
        if src is not None:
            path = str(src) if o.model_mode == "link" else str(models_dir() / model_import.model_name(src))
        elif download is not None:
            path = str(models_dir() / download["name"])
        else:
            known = self.record["model"].get("path")
            path = known if known and Path(known).is_dir() else None
        return src, download, path

    def plan(self) -> Plan:
        o = self.options
        steps = [
            self.server_step(),
            Step(f"Python environment {self.venv}", self.venv_ready, self.make_venv, self.venv_note()),
            # without torch there is no step: the summary says why none is installed
            *([Step(f"torch ({self.torch.build})", self.torch_ready, self.install_torch, self.torch.reason)]
              if self.torch.build != "skip" else []),
            Step(f"drip-matting {self.ver}{self.extras} from {self.source.name}", self.software_ready,
                 self.install_software),
            *self.model_steps(),
            *self.plugin_steps(),
        ]
        copy_model = bool(self.model_src or self.download) and o.model_mode == "copy"
        disk = disk_needed_mb(self.torch, self.engine.engine, copy_model)
        return Plan("install", steps, self.summary(disk), self.record,
                    on_failure=[self.drop_new_plugins, self.keep_new_venv, self.note_dirs,
                                self.remember_engine],
                    finish=self.finish, version=self.ver, venv=self.venv, targets=self.targets,
                    model_path=self.model_path, torch=self.torch, disk_mb=disk, engine=self.engine.engine)

    def summary(self, disk_mb: float) -> list[str]:
        o = self.options
        gimp = [p.label() for p in self.targets] or profiles.no_gimp_message().splitlines()
        return [
            f"Drip Matting {self.ver} installer",
            f"  environment: {self.venv} (Python {o.python})",
            f"  engine:      {ENGINE_SETS[self.engine.engine]} - {self.engine.reason}",
            f"  torch:       {self.torch.build.replace('skip', 'none')} - {self.torch.reason}",
            f"  software:    {self.source}",
            f"  model:       {self.model_path or 'none (the classical engine works without one)'}",
            "  GIMP:        " + "\n               ".join(gimp),
            f"  disk space:  about {disk_mb / 1000:.1f} GB",
            f"  server log:  {protocol.default_log_file()}",
        ]

    # a running server
    def server_step(self) -> Step:
        """One that runs the old software stops first (the next filter run starts the new one; on
        Windows its files could not even be replaced while it runs). The step's name says what
        was found when the plan was made; stop_server logs what it really did."""
        running = server_stop.running_server()
        if running is None:
            name = "no Drip server is running: nothing to stop"
        elif self.server_unaffected():
            name = f"{server_stop.describe(running)} is left running: its software does not change"
        else:
            name = f"stop {server_stop.describe(running)}: its software changes"
        return Step(name, self.server_unaffected, self.stop_server)

    def server_unaffected(self) -> bool:
        return server_stop.running_server() is None or \
            (self.venv_ready() and self.torch_ready() and self.software_ready())

    def stop_server(self, ctx: Context) -> None:
        if not server_stop.stop_server(log=ctx.log):
            ctx.log("  no Drip server was running: nothing was stopped")

    # the virtual environment
    def venv_record(self) -> dict:
        """What the manifest knows about *this* venv (nothing if it names another one)."""
        return self.record["venv"] if self.record["venv"].get("path") == str(self.venv) else {}

    def venv_note(self) -> str:
        if self.options.upgrade:
            return "rebuilt (--upgrade)"
        if venv_mod.is_venv(self.venv) and venv_is_ours(self.venv) and \
                not venv_mod.can_import(self.venv, "pip"):
            return "rebuilt: it has no pip"
        return ""

    def venv_ready(self) -> bool:
        if self.options.upgrade and not self.created_venv and venv_is_ours(self.venv):
            return False  # --upgrade rebuilds an environment this installer made
        return bool(self.venv_record()) and venv_mod.is_venv(self.venv) and \
            venv_mod.can_import(self.venv, "pip")

    def make_venv(self, ctx: Context) -> None:
        self.created_venv = prepare_venv(self.venv, self.options, ctx.log)
        old = ctx.record["venv"]
        if old.get("path") and old["path"] != str(self.venv) and old.get("created"):
            # moved with --venv: the old one is removed by --uninstall (a server may still run from it)
            ctx.record["stale_venvs"] = sorted(set(ctx.record.get("stale_venvs", [])) | {old["path"]})
            ctx.log(f"  the previous environment {old['path']} is no longer used (--uninstall removes it)")
        keep = old if old.get("path") == str(self.venv) and not self.created_venv else {}
        ctx.record["venv"] = {**keep, "path": str(self.venv), "created": venv_is_ours(self.venv)}
        ctx.record["status"] = "incomplete"
        ctx.save()

    def keep_new_venv(self, ctx: Context) -> None:
        # A failed torch/software step keeps the environment (recorded as ours and unfinished):
        # the next run continues there instead of downloading gigabytes again, and
        # --uninstall removes it. GIMP never sees it: the plug-ins come last.
        if self.created_venv and self.venv.exists():
            ctx.log(f"  kept the unfinished environment {self.venv}: the next run continues there")

    # torch
    def torch_ready(self) -> bool:
        if self.torch.build == "skip":
            return True
        return self.venv_record().get("torch") == self.torch.build and not self.created_venv and \
            venv_mod.can_import(self.venv, "torch")

    def install_torch(self, ctx: Context) -> None:
        ctx.log(f"  {self.torch.reason}")
        venv_mod.upgrade_pip(self.venv, ctx.log, extra_args=self.options.pip_args)
        venv_mod.pip_install(self.venv, self.torch.pip_args(), ctx.log, extra_args=self.options.pip_args)
        ctx.record["venv"]["torch"] = self.torch.build
        ctx.save()

    # drip-matting itself
    def software_ready(self) -> bool:
        rec = self.venv_record()
        return (not self.options.upgrade and not self.created_venv
                and rec.get("fingerprint") == self.fingerprint and rec.get("extras") == self.extras
                and venv_mod.installed_version(self.venv) == self.ver)

    def install_software(self, ctx: Context) -> None:
        pip_args, target = self.options.pip_args, f"{self.source}{self.extras}"
        if not self.created_venv and venv_mod.installed_version(self.venv) == self.ver:
            # same version number, other contents (or --upgrade): replace the package itself
            venv_mod.pip_install(self.venv, [str(self.source)], ctx.log,
                                 extra_args=[*pip_args, "--force-reinstall", "--no-deps"])
            if self.extras:
                venv_mod.pip_install(self.venv, [target], ctx.log, extra_args=pip_args)
        else:
            venv_mod.pip_install(self.venv, [target], ctx.log, extra_args=pip_args)
        got = venv_mod.installed_version(self.venv)
        if got != self.ver:
            raise InstallError(f"drip-matting {self.ver} did not end up in {self.venv} (found {got}); "
                               "see the log above")
        ctx.record["venv"].update({"fingerprint": self.fingerprint, "extras": self.extras,
                                   "engine": self.engine.engine, "python": str(self.py)})
        ctx.save()

    # the DRIP model, and the server config that names it
    def model_steps(self) -> list[Step]:
        steps = []
        if self.download is not None:
            steps.append(Step(f"download the DRIP model from {self.download['url']}", self.model_unchanged,
                              self.download_model))
        elif self.model_src is not None and self.options.model_mode == "link":
            steps.append(Step(f"verify the DRIP model {self.model_src} (used in place)",
                              self.linked_model_verified, self.verify_linked_model))
        elif self.model_src is not None:
            steps.append(Step(f"copy and verify the DRIP model {self.model_src}", self.model_copied,
                              self.copy_model))
        if self.model_path:
            steps.append(Step(f"server config: DRIP model {self.model_path}", self.config_ready,
                              self.write_config))
        return steps

    def model_unchanged(self) -> bool:
        rec, path = self.record["model"], self.model_path
        return rec.get("path") == path and Path(path).is_dir() and \
            rec.get("snapshot") == model_import.snapshot(path)

    def download_model(self, ctx: Context) -> None:
        dl = self.download
        archive = downloads_dir() / dl["file"]
        model_import.download(dl["url"], archive, sha256=dl.get("sha256"), log=ctx.log,
                              progress=ctx.reporter.fraction)
        unpack = Path(tempfile.mkdtemp(prefix=".unpack-", dir=downloads_dir()))
        try:
            folder = model_import.unpack_model(archive, unpack)
            dest = model_import.copy_model(folder, models_dir(), log=ctx.log, name=dl["name"])
        finally:
            shutil.rmtree(unpack, ignore_errors=True)
        archive.unlink(missing_ok=True)
        self._record_model(ctx, dest, "download", dl["url"])

    def linked_model_verified(self) -> bool:
        rec = self.record["model"]
        return rec.get("path") == str(self.model_src) and rec.get("mode") == "link" and \
            rec.get("snapshot") == model_import.snapshot(self.model_src)

    def verify_linked_model(self, ctx: Context) -> None:
        model_import.verify_in_place(self.model_src)
        ctx.log(f"  verified {self.model_src}; the server uses it where it is")
        self._record_model(ctx, self.model_src, "link", str(self.model_src))

    def model_copied(self) -> bool:
        return self.model_unchanged() and model_import.same_model(self.model_src, self.model_path,
                                                                  self.record["model"].get("snapshot"))

    def copy_model(self, ctx: Context) -> None:
        dest = model_import.copy_model(self.model_src, models_dir(), log=ctx.log,
                                       progress=ctx.reporter.fraction)
        self._record_model(ctx, dest, "copy", str(self.model_src))

    def _record_model(self, ctx: Context, path: Path, mode: str, source: str) -> None:
        ctx.record["model"] = {"path": str(path), "mode": mode, "source": source,
                               "snapshot": model_import.snapshot(path)}
        ctx.save()

    def config_ready(self) -> bool:
        return not user_config.needs_model(self.model_path)

    def write_config(self, ctx: Context) -> None:
        ctx.record["user_config"] = user_config.set_model(self.model_path,
                                                          ctx.record.get("user_config") or {})
        ctx.log(f"  {user_config.path()}: drip_model = {self.model_path}")
        ctx.save()

    # the plug-ins, last
    def plugin_steps(self) -> list[Step]:
        if not self.targets:  # only a dry run gets this far without a profile
            return [Step("plug-in: no GIMP 3 profile was found", lambda: False, self.refuse_without_profile,
                         "start GIMP 3 once so that it creates its profile folder, or name one with "
                         "--gimp-profile DIR; until then an install stops before changing anything",
                         blocked=True)]
        return [Step(f"plug-in into {prof.label()}", partial(self.plugin_ready, prof),
                     partial(self.install_plugin, prof))
                for prof in self.targets]

    def refuse_without_profile(self, ctx: Context) -> None:
        raise InstallError(profiles.no_gimp_message())

    def plugin_ready(self, prof: profiles.Profile) -> bool:
        cfg = plugin_config_for(self.py, self.model_path, prof)
        return not self.options.upgrade and plugin_files.plugin_folder_matches(prof.plugins_dir, cfg) and \
            str(prof.plugins_dir) in self.record["plugins"]

    def install_plugin(self, prof: profiles.Profile, ctx: Context) -> None:
        fresh = not (prof.plugins_dir / plugin_files.PLUGIN_NAME).exists()
        config = plugin_config_for(self.py, self.model_path, prof)
        folder = plugin_files.install_plugin_folder(prof.plugins_dir, config)
        if fresh:
            self.created_plugins.append(folder)
        ctx.record["plugins"][str(prof.plugins_dir)] = {**prof.to_json(), "folder": str(folder)}
        ctx.log(f"  installed {folder}")
        if prof.kind == "snap":
            ctx.log("  Snap GIMP is strictly confined: it may not be allowed to start the server from your "
                    "home folder. If Filters > Drip Matting says no server answers, start it yourself with\n"
                    f"    {self.py} -m drip_core.server")
        if prof.kind == "flatpak":
            ctx.log("  Flatpak GIMP starts the server on the host through flatpak-spawn; "
                    "allow it once with:\n"
                    "    flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP")
        ctx.save()

    def drop_new_plugins(self, ctx: Context) -> None:
        # A failed run must not leave plug-ins behind that point at a half-made installation.
        for folder in self.created_plugins:
            shutil.rmtree(folder, ignore_errors=True)
            ctx.record["plugins"].pop(str(folder.parent), None)
            ctx.log(f"  removed {folder} again (the installation failed)")
        if self.created_plugins:
            ctx.save()

    # the end (or a failure)
    def note_dirs(self, ctx: Context) -> None:
        made = set(ctx.record.get("created_dirs", []))
        made.update(str(d) for d in self.watched)
        ctx.record["created_dirs"] = sorted(made)
        ctx.save()

    def remember_engine(self, ctx: Context) -> None:
        self._note_choices(ctx.record)
        ctx.save()

    def _note_choices(self, record: dict) -> None:
        """A rerun without --engine or --torch keeps these choices (choose_engine, _torch_request),
        even after a failed run. The torch build asked for only matters to DRIP."""
        record["engine"] = self.engine.engine
        if self.engine.engine == "drip":
            record["torch_request"] = self.torch_request
        else:
            record.pop("torch_request", None)

    def finish(self, ctx: Context) -> None:
        self.note_dirs(ctx)
        self._note_choices(ctx.record)
        ctx.record["status"] = "complete"
        ctx.record["installed_version"] = self.ver
        ctx.record["venv"].setdefault("path", str(self.venv))
        ctx.save()


def _torch_request(options: Options, record: dict) -> tuple[str, bool]:
    """The torch build to ask choose_torch for, and whether it is the last install's choice
    (e.g. --torch skip: a rerun must not start a download the user declined)."""
    last = record.get("torch_request")
    if options.torch == "auto" and last in TORCH_CHOICES and last != "auto":
        return last, True
    return options.torch, False


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
    """Where ``--download-model`` / ``--model-url`` gets the model: url, sha256 (or None), the
    model folder's name and the archive's file name."""
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
        raise InstallError("no model download source is configured for this release. Make a DRIP model "
                           "folder with drip-convert (see docs/install.md) and import it with --drip-model "
                           "FOLDER, or give an archive address with --model-url URL.")
    s = sources[0]
    return {"url": s["url"], "sha256": s.get("sha256"), "name": s.get("name", "drip-model"),
            "file": s.get("file") or Path(s["url"].split("?")[0]).name}
