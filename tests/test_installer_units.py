"""Installer parts on their own: GIMP profile discovery per OS, torch build choice, model
import and resumable download, the atomic plug-in folder, stdlib-only imports."""
from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from installer import model_import, plugin_files, profiles, testing, torch_choice
from installer.torch_choice import Gpu, choose_torch

REPO = Path(__file__).resolve().parents[1]


# --- GIMP profiles ------------------------------------------------------------------------------

def test_linux_profiles_native_flatpak_snap(tmp_path):
    home = testing.fake_home(tmp_path, ("3.0", "3.2", "2.10", "flatpak:3.0", "flatpak:3.2"))
    (home / "snap/gimp/current/.config/GIMP/3.0").mkdir(parents=True)
    (home / ".config/GIMP/3.x-backup").mkdir()
    found = profiles.find_profiles(home=home, platform="linux", environ={})
    assert [(p.kind, p.version) for p in found] == [("native", "3.2"), ("native", "3.0"), ("flatpak", "3.2"),
                                                    ("flatpak", "3.0"), ("snap", "3.0")]
    assert found[0].plugins_dir == home / ".config/GIMP/3.2/plug-ins"
    assert found[2].sandboxed and not found[0].sandboxed


def test_xdg_config_home_and_other_oses(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "GIMP/3.0").mkdir(parents=True)
    found = profiles.find_profiles(home=tmp_path, platform="linux", environ={"XDG_CONFIG_HOME": str(xdg)})
    assert [p.path for p in found] == [xdg / "GIMP/3.0"]
    appdata = tmp_path / "AppData/Roaming"
    (appdata / "GIMP/3.0").mkdir(parents=True)
    win = profiles.find_profiles(home=tmp_path, platform="win32", environ={"APPDATA": str(appdata)})
    assert [p.path for p in win] == [appdata / "GIMP/3.0"]
    mac = tmp_path / "Library/Application Support/GIMP/3.2"
    mac.mkdir(parents=True)
    assert [p.path for p in profiles.find_profiles(home=tmp_path, platform="darwin", environ={})] == [mac]


def test_named_profiles(tmp_path):
    home = testing.fake_home(tmp_path, ("3.0", "2.10", "flatpak:3.2"))
    assert profiles.named_profile(home / ".config/GIMP/3.0/plug-ins").path == home / ".config/GIMP/3.0"
    assert profiles.named_profile(home / ".var/app/org.gimp.GIMP/config/GIMP/3.2").kind == "flatpak"
    custom = tmp_path / "portable-gimp-profile"
    custom.mkdir()
    assert profiles.named_profile(custom).kind == "custom"
    with pytest.raises(profiles.ProfileError, match="needs GIMP 3.0 or later"):
        profiles.named_profile(home / ".config/GIMP/2.10")
    with pytest.raises(profiles.ProfileError, match="no such folder"):
        profiles.named_profile(tmp_path / "nope")
    msg = profiles.no_gimp_message(home=tmp_path / "empty", platform="linux", environ={})
    assert "GIMP/3.*" in msg and "org.gimp.GIMP" in msg and "--gimp-profile" in msg


# --- torch ----------------------------------------------------------------------------------------

