"""The 'Server log:' a client names is the log a server really wrote: the discovery record's,
never a per-user default that does not exist (a server started with --log-file writes elsewhere)."""
from __future__ import annotations

import json
import os
import sys

import pytest

import drip_protocol as P
from drip_core import client as client_module
from drip_core.client import connect
from drip_core.errors import command_line_text


@pytest.fixture
def state(tmp_path, monkeypatch):
    """No installer config, a per-user state folder of its own, and a server command that records
    its arguments and fails at start-up."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(P.DISCOVERY_ENV, raising=False)
    argv_file = tmp_path / "argv.json"
    script = f"import json, sys; json.dump(sys.argv[1:], open({str(argv_file)!r}, 'w')); sys.exit(3)"
    monkeypatch.setattr(client_module, "SERVER_COMMAND", [sys.executable, "-c", script])
    return tmp_path, argv_file


def crashed_server_record(path, log_file):
    """What a server that crashed leaves behind: its record (a dead pid) naming its real log."""
    P.write_discovery(str(path), {"host": "127.0.0.1", "port": 9, "token": "t" * 64, "pid": 2 ** 22 + 17,
                                  "proto": P.PROTOCOL_VERSION, "log_file": str(log_file)})


def test_the_record_names_the_log_in_errors_and_for_the_next_server(state):
    tmp, argv_file = state
    real_log = tmp / "elsewhere" / "drip.log"
    real_log.parent.mkdir()
    real_log.write_text("... the server's last words ...\n")
    discovery = tmp / "server.json"
    crashed_server_record(discovery, real_log)
    with pytest.raises(P.ProtocolError) as err:
        connect(str(discovery), spawn=True, wait=10)
    assert err.value.code == "no_server" and "exit code 3" in err.value.message
    assert err.value.log_file == str(real_log)
    assert command_line_text(err.value, "auto").endswith(f"Server log: {real_log}.")
    argv = json.loads(argv_file.read_text())   # the new server continues the same log
    assert argv[argv.index("--log-file") + 1] == str(real_log)


def test_no_log_is_named_when_none_was_written(state):
    tmp, argv_file = state
    with pytest.raises(P.ProtocolError) as err:
        connect(str(tmp / "server.json"), spawn=True, wait=10)
    assert "exit code 3" in err.value.message
    default = P.default_log_file()
    assert not os.path.exists(default)
    assert err.value.log_file is None and "Server log" not in command_line_text(err.value, "auto")
    argv = json.loads(argv_file.read_text())   # with no record, the per-user default
    assert argv[argv.index("--log-file") + 1] == default


def test_a_server_that_wrote_its_log_is_named(state, monkeypatch):
    tmp, _ = state
    log = tmp / "given.log"
    script = f"import sys; open({str(log)!r}, 'w').write('started'); sys.exit(3)"
    monkeypatch.setattr(client_module, "SERVER_COMMAND", [sys.executable, "-c", script])
    with pytest.raises(P.ProtocolError) as err:
        connect(str(tmp / "server.json"), spawn=True, wait=10, log_file=str(log))
    assert err.value.log_file == str(log)


def test_server_log_file_reads_the_record(tmp_path):
    from drip_protocol.discovery import server_log_file
    discovery = tmp_path / "server.json"
    assert server_log_file(str(discovery), "/fallback") == "/fallback"
    crashed_server_record(discovery, tmp_path / "real.log")
    assert server_log_file(str(discovery), "/fallback") == str(tmp_path / "real.log")
