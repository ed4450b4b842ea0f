"""The installer end to end, in temporary homes with fake GIMP 3.0, 3.2 and Flatpak profiles.

No network: ``--torch skip --engine classical`` plus an offline wheel of this tree installed
with ``--pip-args='--no-index --no-deps'``. The real code paths run (venv creation, pip,
plug-in folders, manifest, uninstall); only the package index is left out.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer import cli, plugin_files, testing

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "installer" / "install.py"
PROFILES = (".config/GIMP/3.0", ".config/GIMP/3.2", ".var/app/org.gimp.GIMP/config/GIMP/3.0")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    return testing.test_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def user_venv(tmp_path_factory, wheel):
    return testing.user_venv(tmp_path_factory.mktemp("venv"), wheel)


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = testing.fake_home(tmp_path / "home")
    for k in testing.ENV_VARS:
        monkeypatch.delenv(k, raising=False)
    for k, v in testing.TOOL_HOMES.items():
        monkeypatch.setenv(k, os.environ.get(k, v))
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # pip's cache: not in the home
    return h


def run(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    env = testing.home_env(home)
    return subprocess.run([sys.executable, str(INSTALL), *args], env=env, capture_output=True, text=True,
                          input=input, timeout=300, cwd=str(home))


def offline(wheel, *extra) -> list[str]:
    return ["--yes", "--torch", "skip", "--engine", "classical", "--source", str(wheel),
            f"--pip-args={testing.OFFLINE_PIP}", *extra]


def assert_same_package(installed: Path, tree: Path):
    """The installed folder holds exactly the package from the tree: same files, same bytes."""
    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert files(installed) == files(tree)


def check_plugin(folder: Path, venv_python: Path, model: str | None = None):
    # the plug-in's files and sub-folders (e.g. its help pages), without caches
    shipped = {p.name for p in plugin_files.plugin_source_dir().iterdir()
               if p.name != "__pycache__" and p.suffix != ".pyc"}
    assert {p.name for p in folder.iterdir()} == shipped | {"drip_matting.json", "drip_protocol"}
    assert {"drip_matting.py", "plugin_logic.py"} <= shipped
    main = folder / "drip_matting.py"
    assert main.stat().st_mode & stat.S_IXUSR and main.stat().st_mode & stat.S_IXOTH
    assert_same_package(folder / "drip_protocol", REPO / "drip_protocol")
    assert (folder / "drip_matting.py").read_bytes() == \
        (plugin_files.plugin_source_dir() / "drip_matting.py").read_bytes()
    cfg = json.loads((folder / "drip_matting.json").read_text())
    cmd = cfg["server_command"]
    if "/.var/app/org.gimp.GIMP/" in str(folder):
        assert cmd[:2] == ["flatpak-spawn", "--host"]
        cmd = cmd[2:]
    expected = [str(venv_python), "-m", "drip_core.server", "--engine", "auto"]
    if model:
        expected += ["--drip-model", model]
    assert cmd == expected
    home = Path(os.environ["HOME"])
    assert cfg["log_file"] == str(home / ".local/state/drip-matting/server.log")
    assert cfg["discovery_file"] == str(home / ".local/state/drip-matting/server.json")
    assert cfg["installed_version"] == "0.1.0"
    return cfg


def test_install_noop_rerun_and_uninstall_leave_nothing(home, wheel, user_venv):
    before = testing.snapshot(home)
    r = run(home, *offline(wheel))
    assert r.returncode == 0, r.stdout + r.stderr
    venv = home / ".local/share/drip-matting/venv"
    py = venv / "bin" / "python"
    for prof in PROFILES:
        check_plugin(home / prof / "plug-ins" / "drip_matting", py)
    # the server's environment really holds this drip-matting
    out = subprocess.run([str(py), "-I", "-c",
                          "import drip_core, drip_protocol as p; print(drip_core.__version__)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "0.1.0", out.stderr
    manifest = testing.read_json(home / ".local/share/drip-matting/install-manifest.json")
    assert manifest["status"] == "complete" and manifest["venv"]["created"] is True
    assert len(manifest["plugins"]) == 3

    # a second run changes nothing, not even a timestamp
    installed = testing.snapshot(home)
    r2 = run(home, *offline(wheel))
    assert r2.returncode == 0, r2.stderr
    assert "Nothing to do" in r2.stdout
    assert "[do  ]" not in r2.stdout
    assert testing.snapshot(home) == installed

    # --upgrade rebuilds the environment this installer made and reinstalls the software
    marker = venv / "upgrade-probe"
    marker.write_text("x")
    r_up = run(home, *offline(wheel, "--upgrade"))
    assert r_up.returncode == 0, r_up.stdout + r_up.stderr
    assert not marker.exists() and "removing the old environment" in r_up.stdout
    assert subprocess.run([str(py), "-I", "-c", "import drip_core"]).returncode == 0
    for prof in PROFILES:
        check_plugin(home / prof / "plug-ins" / "drip_matting", py)

    # moving to another environment (--venv): the plug-ins follow, the old one is remembered
    r_mv = run(home, *offline(wheel, "--venv", str(user_venv)))
    assert r_mv.returncode == 0, r_mv.stdout + r_mv.stderr
    for prof in PROFILES:
        check_plugin(home / prof / "plug-ins" / "drip_matting", user_venv / "bin" / "python")
    manifest = testing.read_json(home / ".local/share/drip-matting/install-manifest.json")
    assert manifest["stale_venvs"] == [str(venv)] and manifest["venv"]["created"] is False

    # uninstall: the home is exactly as before (the user's own environment is left alone)
    r3 = run(home, "--uninstall", "--yes")
    assert r3.returncode == 0, r3.stdout + r3.stderr
    assert testing.snapshot(home) == before
    assert (user_venv / "bin" / "python").exists()
    r4 = run(home, "--uninstall", "--yes")  # and again: still fine
    assert r4.returncode == 0 and testing.snapshot(home) == before


def test_failed_software_step_leaves_no_plugin(home, tmp_path, wheel):
    broken = tmp_path / "drip_matting-0.1.0-py3-none-any.whl"
    broken.write_bytes(b"this is not a wheel")
    before = testing.snapshot(home)
    r = run(home, *offline(broken))
    assert r.returncode == 1
    assert "pip install failed" in r.stderr and "no half-installed plug-in" in r.stderr
    for prof in PROFILES:
        assert not (home / prof / "plug-ins" / "drip_matting").exists()
    # the environment stays, recorded as ours and unfinished, so the next run resumes there
    venv = home / ".local/share/drip-matting/venv"
    manifest = testing.read_json(home / ".local/share/drip-matting/install-manifest.json")
    assert manifest["status"] == "incomplete" and manifest["venv"]["created"] and venv.is_dir()
    assert "kept the unfinished environment" in r.stdout
    r1 = run(home, *offline(wheel), "--dry-run")
    assert "[ok  ] Python environment" in r1.stdout and "[do  ] drip-matting" in r1.stdout
    # uninstall clears it all
    r2 = run(home, "--uninstall", "--yes")
    assert r2.returncode == 0, r2.stderr
    assert testing.snapshot(home) == before


def test_failure_in_the_middle_of_the_plugin_step(home, wheel, user_venv, monkeypatch, capsys):
    """The second profile's copy fails half way: no partial folder anywhere, the first one undone."""
    real_copy2 = plugin_files.shutil.copy2
    calls = {"n": 0}

    def flaky_copy2(src, dst, *a, **kw):
        # os.fspath: copytree may pass a DirEntry
        if os.fspath(src).endswith(os.path.join("drip_protocol", "framing.py")):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(28, "No space left on device")
        return real_copy2(src, dst, *a, **kw)
    monkeypatch.setattr(plugin_files.shutil, "copy2", flaky_copy2)
    rc = cli.main(offline(wheel, "--venv", str(user_venv)))
    err = capsys.readouterr().err
    assert rc == 1 and "No space left on device" in err
    for prof in PROFILES:
        plugins = home / prof / "plug-ins"
        assert not (plugins / "drip_matting").exists()
        assert not plugins.exists() or list(plugins.iterdir()) == []   # no staging folder left
    assert user_venv.exists()  # the user's own environment is never removed
    monkeypatch.setattr(plugin_files.shutil, "copy2", real_copy2)
    assert cli.main(offline(wheel, "--venv", str(user_venv))) == 0
    for prof in PROFILES:
        check_plugin(home / prof / "plug-ins" / "drip_matting", user_venv / "bin" / "python")


