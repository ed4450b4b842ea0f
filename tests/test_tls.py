"""Remote mode: TLS with a certificate generated here, and the rules for non-loopback binds.

The certificate is made with the `openssl` command line (the `cryptography` package is not a
dependency); the tests skip politely where neither is available. All traffic stays on
127.0.0.1: a TLS server may bind loopback too, which is what the connection tests use; the
non-loopback rules are checked without binding any other address.
"""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

import drip_protocol as P
from drip_core.client import connect, connect_address
from drip_core.server.app import DripServer, ServerOptions


def make_cert(folder, name="server"):
    """A self-signed certificate for 127.0.0.1 / localhost; returns (cert, key) paths."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not available to make a test certificate")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
                        f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {r.stderr.strip()[:200]}")
    return cert, key


@pytest.fixture
def certs(tmp_path):
    folder = tmp_path / "certs"
    folder.mkdir()
    return make_cert(folder)


@pytest.fixture
def tls_server(server_factory, certs):
    cert, key = certs
    return server_factory("--tls-cert", str(cert), "--tls-key", str(key))


def tiny_case():
    rng = np.random.default_rng(3)
    image = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    trimap = np.zeros((48, 48), np.uint8)
    trimap[8:40, 8:40] = 128
    trimap[18:30, 18:30] = 255
    return image, trimap


def test_tls_server_publishes_its_certificate_and_local_clients_verify_it(tls_server, certs):
    rec = tls_server.record
    assert rec["tls"] is True and rec["tls_cert"] == str(certs[0])
    image, trimap = tiny_case()
    with connect(str(tls_server.discovery), spawn=False) as c:   # TLS chosen from the discovery file
        assert isinstance(c.connection.sock, ssl.SSLSocket)
        assert c.connection.sock.version().startswith("TLS")
        _, alpha = c.matte(image, trimap, engine="classical")
    assert (alpha[trimap == 255] == 255).all() and (alpha[trimap == 0] == 0).all()


def test_remote_client_needs_the_right_certificate(tls_server, certs, tmp_path):
    host, port = tls_server.address
    token = tls_server.record["token"]
    nowhere = str(tmp_path / "no-discovery.json")
    with connect_address(host, port, token, nowhere, cafile=str(certs[0])) as c:
        assert c.connection.request({"type": "ping"})["type"] == "pong"
    # An impostor's certificate (same names, other key) does not verify.
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_cert, _ = make_cert(other_dir, "server")
    with pytest.raises(P.ProtocolError) as err:
        connect_address(host, port, token, nowhere, cafile=str(other_cert))
    assert err.value.code == "tls_failed" and "--tls-ca" in err.value.user_text()
    # The system trust store does not know a self-signed certificate either.
    with pytest.raises(P.ProtocolError) as err:
        P.Connection(host, port, token, ssl_context=P.tls_client_context())
    assert err.value.code == "tls_failed"
    # A certificate file that does not exist is a clear error, not a traceback.
    with pytest.raises(P.ProtocolError) as err:
        connect_address(host, port, token, nowhere, cafile=str(tmp_path / "missing.crt"))
    assert err.value.code == "tls_failed"


def test_token_is_still_required_over_tls(tls_server, certs):
    host, port = tls_server.address
    for token in ("wrong", ""):
        with pytest.raises(P.ProtocolError) as err:
            P.Connection(host, port, token, ssl_context=P.tls_client_context(str(certs[0])))
        assert err.value.code == "auth_failed"


def test_plaintext_client_gets_nothing_from_a_tls_server(tls_server, certs):
    host, port = tls_server.address
    sock = socket.create_connection((host, port), timeout=10)
    P.send_frame(sock, {"type": "hello", "proto": P.PROTOCOL_VERSION, "token": tls_server.record["token"]})
    with pytest.raises(P.ProtocolError) as err:
        P.recv_frame(sock, 0)   # the server drops the failed handshake; no Drip frame comes back
    assert err.value.code in ("bad_frame", "connection_lost")
    sock.close()
    with connect(str(tls_server.discovery), spawn=False) as c:  # and it still serves
        assert c.connection.request({"type": "ping"})["type"] == "pong"


def test_tls_client_against_a_plaintext_server_fails_cleanly(server, certs):
    host, port = server.address
    with pytest.raises(P.ProtocolError) as err:
        P.Connection(host, port, server.record["token"], ssl_context=P.tls_client_context(str(certs[0])))
    assert err.value.code in ("tls_failed", "connection_lost")


def test_cli_through_a_tls_server(tls_server, certs, tmp_path):
    image, trimap = tiny_case()
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(trimap).save(tmp_path / "trimap.png")
    host, port = tls_server.address
    base = [sys.executable, "-m", "drip_core.cli", str(tmp_path / "photo.png"), "--trimap",
            str(tmp_path / "trimap.png"), "--engine", "classical", "--server", f"{host}:{port}",
            "--token", tls_server.record["token"], "--discovery-file", str(tmp_path / "none.json")]
    r = subprocess.run(base + ["--alpha", str(tmp_path / "a.png"), "--tls-ca", str(certs[0])],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "a.png")).shape == trimap.shape
    # Without the certificate: plaintext to a TLS server -> one clear line, no output file.
    r = subprocess.run(base + ["--alpha", str(tmp_path / "b.png")], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and not (tmp_path / "b.png").exists()
    assert r.stderr.strip().splitlines()[-1].startswith("drip-matte: ")


def test_non_loopback_rules_without_binding(tmp_path, certs):
    cert, key = certs
    disc = str(tmp_path / "s.json")
    with pytest.raises(P.ProtocolError) as err:
        DripServer(ServerOptions(host="0.0.0.0", discovery_file=disc))
    assert "--tls-cert" in err.value.message
    with pytest.raises(P.ProtocolError):
        DripServer(ServerOptions(host="192.0.2.10", discovery_file=disc, tls_cert=str(cert)))  # key missing
    assert DripServer(ServerOptions(host="0.0.0.0", discovery_file=disc, tls_cert=str(cert),
                                    tls_key=str(key))).ssl_context is not None
    assert DripServer(ServerOptions(host="0.0.0.0", discovery_file=disc, insecure=True)).ssl_context is None
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert DripServer(ServerOptions(host=host, discovery_file=disc)).ssl_context is None
    # The default bind is loopback.
    from drip_core.server.__main__ import parse_args
    assert parse_args([]).host == "127.0.0.1" and ServerOptions().host == "127.0.0.1"


def test_half_given_tls_options_refused_by_the_real_server(tmp_path, certs):
    r = subprocess.run([sys.executable, "-m", "drip_core.server", "--tls-cert", str(certs[0]),
                        "--discovery-file", str(tmp_path / "s.json"), "--log-file", str(tmp_path / "log")],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--tls-key" in r.stderr and not (tmp_path / "s.json").exists()


def test_tls_port_survives_garbage_and_stalled_handshakes(tls_server):
    import random
    rng = random.Random(3)
    host, port = tls_server.address
    for i in range(60):
        data = rng.randbytes(rng.randint(0, 400))
        if i % 3 == 0:
            data = b"\x16\x03\x01" + data          # looks like a TLS record, is not one
        sock = socket.create_connection((host, port), timeout=10)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
        except OSError:
            pass                                   # reset by the server: fine
        sock.close()
    stalled = socket.create_connection((host, port), timeout=30)   # never handshakes
    with connect(str(tls_server.discovery), spawn=False) as c:
        assert c.connection.request({"type": "ping"})["type"] == "pong"
    stalled.close()
    assert tls_server.proc.poll() is None
