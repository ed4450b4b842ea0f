"""Run a real GIMP 3 (3.0.4 in a Debian trixie chroot, 3.2.6 in forky) against a real drip-server.

The roots are built and cached by tests/gimp/build_roots.sh under
$DRIP_GIMP_ROOTS (default /var/cache/drip-matting/gimp-roots/{trixie,forky}).
Loopback is shared between host and chroot (a chroot is not a network namespace), and
so is the PID namespace, so a server started here is reachable from GIMP in there; its
discovery file is written inside the root and handed to the plug-in through
DRIP_MATTING_SERVER_FILE (an in-chroot path).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
ALPHAMATTING = SHARED / "data" / "alphamatting_lowres"
ROOTS = Path(os.environ.get("DRIP_GIMP_ROOTS", "/var/cache/drip-matting/gimp-roots"))
STAMP = ".drip-gimp-root-complete"
WORK_BASE = "/tmp/drip-gimp-e2e"   # inside the root (the path as GIMP sees it)


def new_workdir(root: Path, kind: str) -> tuple[Path, str]:
    """A fresh work folder for one GIMP session: (host path, path inside the root).

    One per session and pytest process, so parallel runs do not collide; folders of
    processes that are gone are removed.
    """
    base = root / WORK_BASE.lstrip("/")
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    inside = f"{WORK_BASE}/{kind}-{os.getpid()}"
    work = root / inside.lstrip("/")
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    (work / "home").mkdir()
    # the GIMP-side scripts' helpers
    shutil.copyfile(REPO / "tests" / "gimp" / "in_gimp.py", work / "in_gimp.py")
    return work, inside

VERSIONS = {
    "3.0": {"suite": "trixie", "binary": "gimp-console-3.0", "gui": "gimp-3.0", "profile": "3.0",
            "expect": "3.0.4"},
    "3.2": {"suite": "forky", "binary": "gimp-console-3.2", "gui": "gimp-3.2", "profile": "3.2",
            "expect": "3.2.6"},
}


def root_dir(version: str) -> Path:
    return ROOTS / VERSIONS[version]["suite"]


def skip_reason(version: str) -> str | None:
    """Why the GIMP tests for ``version`` cannot run here, or None."""
    if os.environ.get("DRIP_GIMP_TESTS", "1") == "0":
        return "GIMP end-to-end tests disabled by DRIP_GIMP_TESTS=0"
    if not sys.platform.startswith("linux") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "GIMP end-to-end tests need root on Linux (they chroot into cached Debian roots)"
    root = root_dir(version)
    if not (root / STAMP).is_file():
        return (f"no GIMP {version} root at {root}: build it with `sudo tests/gimp/build_roots.sh` "
                f"(needs Debian's package registry; a few minutes)")
    if not (root / "usr" / "bin" / VERSIONS[version]["binary"]).exists():
        return f"{root} has no {VERSIONS[version]['binary']} (rebuild: remove {root} and run build_roots.sh)"
    if not ALPHAMATTING.is_dir():
        return f"the real photos are not at {ALPHAMATTING} (../shared absent)"
    return None


def is_mounted(path) -> bool:
    """From /proc/mounts: os.path.ismount misses bind mounts within one filesystem."""
    target = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == target:
                return True
    return False


class RootMounts:
    """proc (always) and read-only bind mounts of host folders inside a root, kept while
    any GIMP session of any process needs them.

    Users are tracked as pids in a small JSON file under a lock, so parallel test runs do
    not unmount under each other; the last one out unmounts everything recorded (dead
    pids are ignored). Bind mounts are only ever made on targets that do not exist in the
    root or are empty folders, so nothing of the root is ever hidden.
    """

    def __init__(self, root: Path, binds=()):
        self.root = root
        self.binds = [Path(b) for b in binds]
        self.state = root / "run" / "drip-gimp-mounts.json"

    def _target(self, path: Path) -> Path:
        return self.root / str(path).lstrip("/")

    @staticmethod
    def _umount(target: Path):
        for _ in range(20):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode == 0:
                return
            time.sleep(0.25)
        subprocess.run(["umount", "-l", str(target)], capture_output=True)

    def _update(self, joining: bool):
        import fcntl
        self.state.parent.mkdir(parents=True, exist_ok=True)
        with open(self.state.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                st = json.loads(self.state.read_text())
            except (OSError, ValueError):
                st = {}
            pids = {p for p in st.get("pids", []) if Path(f"/proc/{p}").exists()}
            mounts = list(st.get("mounts", []))
            if joining:
                pids.add(os.getpid())
            else:
                pids.discard(os.getpid())
            if pids:
                proc = self.root / "proc"
                if not is_mounted(proc):
                    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
                if joining:
                    for src in self.binds:
                        tgt = self._target(src)
                        if is_mounted(tgt):
                            continue
                        if tgt.exists() and (not tgt.is_dir() or any(tgt.iterdir())):
                            continue  # never hide anything of the root
                        tgt.mkdir(parents=True, exist_ok=True)
                        subprocess.run(["mount", "--bind", str(src), str(tgt)], check=True)
                        subprocess.run(["mount", "-o", "remount,bind,ro", str(tgt)], check=False)
                        mounts.append(str(tgt))
            else:
                for tgt in reversed(mounts):
                    if is_mounted(tgt):
                        self._umount(Path(tgt))
                mounts = []
                if is_mounted(self.root / "proc"):
                    self._umount(self.root / "proc")
            self.state.write_text(json.dumps({"pids": sorted(pids), "mounts": mounts}))

    def bound(self, src) -> bool:
        return is_mounted(self._target(Path(src)))

    def __enter__(self):
        self._update(True)
        return self

    def __exit__(self, *exc):
        self._update(False)


ProcMount = RootMounts


def host_python_binds() -> tuple[list[Path], str | None]:
    """Folders to bind into a root so the host's venv python (and drip_core) run there.

    Returns (folders, reason-if-impossible). Only works when the interpreter lives
    outside the system folders (pyenv, /opt, a home folder), as on the project's CI.
    """
    base = Path(sys.base_prefix).resolve()
    venv = Path(sys.prefix).resolve()
    system = (Path("/usr"), Path("/usr/local"), Path("/"), Path("/bin"), Path("/lib"))
    if base in system or any(str(base).startswith(str(s) + "/") for s in system[:2]):
        return [], f"the host python lives in {base}, which cannot be bound into a root"
    folders = [base, REPO]
    if not str(venv).startswith(str(REPO) + "/") and venv != base:
        folders.append(venv)
    return folders, None


class HostServer:
    """`python -m drip_core.server` on the host's loopback, publishing into the root."""

    def __init__(self, discovery: Path, log: Path, *args: str, env: dict | None = None):
        self.discovery, self.log = discovery, log
        cmd = [sys.executable, "-m", "drip_core.server", "--host", "127.0.0.1",
               "--discovery-file", str(discovery), "--log-file", str(log), "--idle-timeout", "900", *args]
        # Isolated from the user's Drip config (no configured DRIP model unless passed).
        iso = {k: v for k, v in os.environ.items()
               if k not in ("DRIP_MATTING_MODEL", "DRIP_MATTING_CONFIG", "DRIP_MATTING_SERVER_FILE")}
        iso["XDG_CONFIG_HOME"] = str(discovery.parent / "host-config")
        iso["XDG_DATA_HOME"] = str(discovery.parent / "host-data")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env={**iso, **(env or {})},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not discovery.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"drip server exited: {self.proc.stderr.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("drip server did not start within 120 s")
            time.sleep(0.05)
        self.record = json.loads(discovery.read_text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def prepare_inputs(work: Path, inside: str, photo: str = "GT01") -> dict:
    """Copy a real photo into the root and make a rough selection mask from its ground truth.

    ``photo="demo"`` uses the generated demo scene instead: screenshots that go into docs/
    must not show the alphamatting photos, which are for evaluation only.
    """
    import numpy as np
    from PIL import Image, ImageFilter
    if photo == "demo":
        sys.path.insert(0, str(REPO))
        from drip_core.demo_scene import make_scene
        image, _, alpha, _ = make_scene()
        Image.fromarray(image).save(work / "photo.png")
        gt = Image.fromarray((alpha * 255).round().astype(np.uint8))
    else:
        shutil.copyfile(ALPHAMATTING / "input_training_lowres" / f"{photo}.png", work / "photo.png")
        gt = Image.open(ALPHAMATTING / "gt_training_lowres" / f"{photo}.png").convert("L")
    rough = gt.filter(ImageFilter.GaussianBlur(5))
    mask = (np.asarray(rough) >= 100).astype(np.uint8) * 255
    Image.fromarray(mask).save(work / "mask.png")
    write_photo16(work / "photo.png", work / "photo16.png")
    return {"photo": f"{inside}/photo.png", "mask": f"{inside}/mask.png", "photo16": f"{inside}/photo16.png"}


PHOTO16_WIDTH = 400


def write_photo16(src: Path, dest: Path) -> None:
    """A 16-bit colour PNG with real 16-bit data: the photo resampled in floating point to
    PHOTO16_WIDTH (most samples are then not multiples of 257, unlike an 8-bit photo
    converted up), written with pypng since Pillow cannot write 16-bit colour."""
    import numpy as np
    from PIL import Image
    sys.path.insert(0, str(REPO))
    from drip_core.image_io import write
    im = Image.open(src).convert("RGB")
    h = round(im.height * PHOTO16_WIDTH / im.width)
    planes = [np.asarray(Image.fromarray(np.asarray(im)[:, :, c].astype(np.float32) / 255.0)
                         .resize((PHOTO16_WIDTH, h), Image.Resampling.LANCZOS)) for c in range(3)]
    write(str(dest), np.rint(np.clip(np.dstack(planes), 0, 1) * 65535).astype(np.uint16))


def install_plugin(root: Path, version: str, home_in_root: str, config: dict) -> Path:
    sys.path.insert(0, str(REPO))
    from installer.plugin_files import install_plugin_folder
    plugins = root / home_in_root.lstrip("/") / ".config" / "GIMP" / VERSIONS[version]["profile"] / "plug-ins"
    return install_plugin_folder(plugins, config)


def run_group(cmd, *, input: bytes | None = None, timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; on timeout kill the whole group (GIMP, its
    plug-ins, Xvfb), so nothing is left running in the root."""
    import signal
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out = (out or b"") + f"\n[harness] killed after {timeout:.0f} s\n".encode()
        return subprocess.CompletedProcess(cmd, -9, out, None)
    try:  # stragglers (a plug-in GIMP failed to reap, Xvfb)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)


def run_gimp(version: str, script: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    root = root_dir(version)
    base = {"HOME": env["HOME"], "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "GIMP_TESTING_NO_UPDATE_CHECK": "1"}
    base.update(env)
    cmd = ["chroot", str(root), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in base.items()],
           VERSIONS[version]["binary"], "-i", "-d", "-f", "--batch-interpreter", "python-fu-eval",
           "-b", "-", "--quit"]
    return run_group(cmd, input=script.encode(), timeout=timeout)


class CancelWatcher:
    """Plays GIMP's Cancel button: kills the plug-in process once its job reached the server.

    GIMP cancels a plug-in's progress by killing the plug-in process; the server must see
    the disconnect and cancel the job. Runs in a thread next to the GIMP session.
    """

    def __init__(self, out: Path, log: Path, home: str, timeout: float = 120):
        import threading
        self.out, self.log, self.timeout, self.home = out, log, timeout, home.encode()
        self.report: dict = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _lines(self):
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def _plugin_pids(self):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmd = (Path("/proc") / entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(c.startswith(self.home) and c.endswith(b"/drip_matting/drip_matting.py") for c in cmd) \
                    and b"-run" in cmd:
                pids.append(int(entry))
        return pids

    def _run(self):
        import re
        import signal
        deadline = time.monotonic() + self.timeout
        go = self.out / "cancel.go"
        try:
            while not go.exists():
                if time.monotonic() > deadline:
                    self.report["error"] = "the cancel scenario never started"
                    return
                time.sleep(0.05)
            seen = len(self._lines())
            job = None
            while job is None and time.monotonic() < deadline:
                for line in self._lines()[seen:]:
                    m = re.search(r"job (\w+) accepted", line)
                    if m:
                        job = m.group(1)
                time.sleep(0.02)
            if job is None:
                self.report["error"] = "the job never reached the server"
                return
            pids = self._plugin_pids()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            self.report.update(job=job, killed=pids, killed_at=time.time())
            while time.monotonic() < deadline:
                text = "\n".join(self._lines())
                if f"job {job} cancelled" in text:
                    self.report["server_cancelled"] = True
                    break
                if f"job {job} done" in text:
                    self.report["server_cancelled"] = False
                    self.report["error"] = "the job finished: the kill came too late"
                    break
                time.sleep(0.1)
            self.report["server_log_tail"] = self._lines()[-6:]
        finally:
            (self.out / "cancel.done").write_text(json.dumps(self.report))


def kill_spawned(discovery: Path, host_server_pid: int):
    """A server the plug-in started inside the root (spawn scenario) must not outlive the test."""
    import signal
    try:
        pid = json.loads(discovery.read_text()).get("pid")
    except (OSError, ValueError):
        return
    if isinstance(pid, int) and pid != host_server_pid and Path(f"/proc/{pid}").exists():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def gimp_session(version: str, params: dict, *, server_args=(), server_env=None,
                 timeout: float = 600) -> dict:
    """One GIMP start running tests/gimp/gimp_scenarios.py; returns its results + paths."""
    root = root_dir(version)
    work, W = new_workdir(root, f"e2e{version}")
    inputs = prepare_inputs(work, W, params.pop("photo_name", "GT01"))
    sys.path.insert(0, str(REPO))
    from installer.plugin_files import plugin_config
    # The configured server command cannot work inside the chroot (no Drip venv there):
    # the "server down" scenario relies on that to test the failure path.
    config = plugin_config(["/bin/false"], log_file=f"{W}/server.log",
                           discovery_file=f"{W}/server.json")
    install_plugin(root, version, f"{W}/home", config)
    all_params = {"out_dir": f"{W}/out", "discovery": f"{W}/server.json", **inputs, **params}
    (work / "params.json").write_text(json.dumps(all_params))
    script = (REPO / "tests" / "gimp" / "gimp_scenarios.py").read_text()
    env = {"HOME": f"{W}/home", "DRIP_GIMP_TEST_PARAMS": f"{W}/params.json",
           "DRIP_MATTING_SERVER_FILE": f"{W}/server.json",
           # only used for server=host:port runs (the wrong-token scenario)
           "DRIP_MATTING_TOKEN": "not-the-servers-token",
           "DRIP_MATTING_DEBUG_PROGRESS": "1"}
    t0 = time.monotonic()
    binds, why_not = host_python_binds() if params.get("spawn") else ([], "not requested")
    with RootMounts(root, binds) as mounts:
        if binds and all(mounts.bound(b) for b in binds):
            all_params["spawn_command"] = [str(Path(sys.prefix) / "bin" / "python"), "-m", "drip_core.server",
                                           "--engine", "classical", "--idle-timeout", "60"]
            all_params["plugin_config"] = (f"{W}/home/.config/GIMP/{VERSIONS[version]['profile']}"
                                           f"/plug-ins/drip_matting/drip_matting.json")
        else:
            all_params["spawn_skip"] = why_not or "could not bind the host python into the root"
        (work / "params.json").write_text(json.dumps(all_params))
        server = HostServer(work / "server.json", work / "server.log", *server_args, env=server_env)
        watcher = (CancelWatcher(work / "out", work / "server.log", f"{W}/home/")
                   if params.get("cancel") else None)
        try:
            proc = run_gimp(version, script, env, timeout)
        finally:
            server.stop()
            kill_spawned(work / "server.json", server.proc.pid)
        if watcher is not None:
            watcher.thread.join(5)
    output = proc.stdout.decode(errors="replace")
    (work / "gimp-output.txt").write_text(output)
    res_path = work / "out" / "results.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {"scenarios": {}}
    results["_out"] = str(work / "out")
    results["_work"] = str(work)
    results["_output"] = output
    results["_returncode"] = proc.returncode
    results["_seconds"] = round(time.monotonic() - t0, 1)
    results["_params"] = all_params
    if watcher is not None:
        results["_cancel"] = watcher.report
    return results


def gui_skip_reason(version: str) -> str | None:
    reason = skip_reason(version)
    if reason:
        return reason
    root = root_dir(version)
    for tool in ("Xvfb", "xdotool", "import"):
        if not os.path.lexists(root / "usr" / "bin" / tool):  # alternatives: absolute links
            return (f"{root} lacks {tool}: rerun tests/gimp/build_roots.sh "
                    "(installs xvfb, xdotool, imagemagick)")
    return None


GUI_RUNNER = r"""
set -u
Xvfb :$DISP -screen 0 ${SCREEN:-1100x760x24} -nolisten tcp >/tmp/drip-xvfb.log 2>&1 &
XPID=$!
for i in $(seq 1 100); do [ -e /tmp/.X11-unix/X$DISP ] && break; sleep 0.1; done
export DISPLAY=:$DISP
"$GIMP_GUI" --no-splash --batch-interpreter python-fu-eval -b - --quit < "$SCRIPT"
rc=$?
kill $XPID 2>/dev/null
wait $XPID 2>/dev/null
exit $rc
"""


def gui_session(version: str, params: dict, *, server_args=(), timeout: float = 600,
                script: str = "gimp_gui.py", files: dict | None = None) -> dict:
    """One GIMP GUI start (Xvfb in the chroot) running tests/gimp/``script``.

    ``files`` (name -> host path) are copied into the session's folder and passed to the
    script by name instead of the usual photo and rough mask."""
    root = root_dir(version)
    work, W = new_workdir(root, f"gui{version}")
    home = work / "home"
    if files is None:
        inputs = prepare_inputs(work, W, params.pop("photo_name", "GT01"))
    else:
        inputs = {}
        for name, src in files.items():
            shutil.copyfile(src, work / Path(src).name)
            inputs[name] = f"{W}/{Path(src).name}"
    sys.path.insert(0, str(REPO))
    from installer.plugin_files import plugin_config
    config = plugin_config(["/bin/false"], log_file=f"{W}/server.log",
                           discovery_file=f"{W}/server.json")
    install_plugin(root, version, f"{W}/home", config)
    profile = home / ".config" / "GIMP" / VERSIONS[version]["profile"]
    (profile / "gimprc").write_text("(show-welcome-dialog no)\n(check-updates no)\n(show-tips no)\n")
    all_params = {"out_dir": f"{W}/out", **inputs, **params}
    (work / "params.json").write_text(json.dumps(all_params))
    shutil.copyfile(REPO / "tests" / "gimp" / script, work / "gimp_gui.py")
    (work / "runner.sh").write_text(GUI_RUNNER)
    env = {"HOME": f"{W}/home", "DRIP_GIMP_TEST_PARAMS": f"{W}/params.json",
           "DRIP_MATTING_SERVER_FILE": f"{W}/server.json",
           "DISP": str(100 + os.getpid() % 800 + (2 if version == "3.2" else 0)),
           "GIMP_GUI": VERSIONS[version]["gui"], "SCRIPT": f"{W}/gimp_gui.py",
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "NO_AT_BRIDGE": "1", "GTK_A11Y": "none", "DRIP_MATTING_DEBUG_PROGRESS": "1"}
    cmd = ["chroot", str(root), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
           "sh", f"{W}/runner.sh"]
    t0 = time.monotonic()
    with RootMounts(root):
        server = HostServer(work / "server.json", work / "server.log", *server_args)
        try:
            proc = run_group(cmd, timeout=timeout)
        finally:
            server.stop()
    output = proc.stdout.decode(errors="replace")
    (work / "gimp-output.txt").write_text(output)
    res_path = work / "out" / "gui_results.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {}
    results.update(_out=str(work / "out"), _output=output, _returncode=proc.returncode,
                   _seconds=round(time.monotonic() - t0, 1))
    return results