def test_model_import_upgrade_keeps_model_purge_removes(home, wheel, user_venv, tmp_path, capsys):
    model = testing.make_model(tmp_path / "my-drip-model")
    args = ["--yes", "--torch", "skip", "--source", str(wheel), f"--pip-args={testing.OFFLINE_PIP}",
            "--venv", str(user_venv), "--drip-model", str(model), "--gimp-profile", str(home / PROFILES[1])]
    assert cli.main(args) == 0
    dest = home / ".local/share/drip-matting/models/my-drip-model"
    assert (dest / "drip.json").read_bytes() == (model / "drip.json").read_bytes()
    assert (dest / "unet/diffusion_pytorch_model.safetensors").read_bytes() == b"weights" * 1000
    assert testing.read_json(home / ".config/drip-matting/config.json") == {"drip_model": str(dest)}
    check_plugin(home / PROFILES[1] / "plug-ins/drip_matting", user_venv / "bin/python", model=str(dest))
    assert not (home / PROFILES[0] / "plug-ins").exists()  # only the named profile

    state = testing.snapshot(home)
    capsys.readouterr()
    assert cli.main(args) == 0
    assert "Nothing to do" in capsys.readouterr().out
    assert testing.snapshot(home) == state

    # --upgrade replaces software and plug-in, keeps the model (not copied again)
    weights = dest / "unet/diffusion_pytorch_model.safetensors"
    mtime = weights.stat().st_mtime_ns
    assert cli.main(args + ["--upgrade"]) == 0
    assert weights.stat().st_mtime_ns == mtime
    config = testing.read_json(home / PROFILES[1] / "plug-ins/drip_matting/drip_matting.json")
    assert "--drip-model" in config["server_command"]

    # uninstall keeps models ...
    assert cli.main(["--uninstall", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Models are kept" in out
    assert weights.is_file()
    assert not (home / ".config/drip-matting").exists()
    assert not (home / PROFILES[1] / "plug-ins/drip_matting").exists()
    # ... until --purge
    assert cli.main(["--uninstall", "--yes", "--purge"]) == 0
    assert not (home / ".local/share/drip-matting").exists()
    assert user_venv.exists()


def test_model_used_in_place(home, wheel, user_venv, tmp_path, capsys):
    model = testing.make_model(tmp_path / "models-on-a-big-disk" / "drip-v1")
    args = offline(wheel, "--venv", str(user_venv), "--drip-model", str(model), "--model-mode", "link")
    args[args.index("classical")] = "auto"
    assert cli.main(args) == 0
    assert testing.read_json(home / ".config/drip-matting/config.json") == {"drip_model": str(model)}
    assert not (home / ".local/share/drip-matting/models").exists()
    check_plugin(home / PROFILES[0] / "plug-ins/drip_matting", user_venv / "bin/python", model=str(model))
    state, src = testing.snapshot(home), testing.snapshot(model)
    capsys.readouterr()
    assert cli.main(args) == 0 and "Nothing to do" in capsys.readouterr().out
    assert testing.snapshot(home) == state and testing.snapshot(model) == src
    # a weight file damaged later is caught on the next run
    (model / "unet/diffusion_pytorch_model.safetensors").write_bytes(b"bit rot")
    assert cli.main(args) == 1
    assert "does not match its sha256" in capsys.readouterr().err
    assert cli.main(["--uninstall", "--yes", "--purge"]) == 0
    assert model.is_dir()  # never deleted: it is the user's folder
    assert not (home / ".config/drip-matting").exists()


def test_corrupt_model_is_refused_and_nothing_installed(home, wheel, user_venv, tmp_path, capsys):
    model = testing.make_model(tmp_path / "m")
    (model / "unet/diffusion_pytorch_model.safetensors").write_bytes(b"changed")
    rc = cli.main(["--yes", "--torch", "skip", "--source", str(wheel), f"--pip-args={testing.OFFLINE_PIP}",
                   "--venv", str(user_venv), "--drip-model", str(model)])
    err = capsys.readouterr().err
    assert rc == 1 and "does not match its sha256" in err
    models = home / ".local/share/drip-matting/models"
    assert not models.exists() or list(models.iterdir()) == []
    for prof in PROFILES:
        assert not (home / prof / "plug-ins/drip_matting").exists()


@pytest.mark.parametrize("args, message", [
    (["--torch", "rocm"], "invalid choice: 'rocm'"),
    (["--purge"], "--purge only goes with --uninstall"),
    (["--upgrade", "--uninstall"], "not allowed with argument"),
    (["--drip-model", "/nonexistent/model"], "--drip-model /nonexistent/model: no such folder"),
    (["--gimp-profile", "/nonexistent/GIMP/3.0"], "no such folder"),
    (["--engine", "classical", "--download-model"], "a DRIP model is of no use"),
    (["--download-model"], "no model download source is configured"),
])
def test_bad_arguments_give_clear_messages(home, args, message):
    r = run(home, "--yes", "--torch", "skip", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert not (home / ".local").exists()


def test_gimp2_profile_and_missing_gimp(tmp_path):
    home = tmp_path / "home"
    (home / ".config/GIMP/2.10").mkdir(parents=True)
    r = run(home, "--yes", "--torch", "skip")
    assert r.returncode == 2
    assert "No GIMP 3 profile was found" in r.stderr and "GIMP/2.10" in r.stderr
    assert "Start GIMP 3 once" in r.stderr and "--gimp-profile" in r.stderr
    r = run(home, "--yes", "--gimp-profile", str(home / ".config/GIMP/2.10"))
    assert r.returncode == 2 and "needs GIMP 3.0 or later" in r.stderr
    # a dry run still shows the plan, and says what the plug-in step needs (issue 25)
    r = run(home, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[do  ] Python environment" in r.stdout and "dry run: nothing was changed" in r.stdout
    stop = [line for line in r.stdout.splitlines() if line.startswith("  [stop] plug-in")]
    assert len(stop) == 1 and "no GIMP 3 profile was found" in stop[0], r.stdout
    assert "start GIMP 3 once" in stop[0] and "--gimp-profile DIR" in stop[0]
    assert "GIMP/2.10" in r.stdout  # the summary says where it looked and what it found
    assert sorted(p.name for p in home.rglob("*")) == [".config", "2.10", "GIMP"]


def test_dry_run_prints_the_plan_and_changes_nothing(home, wheel):
    before = testing.snapshot(home)
    r = run(home, *offline(wheel), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "dry run: nothing was changed" in r.stdout
    assert r.stdout.count("[do  ] plug-in into") == 3
    assert "GIMP (Flatpak) 3.0" in r.stdout and "GIMP 3.2" in r.stdout
    assert testing.snapshot(home) == before


def plan_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("  [")]


def test_default_is_classical_torch_only_with_a_model_or_drip(home, wheel, tmp_path):
    """No DRIP weights exist anywhere, so with no model the plan downloads no torch (issue 25)."""
    before = testing.snapshot(home)
    r = run(home, "--dry-run", "--source", str(wheel))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "engine:      the classical engine only (no torch) - no DRIP model given" in r.stdout
    assert "--drip-model FOLDER" in r.stdout  # how to add DRIP later
    assert "torch:       none" in r.stdout and "about 0.3 GB" in r.stdout
    assert not any("torch" in line for line in plan_lines(r.stdout)), r.stdout
    assert "[drip]" not in r.stdout
    # a fresh install says plainly that no server runs (no "[ok] ... is stopped if ...")
    assert plan_lines(r.stdout)[0] == "  [ok  ] no Drip server is running: nothing to stop"
    # a model given, or DRIP asked for: torch is planned
    model = testing.make_model(tmp_path / "drip-model")
    for extra in (["--drip-model", str(model)], ["--engine", "drip"], ["--torch", "cpu"]):
        r = run(home, "--dry-run", "--source", str(wheel), *extra)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "engine:      DRIP and the classical engine (torch)" in r.stdout
        assert any(line.startswith("  [do  ] torch (") for line in plan_lines(r.stdout)), r.stdout
    assert testing.snapshot(home) == before


def test_rerun_keeps_the_engine_the_last_install_chose(home, wheel, user_venv):
    plain = ["--yes", "--source", str(wheel), f"--pip-args={testing.OFFLINE_PIP}"]
    assert run(home, *offline(wheel)).returncode == 0
    manifest = testing.read_json(home / DATA / "install-manifest.json")
    assert manifest["engine"] == "classical" and "torch_request" not in manifest
    installed = testing.snapshot(home)
    r = run(home, *plain, "--dry-run")
    assert "the classical engine only (no torch) - kept from the last install" in r.stdout, r.stdout
    assert "[do  ]" not in r.stdout and not any("torch" in line for line in plan_lines(r.stdout))
    r = run(home, *plain)
    assert r.returncode == 0 and "Nothing to do" in r.stdout, r.stdout + r.stderr
    assert testing.snapshot(home) == installed
    # DRIP asked for once (torch left to the user) is kept too, and so is --torch skip
    r = run(home, *plain, "--engine", "drip", "--torch", "skip", "--venv", str(user_venv))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(home, *plain, "--dry-run")
    assert "DRIP and the classical engine (torch) - kept from the last install" in r.stdout, r.stdout
    assert "torch:       none - --torch skip" in r.stdout and "(kept from the last install)" in r.stdout
    assert not any("torch" in line for line in plan_lines(r.stdout))
    r = run(home, *plain, "--engine", "classical", "--dry-run")
    assert "the classical engine only (no torch) - --engine classical" in r.stdout


def test_terminal_questions(home, wheel, user_venv):
    """Interactive mode (a terminal, no --yes) asks per profile when the user does not want all."""
    import pty  # noqa: F401 - only on Unix; the answers come through a real pseudo-terminal
    code = ("import sys, os, pty; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:], "
            "lambda fd: os.read(fd, 1024))))")
    answers = "n\nn\ny\nn\n\ny\n"  # not all; 3.2 no; 3.0 yes; flatpak no; no model; proceed
    env = testing.home_env(home)
    r = subprocess.run([sys.executable, "-c", code, sys.executable, str(INSTALL), "--torch", "skip",
                        "--engine", "auto", "--source", str(wheel), f"--pip-args={testing.OFFLINE_PIP}",
                        "--venv", str(user_venv)], input=answers, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "Install into all of these GIMP profiles?" in r.stdout and "Proceed?" in r.stdout
    assert (home / PROFILES[0] / "plug-ins/drip_matting").is_dir()
    assert not (home / PROFILES[1] / "plug-ins").exists()
    assert not (home / PROFILES[2] / "plug-ins").exists()


def start_server(home: Path):
    import drip_protocol as protocol
    disc = Path(protocol.default_discovery_file())
    proc = subprocess.Popen([sys.executable, "-m", "drip_core.server", "--engine", "classical",
                             "--discovery-file", str(disc), "--log-file", protocol.default_log_file()],
                            cwd=str(REPO),
                            env=testing.home_env(home, {**os.environ, "PYTHONPATH": str(REPO)}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # In real use the server is no child of the installer; here it is, so reap it as soon as it
    # exits (a zombie would still look alive to the installer's pid check).
    import threading
    threading.Thread(target=proc.wait, daemon=True).start()
    deadline = time.monotonic() + 60
    while protocol.read_discovery(str(disc)) is None or \
            protocol.read_discovery(str(disc)).get("pid") != proc.pid:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def test_upgrade_and_uninstall_stop_a_running_server(home, wheel, user_venv, capsys):
    assert cli.main(offline(wheel, "--venv", str(user_venv))) == 0
    procs = []
    try:
        procs.append(start_server(home))
        pid = procs[0].pid
        capsys.readouterr()
        # the plan says what happens to it, in each case (issue 25)
        assert cli.main(offline(wheel, "--venv", str(user_venv), "--dry-run")) == 0
        assert plan_lines(capsys.readouterr().out)[0].startswith(
            f"  [ok  ] the running Drip server (pid {pid}, 127.0.0.1:")
        assert cli.main(offline(wheel, "--venv", str(user_venv), "--dry-run", "--upgrade")) == 0
        first = plan_lines(capsys.readouterr().out)[0]
        assert first.startswith(f"  [do  ] stop the running Drip server (pid {pid},")
        assert first.endswith("its software changes")
        assert cli.main(["--uninstall", "--dry-run"]) == 0
        first = plan_lines(capsys.readouterr().out)[0]
        assert first.startswith(f"  [do  ] stop the running Drip server (pid {pid},")
        assert cli.main(offline(wheel, "--venv", str(user_venv))) == 0  # nothing changes: it keeps running
        assert "Nothing to do" in capsys.readouterr().out and procs[0].poll() is None
        assert cli.main(offline(wheel, "--venv", str(user_venv), "--upgrade")) == 0
        assert procs[0].wait(20) == 0  # replaced software: stopped cleanly on request
        procs.append(start_server(home))
        t0 = time.monotonic()
        assert cli.main(["--uninstall", "--yes"]) == 0
        assert procs[1].wait(20) == 0
        capsys.readouterr()
        assert cli.main(["--uninstall", "--dry-run"]) == 0
        assert plan_lines(capsys.readouterr().out)[0] == "  [ok  ] no Drip server is running: nothing to stop"
        assert time.monotonic() - t0 < 10
        assert not (home / ".local/state/drip-matting").exists()
        assert not (home / ".local").exists()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_bundle_unpacks_and_installs(home, tmp_path, wheel, user_venv):
    import zipfile

    from installer import bundle
    archive = bundle.build(tmp_path / "dist", wheel=wheel, log=lambda *_: None)
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        mode = z.getinfo("drip-matting-0.1.0/gimp_plugin/drip_matting/drip_matting.py").external_attr >> 16
        assert mode & stat.S_IXUSR
        z.extractall(tmp_path / "unpacked")
    top = tmp_path / "unpacked" / "drip-matting-0.1.0"
    for rel in ("install.py", "README.txt", "installer/install.py",
                "gimp_plugin/drip_matting/plugin_logic.py", "drip_protocol/__init__.py",
                "wheels/drip_matting-0.1.0-py3-none-any.whl"):
        assert f"drip-matting-0.1.0/{rel}" in names
    env = testing.home_env(home)
    r = subprocess.run([sys.executable, str(top / "install.py"), "--yes", "--torch", "skip",
                        "--engine", "classical", f"--pip-args={testing.OFFLINE_PIP}",
                        "--venv", str(user_venv)],
                       env=env, capture_output=True, text=True, cwd=str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "drip_matting-0.1.0-py3-none-any.whl" in r.stdout  # the bundled wheel was the source
    for prof in PROFILES:
        check_plugin(home / prof / "plug-ins/drip_matting", user_venv / "bin/python")


def test_gui_without_pyqt6_bootstraps_then_says_what_to_do(home):
    """A Python without PyQt6 builds the venv, tries to put PyQt6 there (offline here: fails
    clearly), and the venv it made is removed by --uninstall."""
    base = getattr(sys, "_base_executable", sys.executable)
    if subprocess.run([base, "-c", "import PyQt6"], capture_output=True).returncode == 0:
        pytest.skip(f"{base} has PyQt6: no bootstrap needed")
    env = testing.home_env(home)
    r = subprocess.run([base, str(INSTALL), "--gui", "--pip-args=--no-index"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "needs PyQt6; installing it into" in r.stdout
    assert "pip install failed" in r.stderr and "Use the terminal installer instead (drop --gui)" in r.stderr
    venv = home / ".local/share/drip-matting/venv"
    assert (venv / ".drip-matting-venv").is_file()
    r = run(home, "--uninstall", "--yes")
    assert r.returncode == 0 and not venv.exists()


# --- recovery from a broken environment (issue 12) ------------------------------------------------

DATA = ".local/share/drip-matting"


def pipless_venv(path: Path) -> Path:
    """What Debian's python3 without python3-venv leaves: a venv with no pip (and no marker)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    assert not (path / "bin/pip").exists()
    return path


def test_pipless_venv_of_a_failed_run_is_rebuilt_upgraded_and_uninstalled(home, wheel):
    before = testing.snapshot(home)
    venv = pipless_venv(home / DATA / "venv")
    # --uninstall removes it although the installer's marker is missing
    r = run(home, "--uninstall", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not venv.exists() and not (home / DATA).exists()

    # the next install rebuilds it instead of failing with "No module named pip"
    pipless_venv(venv)
    r = run(home, *offline(wheel), "--dry-run")
    assert "[do  ] Python environment" in r.stdout and "(rebuilt: it has no pip)" in r.stdout, r.stdout
    r = run(home, *offline(wheel))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removing the broken environment" in r.stdout
    assert (venv / ".drip-matting-venv").is_file()
    assert subprocess.run([str(venv / "bin/python"), "-I", "-c", "import pip, drip_core"]).returncode == 0
    for prof in PROFILES:
        check_plugin(home / prof / "plug-ins" / "drip_matting", venv / "bin/python")

    # a healthy environment of ours that lost its marker: --upgrade still rebuilds it ...
    (venv / ".drip-matting-venv").unlink()
    probe = next((venv / "lib").iterdir()) / "upgrade-probe"
    probe.write_text("x")
    r = run(home, *offline(wheel, "--upgrade"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removing the old environment" in r.stdout and not probe.exists()
    assert (venv / ".drip-matting-venv").is_file()
    # ... and --uninstall removes it
    (venv / ".drip-matting-venv").unlink()
    r = run(home, "--uninstall", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert testing.snapshot(home, skip=(".local",)) == before and not (home / DATA).exists()


def test_failed_venv_creation_leaves_nothing_behind(home, tmp_path, wheel):
    """Debian without python3-venv: ``python3 -m venv`` makes a pip-less venv, then exits 1."""
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text(f"""#!/bin/sh
if [ "$1 $2 $3" = "-I -m venv" ]; then
    shift 3
    {sys.executable} -I -m venv --without-pip "$@"
    echo "The virtual environment was not created successfully because ensurepip is not available."
    exit 1
fi
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    before = testing.snapshot(home)
    r = run(home, *offline(wheel, "--python", str(fake)))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ensurepip is not available" in r.stdout
    assert "python3-venv" in r.stderr and "nothing was left there" in r.stderr
    assert "install.py --yes --torch skip" in r.stderr  # how to run it again
    assert not (home / DATA / "venv").exists()
    for prof in PROFILES:
        assert not (home / prof / "plug-ins").exists()
    r = run(home, *offline(wheel), "--dry-run")
    assert "[do  ] Python environment" in r.stdout
    r = run(home, "--uninstall", "--yes")
    assert r.returncode == 0 and testing.snapshot(home) == before


def test_environments_the_installer_did_not_make_are_left_alone(home, tmp_path, wheel):
    # the user's own pip-less venv, named with --venv: refused clearly, never removed
    mine = pipless_venv(tmp_path / "my-venv")
    mine_before = testing.snapshot(mine)
    r = run(home, *offline(wheel, "--venv", str(mine)))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "has no pip" in r.stderr and "left alone" in r.stderr
    r = run(home, "--uninstall", "--yes", "--venv", str(mine))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "was not made by this installer and is kept" in r.stdout
    assert testing.snapshot(mine) == mine_before

    # a venv in the installer's place that holds something else: not recognisably ours
    venv = pipless_venv(home / DATA / "venv")
    (venv / "notes.txt").write_text("mine")
    state = testing.snapshot(venv)
    r = run(home, *offline(wheel))
    assert r.returncode == 1 and "left alone" in r.stderr, r.stdout + r.stderr
    assert run(home, "--uninstall", "--yes").returncode == 0
    assert testing.snapshot(venv) == state

    # the installer's place as a link to a venv elsewhere: the link target is never removed
    (venv / "notes.txt").unlink()
    moved = tmp_path / "elsewhere"
    venv.rename(moved)
    venv.symlink_to(moved, target_is_directory=True)
    state = testing.snapshot(moved)
    assert run(home, "--uninstall", "--yes").returncode == 0
    assert testing.snapshot(moved) == state and venv.is_symlink()