def test_torch_choice():
    gpu = [Gpu("NVIDIA GeForce RTX 4090", (12, 9))]
    assert choose_torch("auto", gpus=gpu, platform="linux").index_url.endswith("/cu128")
    assert choose_torch("auto", gpus=[Gpu("old", (12, 6))], platform="linux").index_url.endswith("/cu126")
    assert choose_torch("auto", gpus=[Gpu("older", (11, 8))], platform="linux").index_url.endswith("/cu118")
    cpu = choose_torch("auto", gpus=[], platform="linux")
    assert cpu.build == "cpu" and cpu.pip_args() == ["torch", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert choose_torch("auto", gpus=[], platform="win32").build == "cpu"
    mac = choose_torch("auto", platform="darwin")
    assert mac.build == "mps" and mac.index_url is None and mac.pip_args() == ["torch"]
    assert choose_torch("auto", engine="classical", gpus=gpu).build == "skip"
    assert choose_torch("skip", gpus=gpu).pip_args() == []
    assert choose_torch("cuda", gpus=[], platform="linux").build == "cuda"
    with pytest.raises(ValueError, match="no CUDA build of torch for macOS"):
        choose_torch("cuda", platform="darwin")
    assert torch_choice.disk_needed_mb(cpu, "auto", True) > \
        torch_choice.disk_needed_mb(cpu, "classical", False)


def test_nvidia_smi_parsing(monkeypatch):
    class R:
        def __init__(self, out):
            self.returncode, self.stdout = 0, out
    monkeypatch.setattr(torch_choice.shutil, "which", lambda name: "/usr/bin/nvidia-smi")

    def runner(cmd, **kw):
        if "--query-gpu=name" in cmd:
            return R("A100\n")
        return R("| NVIDIA-SMI 550  Driver  CUDA Version: 12.4 |")
    assert torch_choice.detect_nvidia(runner) == [Gpu("A100", (12, 4))]
    monkeypatch.setattr(torch_choice.shutil, "which", lambda name: None)
    assert torch_choice.detect_nvidia(runner) == []


# --- model import ---------------------------------------------------------------------------------

def test_copy_model_verifies_and_is_atomic(tmp_path):
    src = testing.make_model(tmp_path / "src")
    dest = model_import.copy_model(src, tmp_path / "models", log=lambda *_: None)
    assert dest == tmp_path / "models/src"
    assert model_import.verify_in_place(dest)["format"] == "drip-matting-model"
    bad = testing.make_model(tmp_path / "bad")
    (bad / "unet/diffusion_pytorch_model.safetensors").write_bytes(b"truncated")
    with pytest.raises(model_import.ModelError, match="does not match its sha256"):
        model_import.copy_model(bad, tmp_path / "models", log=lambda *_: None)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["src"]  # no staging left
    (bad / "drip.json").unlink()
    with pytest.raises(model_import.ModelError, match="no drip.json"):
        model_import.copy_model(bad, tmp_path / "models", log=lambda *_: None)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one file with Range support; the first full request breaks off half way."""
    data = b""
    broken_once = False

    def log_message(self, *a):
        pass

    def do_GET(self):
        cls = type(self)
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(cls.data) - 1}/{len(cls.data)}")
        else:
            self.send_response(200)
        body = cls.data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not rng and not cls.broken_once:
            cls.broken_once = True
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


def test_download_resumes_and_imports(tmp_path):
    import zipfile
    model = testing.make_model(tmp_path / "drip-sd2-v1")
    archive = tmp_path / "drip-sd2-v1.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in model.rglob("*"):
            z.write(p, f"drip-sd2-v1/{p.relative_to(model).as_posix()}")
    RangeHandler.data = archive.read_bytes()
    RangeHandler.broken_once = False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/drip-sd2-v1.zip"
    sha = model_import._sha256(archive)
    dl = tmp_path / "dl/drip-sd2-v1.zip"
    logs = []
    try:
        with pytest.raises(model_import.ModelError, match="run the installer again to resume"):
            model_import.download(url, dl, sha256=sha, log=logs.append)
        part = dl.with_name(dl.name + ".part")
        assert 0 < part.stat().st_size < len(RangeHandler.data)
        model_import.download(url, dl, sha256=sha, log=logs.append)
        assert any("resuming" in line for line in logs)
        assert dl.read_bytes() == RangeHandler.data and not part.exists()
    finally:
        server.shutdown()
    folder = model_import.unpack_model(dl, tmp_path / "unpacked")
    dest = model_import.copy_model(folder, tmp_path / "models", log=logs.append)
    assert (dest / "drip.json").read_bytes() == (model / "drip.json").read_bytes()


def test_download_offline_message(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(model_import.ModelError) as exc:
        model_import.download(f"http://127.0.0.1:{port}/m.zip", tmp_path / "m.zip", log=lambda *_: None,
                              timeout=5)
    text = str(exc.value)
    assert "offline" in text and "--drip-model FOLDER" in text and "resumes" in text


# --- plug-in folder -----------------------------------------------------------------------------

def test_plugin_folder_replace_failure_keeps_previous(tmp_path, monkeypatch):
    cfg = plugin_files.plugin_config(["py", "-m", "drip_core.server"], version="0.1.0")
    folder = plugin_files.install_plugin_folder(tmp_path, cfg)
    assert plugin_files.plugin_folder_matches(tmp_path, cfg)
    before = testing.snapshot(tmp_path)
    cfg2 = dict(cfg, installed_version="0.2.0")
    assert not plugin_files.plugin_folder_matches(tmp_path, cfg2)
    real = plugin_files.os.replace

    def fail_second(src, dst):
        if Path(dst) == folder and Path(src).name == plugin_files.PLUGIN_NAME:
            raise OSError(5, "I/O error")
        return real(src, dst)
    monkeypatch.setattr(plugin_files.os, "replace", fail_second)
    with pytest.raises(OSError, match="I/O error"):
        plugin_files.install_plugin_folder(tmp_path, cfg2)
    assert testing.snapshot(tmp_path) == before  # old folder back, no staging left
    (folder / "drip_matting.py").chmod(0o644)
    assert not plugin_files.plugin_folder_matches(tmp_path, cfg)  # executable bit matters


def test_installer_imports_only_the_standard_library():
    """Until the venv exists, install.py runs on a bare Python: no third-party imports allowed."""
    code = ("import sys; sys.argv=['install.py','--help']\n"
            "import runpy\n"
            "try: runpy.run_path(sys.argv_path, run_name='__main__')\n"
            "except SystemExit: pass\n")
    code = code.replace("sys.argv_path", repr(str(REPO / "installer/install.py")))
    code += ("import sys, os\n"
             "std = sys.stdlib_module_names\n"
             "bad = sorted(m for m in sys.modules if m.split('.')[0] not in std and m.split('.')[0] not in "
             "('installer', 'drip_core', 'drip_protocol', '__main__', '_distutils_hack', 'sitecustomize', "
             "'usercustomize'))\n"
             "print(bad)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=str(REPO))
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    assert json.loads((REPO / "installer/model_sources.json").read_text())["models"] == []


# --- the plan, the shared module, hints ---------------------------------------------------------

def test_gui_and_cli_do_not_import_each_other():
    import ast

    def imported(name: str) -> set[str]:
        tree = ast.parse((REPO / "installer" / f"{name}.py").read_text(encoding="utf-8"))
        out = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                out |= {node.module or ""} | {f"{node.module or ''}.{a.name}".lstrip(".") for a in node.names}
            elif isinstance(node, ast.Import):
                out |= {a.name for a in node.names}
        return {m.rsplit(".", 1)[-1] if m.startswith("installer.") else m for m in out}
    assert "cli" not in imported("gui") and not {"cli", "gui"} & imported("common")
    assert "gui" in imported("cli")  # only cli opens the window


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    home = testing.fake_home(tmp_path / "home")
    for k in testing.ENV_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_install_plan_is_a_list_of_named_steps(fake_home, tmp_path):
    from installer.install_steps import build_install
    from installer.options import Options, default_venv, version
    from installer.plan import Step
    wheel = tmp_path / "drip_matting-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not read: nothing runs")
    p = build_install(Options(torch="skip", engine="classical", source=str(wheel), gpus=[]))
    assert all(isinstance(s, Step) and s.name and callable(s.done) and callable(s.run) for s in p.steps)
    names = [s.name for s in p.steps]
    assert names[1] == f"Python environment {fake_home / '.local/share/drip-matting/venv'}"
    assert [n.split(" into ")[0] for n in names[-3:]] == ["plug-in"] * 3
    assert p.venv == default_venv() and len(p.targets) == 3 and p.model_path is None
    assert p.torch.build == "skip" and p.disk_mb > 0 and p.version == version() and not p.all_recorded()
    text = p.describe()
    assert all(f"] {n}" in text for n in names) and "torch:       none" in text
    assert not any("torch" in n for n in names)  # no torch step that would do nothing
    assert not (fake_home / ".local").exists()  # building and describing a plan changes nothing


def make_plain_venv(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    (folder / "lib").mkdir()
    (folder / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    return folder


def test_which_environments_count_as_the_installers(fake_home, tmp_path):
    from installer import venv as venv_mod
    from installer.environment import venv_is_ours
    from installer.options import default_venv
    default = default_venv()
    assert not venv_is_ours(default)                    # nothing there
    make_plain_venv(default)
    assert venv_is_ours(default)                        # plain venv in the installer's place
    (default / "README").write_text("mine")
    assert not venv_is_ours(default)                    # something foreign in it
    (default / "README").unlink()
    (default / "pyvenv.cfg").write_text("not a venv config\n")
    assert not venv_is_ours(default)
    elsewhere = make_plain_venv(tmp_path / "elsewhere")
    assert not venv_is_ours(elsewhere)                  # not in the installer's place
    (elsewhere / venv_mod.MARKER).write_text("x")
    assert venv_is_ours(elsewhere)                      # its marker: made by the installer
    import shutil
    shutil.rmtree(default)
    default.symlink_to(make_plain_venv(tmp_path / "linked"), target_is_directory=True)
    assert not venv_is_ours(default)                    # a link to somewhere else


def test_create_venv_failure_removes_what_it_made(tmp_path):
    from installer import venv as venv_mod
    target = tmp_path / "venv"
    broken = tmp_path / "python3"  # makes part of a venv, then fails, as venv does without ensurepip
    broken.write_text('#!/bin/sh\nmkdir -p "$4/bin"; echo "home = /usr/bin" > "$4/pyvenv.cfg"; exit 1\n')
    broken.chmod(0o755)
    with pytest.raises(venv_mod.VenvError, match="python3-venv"):
        venv_mod.create_venv(target, broken, lambda *_: None)
    assert not target.exists()
    with pytest.raises(venv_mod.VenvError, match="cannot run"):
        venv_mod.create_venv(target, tmp_path / "no-python", lambda *_: None)
    assert not target.exists()
    (target / "x").mkdir(parents=True)
    with pytest.raises(venv_mod.VenvError, match="not empty"):
        venv_mod.create_venv(target, sys.executable, lambda *_: None)
    assert (target / "x").is_dir()  # a folder with something in it is never used, nor removed


def test_hints_name_the_interpreter_the_user_ran(monkeypatch):
    from installer import common
    monkeypatch.delenv(common.COMMAND_ENV, raising=False)
    on_path = {"python3": "/usr/bin/python3", "py": "C:\\Windows\\py.exe"}
    which = on_path.get
    cmd = common.installer_command
    assert cmd("--uninstall", argv0="installer/install.py", executable="/usr/bin/python3", platform="linux",
               which=which) == "python3 installer/install.py --uninstall"
    assert cmd("--uninstall", argv0="install.py", executable="/usr/bin/python3", platform="darwin",
               which=which) == "python3 install.py --uninstall"  # the bundle's launcher
    assert cmd("--uninstall", argv0="installer/install.py", executable="/opt/my py/bin/python3.12",
               platform="linux", which=which) == \
        "'/opt/my py/bin/python3.12' installer/install.py --uninstall"
    assert cmd(argv0="installer\\install.py", executable="C:\\Python312\\python.exe", platform="win32",
               which=which) == "py installer\\install.py"
    assert cmd("--venv", "/a b", argv0="install.py", executable="/usr/bin/python3", platform="linux",
               which=which) == "python3 install.py --venv '/a b'"
    assert common.interpreter_command("/usr/local/bin/python3", "linux", which) == "/usr/local/bin/python3"
    # the PyQt6 bootstrap re-runs the installer with the venv's Python, but hints keep the user's command
    monkeypatch.setenv(common.COMMAND_ENV, "python3 installer/install.py")
    assert cmd("--uninstall", executable="/home/a/.local/share/drip-matting/venv/bin/python") == \
        "python3 installer/install.py --uninstall"


# --- which engine set an install puts in place (issue 25) ------------------------------------------

@pytest.mark.parametrize("options, record, engine, kept", [
    ({}, {}, "classical", False),                                        # no model anywhere: no torch
    ({"drip_model": "m"}, {}, "drip", False),
    ({"model_url": "https://example.org/m.zip"}, {}, "drip", False),
    ({"engine": "drip"}, {}, "drip", False),
    ({"torch": "cuda"}, {}, "drip", False),                              # a torch build asks for DRIP
    ({"torch": "skip"}, {}, "classical", False),
    ({}, {"engine": "classical"}, "classical", True),
    ({}, {"engine": "drip"}, "drip", True),
    ({"engine": "classical"}, {"engine": "drip"}, "classical", False),
    ({"drip_model": "m"}, {"engine": "classical"}, "drip", False),
    # manifests of installers that did not remember the choice: what went into the venv tells
    ({}, {"venv": {"engine": "auto", "torch": "cpu", "extras": "[drip]"}}, "drip", True),
    ({}, {"venv": {"engine": "auto", "extras": ""}}, "classical", False),
    ({}, {"venv": {"engine": "classical"}}, "classical", True),
])
def test_engine_choice(options, record, engine, kept):
    from installer.options import Options, choose_engine
    choice = choose_engine(Options(**options), record)
    assert (choice.engine, choice.kept) == (engine, kept)
    if kept:
        assert "kept from the last install" in choice.reason
    if not options and not record:
        assert "--drip-model FOLDER" in choice.reason  # how to add DRIP later


def test_failed_drip_run_is_remembered_with_its_torch_choice(fake_home, tmp_path):
    """A rerun after a failed run continues with what that run was asked for, not the default."""
    from installer import manifest
    from installer.install_steps import build_install
    from installer.options import Options
    from installer.plan import Context, Reporter
    wheel = tmp_path / "drip_matting-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not read: nothing runs")
    p = build_install(Options(torch="cuda", source=str(wheel), gpus=[]))
    assert p.engine == "drip" and p.torch.build == "cuda"
    for undo in p.on_failure:
        undo(Context(Reporter(), p.record))
    record = manifest.load()
    assert record["engine"] == "drip" and record["torch_request"] == "cuda"
    again = build_install(Options(source=str(wheel), gpus=[]))
    assert again.engine == "drip" and again.torch.build == "cuda"
    assert "(kept from the last install)" in again.torch.reason
    classical = build_install(Options(engine="classical", source=str(wheel), gpus=[]))
    assert classical.torch.build == "skip"
