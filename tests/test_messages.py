"""Every error code's words (issue 25): on every surface (drip-matte and its batch reports, the
GIMP plug-in, the Python client) an error goes through drip_protocol.errors.user_text and says
once what happened and what to do, with a hint that fits the cause and a server log only where
the log helps.

The messages checked are the code base's own: every raise site with a literal code and message
is read from the source (a new one is checked without being listed here), and the common
failures are provoked for real (a trimap without grey, an empty selection, a missing model
folder, a real server given a wrong token, a closed port, ...).
"""
from __future__ import annotations

import ast
import json
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

import drip_protocol as P
from drip_core.errors import ADDRESS_HINT, COMMAND_LINE_HINTS, command_line_text
from drip_protocol.errors import ERROR_HINTS, LOG_HELPS, ProtocolError, sentences, user_text, words

sys.path.insert(0, str(REPO / "gimp_plugin" / "drip_matting"))
import plugin_logic as logic  # noqa: E402

LOG = "/x/drip/server.log"

# How each code's cause is said. A hint only says what to do, so it never matches its code's
# pattern, and a whole message matches it at most once: the cause is stated once.
CAUSES = {
    "bad_frame": r"not (a|the) drip|does not speak|other than a drip",
    "too_large": r"too large|larger than|exceeds",
    "version_mismatch": r"different .*versions|speaks protocol",
    "auth_failed": r"did not match|wrong (or missing )?token|no token",
    "bad_request": r"malformed|unknown (message|trimap source|engine)",
    "bad_image": r"could not be used|is empty|cannot read|do not match",
    "bad_trimap": r"could not be used|is \d+x\d+ but|marks no definite|cannot read|NaN",
    "empty_selection": r"nothing is selected|selects nothing|selection is empty|does not cover",
    "no_unknown": r"no (unknown|grey)|nothing to matte|selects the whole|all black|no edge",
    "engine_unavailable": r"cannot run|needs torch|not installed|unknown engine",
    "model_missing": r"no drip model|configured|does not exist|not a drip model folder",
    "model_corrupt": r"damaged|cannot be read|lacks|does not match|untrained|could not be loaded|"
                     r"format version|not a drip-model manifest|no file list",
    "out_of_memory": r"out of memory|not enough memory|did not fit",
    "cancelled": r"cancell?ed|is stopping",
    "engine_failed": r"\bfailed\b|returned",
    "image_not_cached": r"no longer holds|does not hold",
    "busy": r"queue is full|already has a job",
    "no_server": r"no drip server|none could be started|could not start|exited during|did not come up",
    "tls_failed": r"could not be verified|tls with .* failed|cannot load the tls",
    "timeout": r"stopped answering|did not answer|too slow",
    "connection_lost": r"was lost|connection lost|closed the connection|could not send|crash",
    "internal": r"unexpected(ly)? error|internal server error|failed unexpectedly",
    # the plug-in's own codes (plugin_logic.LOCAL_HINTS)
    "no_trimap_channel": r"has no \"drip trimap|there is no \"drip trimap",
    "both_changed": r"painted .*and .*new selection|you painted",
    "image_gone": r"was closed|deleted",
    "not_a_layer": r"items are selected|not a plain layer",
    "indexed": r"is indexed|not supported",
    "outside_layer": r"does not overlap",
    "bad_server_arg": r"is not 'auto'|no valid port",
    "no_token": r"no token",
}
# Codes only batch reports use (no hint: their messages say it all).
REPORT_CODES = {"missing_trimap"}

# Hints that would contradict their cause: (code, the message says, the text must not say, why).
MISFITS = [
    ("auth_failed", r"no token", r"did not match|wrong token", "no token was given, none was wrong"),
    ("model_missing", r"does not exist|not a DRIP model folder", r"configured",
     "a model is configured: its folder is the problem"),
    ("no_unknown", r"", r"widen", "a wider band never helps a painted trimap or a whole-image selection"),
    ("no_server", r"answers at", r"installer|none could be started|by hand",
     "an address was given: nothing was to be started"),
    ("out_of_memory", r"^(?!.*DRIP)", r"\bor use (--engine |the )classical",
     "the engine that ran out of memory may be the classical one"),
    ("engine_unavailable", r"unknown engine|whole number|at least", r"install",
     "a misspelt engine or a wrong setting is not a missing engine"),
    ("bad_trimap", r"band radius", r"a trimap (must|is)", "the band radius is not the trimap"),
    ("cancelled", r"", r"report|bug", "a cancelled job is no bug"),
]
# drip-matte has no GIMP: its words never name GIMP's menus, channels or layers.
GIMP_WORDS = r"channel|Filters >|Select >|Image > Mode|\blayer\b|GIMP"


@dataclass(frozen=True)
class Sample:
    """One real message: its code, its words, its hint (None: the code's default) and where it
    comes from (shown when a check fails)."""
    code: str
    message: str
    hint: str | None
    origin: str
    surfaces: tuple[str, ...]


# --------------------------------------------------------------------------- the raise sites

PLUGIN_ONLY = ("plug-in",)
CLI_ONLY = ("drip-matte", "drip-matte --server HOST:PORT")
EVERYWHERE = ("plug-in", "drip-matte", "drip-matte --server HOST:PORT", "python client")
# The error types raised with (code, message): how each reaches a person.
RAISERS = {"ProtocolError": None, "EngineError": None, "make_error": "local", "JobError": "",
           "ModelFolderError": "", "GuideError": "guide"}


def _template(node) -> str | None:
    """A literal message, with every {placeholder} of an f-string shown as X."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
    return None


def _site_sample(path: Path, call: ast.Call) -> Sample | None:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name == "Cancelled":
        message = _template(call.args[0]) if call.args else "the job was cancelled"
        return Sample("cancelled", message, None, f"{path}:{call.lineno}", EVERYWHERE)
    if name not in RAISERS or len(call.args) < 2:
        return None
    code, message = _template(call.args[0]), _template(call.args[1])
    if code is None or message is None:
        return None  # a code or message passed on from another error: checked at its own site
    kind = RAISERS[name]
    hint = {"local": logic.LOCAL_HINTS.get(code), "": "", "guide": None}.get(kind)
    for keyword in call.keywords:
        if keyword.arg == "hint":
            hint = _template(keyword.value)
    in_plugin = "gimp_plugin" in path.parts
    surfaces = PLUGIN_ONLY if in_plugin else CLI_ONLY if kind in ("guide", "") else EVERYWHERE
    return Sample(code, message, hint, f"{path}:{call.lineno}", surfaces)


def raise_sites() -> list[Sample]:
    found = []
    for root in ("drip_core", "drip_protocol", "gimp_plugin/drip_matting"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    sample = _site_sample(path.relative_to(REPO), node)
                    if sample is not None:
                        found.append(sample)
    return found


SITES = raise_sites()


# --------------------------------------------------------------------------- the surfaces

def as_error(sample: Sample) -> BaseException:
    if sample.surfaces == CLI_ONLY and sample.hint is None:
        from drip_core.guides import GuideError
        return GuideError(sample.code, sample.message)  # a UserError: its message says what to do
    return ProtocolError(sample.code, sample.message, hint=sample.hint)


def texts(exc: BaseException, surfaces, log_file: str | None) -> dict[str, str]:
    """The words each surface shows for ``exc``; ``log_file``: the server's log, as a server's
    error names it (the plug-in is also given it by its caller)."""
    def with_log():
        if not isinstance(exc, ProtocolError):
            return exc
        return ProtocolError(exc.code, exc.message, hint=exc.hint, log_file=exc.log_file or log_file)
    made = {
        "plug-in": lambda: logic.user_message(with_log(), log_file),
        "drip-matte": lambda: command_line_text(with_log(), "auto"),
        "drip-matte --server HOST:PORT": lambda: command_line_text(with_log(), "127.0.0.1:9"),
        "python client": lambda: with_log().user_text(),
    }
    return {surface: made[surface]() for surface in surfaces}


def clauses(text: str) -> list[tuple[str, ...]]:
    """The text's sentences and their parts (cut at ':' and ';') as words, 2 words or more."""
    parts = [p for s in sentences(text) for p in re.split(r"[:;]\s+", s)]
    return [w for w in map(words, parts) if len(w) >= 2]


def statements(code: str, text: str) -> int:
    """How many sentences or clauses of ``text`` say its code's cause."""
    parts = [p for s in sentences(text) for p in re.split(r"[:;]\s+", s)]
    return sum(1 for p in parts if re.search(CAUSES.get(code, r"(?!)"), p, re.I))


def repeats(text: str) -> list[str]:
    """Sentences or clauses said twice: the same words, or one opening with all of another's."""
    seen, found = [], []
    for said in clauses(text):
        for old in seen:
            shorter = min(len(said), len(old))
            if said[:shorter] == old[:shorter]:
                found.append(" ".join(said))
        seen.append(said)
    return found


def problems(code: str, message: str, surface: str, text: str, log_file: str | None) -> list[str]:
    """Everything wrong with ``text``, the words ``surface`` shows for (code, message)."""
    found = [f"said twice: {r!r}" for r in repeats(text.removeprefix("Drip Matting: "))]
    if not text.endswith("."):
        found.append("does not end with a full stop")
    if statements(code, text) > 1:
        found.append("states the cause more than once")
    named = "Server log: " in text
    if named != bool(log_file and code in LOG_HELPS):
        found.append("names the server log where it does not help" if named else "does not name the log")
    for misfit_code, when, never, why in MISFITS:
        if code == misfit_code and re.search(when, message, re.I) and re.search(never, text, re.I):
            found.append(f"hint does not fit: {why}")
    if surface.startswith("drip-matte") and re.search(GIMP_WORDS, text):
        found.append("drip-matte names GIMP's controls")
    if re.search(r"\b(use|set|choose|widen|raise|narrow)\b[^.]*\bband radius", text, re.I) \
            and "smart band" not in text.lower():
        found.append("advises the band radius, greyed out while the smart band is on")
    return found


def check(exc: BaseException, surfaces, origin: str) -> None:
    code, message = getattr(exc, "code", ""), getattr(exc, "message", str(exc))
    failures = []
    for log_file in (None, LOG):
        for surface, text in texts(exc, surfaces, log_file).items():
            known_log = getattr(exc, "log_file", None) or log_file
            failures += [f"{origin} [{surface}] {p}\n    {text}"
                         for p in problems(code, message, surface, text, known_log)]
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- the catalogue

def test_every_code_is_in_the_catalogue():
    """A new code in ERROR_HINTS or LOCAL_HINTS fails here until CAUSES says how its cause is
    said (and MISFITS, if some hint would contradict it)."""
    codes = set(ERROR_HINTS) | set(logic.LOCAL_HINTS)
    assert codes == set(CAUSES), (codes ^ set(CAUSES))
    assert not set(ERROR_HINTS) & set(logic.LOCAL_HINTS)


def test_every_raised_code_is_known_and_every_code_is_raised():
    assert len(SITES) > 100, "the raise sites were not found"
    raised = {s.code for s in SITES}
    assert raised <= set(CAUSES) | REPORT_CODES, raised - set(CAUSES)
    assert set(CAUSES) <= raised, f"codes nothing raises: {set(CAUSES) - raised}"


@pytest.mark.parametrize("code", sorted(set(ERROR_HINTS) | set(logic.LOCAL_HINTS) | set(COMMAND_LINE_HINTS)))
def test_a_hint_only_says_what_to_do(code):
    hints = [ERROR_HINTS.get(code), logic.LOCAL_HINTS.get(code), COMMAND_LINE_HINTS.get(code)]
    hints += [s.hint for s in SITES if s.code == code]
    for hint in filter(None, hints):
        assert not re.search(CAUSES[code], hint, re.I), f"{code}: the hint restates the cause: {hint}"
        assert hint.endswith(".") and hint[0].isupper(), hint


@pytest.mark.parametrize("sample", SITES, ids=lambda s: f"{s.code}@{s.origin}")
def test_every_raise_site_reads_right_everywhere(sample):
    check(as_error(sample), sample.surfaces, sample.origin)


def test_the_words_the_gimp_runs_look_for():
    """tests/gimp checks these in real GIMP; here they are checked without it."""
    channel = logic.make_error("no_trimap_channel", 'the layer "B" has no "Drip trimap: B" channel')
    assert "Drip trimap" in logic.user_message(channel) and "selection band" in logic.user_message(channel)
    wrong = logic.user_message(ProtocolError("auth_failed", "wrong or missing token"))
    assert "token" in wrong and "restart the server" in wrong
    big = logic.user_message(ProtocolError("too_large", "9x9 = 81 pixels exceeds the server's limit of 8"))
    assert "exceeds the server's limit" in big and "smaller region" in big
    for code in ("model_missing", "engine_unavailable"):
        text = logic.user_message(ProtocolError(code, "x"))
        assert "classical" in text and ("model" in text.lower() or "DRIP extras" in text), text
    down = logic.user_message(ProtocolError("no_server", "the server exited during start-up"), LOG)
    assert "Server log:" in down


# --------------------------------------------------------------------------- the builder itself

def test_user_text_says_a_hint_that_restates_the_message_once():
    text = user_text("empty_selection", "nothing is selected", "Nothing is selected: select the object.")
    assert text == "Nothing is selected: select the object."
    text = user_text("no_unknown", "the trimap has no grey", "The trimap has no grey. Paint grey.")
    assert text == "The trimap has no grey. Paint grey."
    text = user_text("no_unknown", "the trimap has no grey", "Paint grey. The trimap has no grey.")
    assert text == "the trimap has no grey. Paint grey."


def test_user_text_names_the_log_only_where_it_helps_and_ends_with_a_full_stop():
    assert user_text("engine_failed", "the engine failed", "Report it.", LOG).endswith(f"Server log: {LOG}.")
    assert LOG not in user_text("no_unknown", "the trimap has no grey", "Paint grey.", LOG)
    assert user_text("cancelled", "the job was cancelled") == "the job was cancelled."
    assert user_text("busy", "", "Try again (in a moment)") == "Try again (in a moment)."


def test_the_command_line_names_its_flags_and_an_address_its_own_fix():
    err = ProtocolError("model_missing", "no DRIP model is configured")
    assert "--drip-model" in command_line_text(err) and "--engine classical" in command_line_text(err)
    err = ProtocolError("no_server", "no Drip server answers at 127.0.0.1:9 (refused)")
    assert command_line_text(err, "127.0.0.1:9").endswith(ADDRESS_HINT)
    own = ProtocolError("bad_trimap", "no definite background", hint="Paint black.")
    assert command_line_text(own).endswith("Paint black.")


# --------------------------------------------------------------------------- provoked for real

def raised(call) -> BaseException:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the error is what is checked
        return exc
    raise AssertionError("no error was raised")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scene(tmp_path, monkeypatch):
    """A small photo with a selection, no DRIP model configured, files to give as guides."""
    monkeypatch.delenv("DRIP_MATTING_MODEL", raising=False)
    monkeypatch.setenv("DRIP_MATTING_CONFIG", str(tmp_path / "no-config.json"))
    rng = np.random.default_rng(0)
    image = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    selection = np.zeros((40, 40), np.uint8)
    selection[10:30, 10:30] = 255
    for name, grey in (("white", np.full((40, 40), 255, np.uint8)), ("black", np.zeros((40, 40), np.uint8)),
                       ("small", np.zeros((20, 40), np.uint8))):
        Image.fromarray(grey).save(tmp_path / f"{name}.png")
    return tmp_path, image, selection


def engine_cases(tmp, image, selection):
    from drip_core import trimaps
    from drip_core.engines.registry import get_engine
    from drip_core.errors import Cancelled
    from drip_core.region import JobRegion
    no_background = np.where(selection > 0, 255, 128).astype(np.uint8)
    (tmp / "empty-folder").mkdir()
    (tmp / "damaged").mkdir()
    (tmp / "damaged" / "drip.json").write_text("{not json")
    return {
        "a trimap without grey": lambda: JobRegion.around_unknown(image, trimaps.build(
            "trimap", np.full((40, 40), 255, np.uint8), 8, (40, 40)), 8),
        "a selection of the whole image": lambda: JobRegion.around_unknown(image, trimaps.build(
            "selection_band", np.full((40, 40), 255, np.uint8), 8, (40, 40)), 8),
        "an empty selection (band)": lambda: trimaps.build("selection_band", np.zeros((40, 40)), 8, (40, 40)),
        "an empty selection (feathered)": lambda: trimaps.build("feathered", np.zeros((40, 40)), 8, (40, 40)),
        "a trimap with no background": lambda: get_engine("classical").matte(image, no_background),
        "no DRIP model configured": lambda: get_engine("drip"),
        "a model folder that does not exist": lambda: get_engine("drip", drip_model=str(tmp / "missing")),
        "a folder that is no model": lambda: get_engine("drip", drip_model=str(tmp / "empty-folder")),
        "a damaged model": lambda: get_engine("drip", drip_model=str(tmp / "damaged")),
        "a misspelt engine": lambda: get_engine("clasical"),
        "a cancelled job": lambda: (_ for _ in ()).throw(Cancelled()),
    }


def connection_cases(tmp):
    from drip_core.client import connect, connect_address
    port = closed_port()
    script = "import sys; open(sys.argv[sys.argv.index('--log-file') + 1], 'w').write('died'); sys.exit(3)"
    return {
        "a closed port": lambda: P.Connection("127.0.0.1", port, "t" * 64),
        "no server, none to start": lambda: connect(str(tmp / "none.json"), spawn=False),
        "a server that dies at start-up": lambda: P.spawn_server(
            [sys.executable, "-c", script], str(tmp / "none.json"), log_file=str(tmp / "dead.log"), wait=20),
        "an address with no token known": lambda: connect_address("127.0.0.1", port, None,
                                                                  str(tmp / "n.json")),
        "not a Drip frame": lambda: P.parse_prefix(b"HTTP/1.1 200 OK\r\n\r\n"[:P.PREFIX.size], 10),
        "an image over the limit": lambda: P.JobSpec.from_header(
            {"type": "job", "id": "j", "width": 100, "height": 100, "image_format": "rgb8"}, 100),
    }


def guide_cases(tmp, image):
    from drip_core.guides import read_mask_as_trimap, read_trimap
    return {
        "a trimap without grey (file)": lambda: read_trimap(str(tmp / "white.png"), image.shape),
        "a trimap of another size": lambda: read_trimap(str(tmp / "small.png"), image.shape),
        "a mask that selects nothing": lambda: read_mask_as_trimap(str(tmp / "black.png"), image, 4),
        "a mask that selects everything": lambda: read_mask_as_trimap(str(tmp / "white.png"), image, 4),
    }


def plugin_cases(tmp):
    return {
        "a server argument without a port": lambda: logic.parse_server_arg("localhost"),
        "an address with no token (plug-in)": lambda: logic.token_for("127.0.0.1", 9, str(tmp / "n.json"),
                                                                      {}),
        "no server and no command (plug-in)": lambda: logic.connect(
            "auto", {}, environ={P.DISCOVERY_ENV: str(tmp / "n.json")}),
    }


EXPECTED_CODES = {
    "a trimap without grey": "no_unknown", "a selection of the whole image": "no_unknown",
    "an empty selection (band)": "empty_selection", "an empty selection (feathered)": "empty_selection",
    "a trimap with no background": "bad_trimap", "no DRIP model configured": "model_missing",
    "a model folder that does not exist": "model_missing", "a folder that is no model": "model_missing",
    "a damaged model": "model_corrupt", "a misspelt engine": "engine_unavailable",
    "a cancelled job": "cancelled", "a closed port": "no_server", "no server, none to start": "no_server",
    "a server that dies at start-up": "no_server", "an address with no token known": "auth_failed",
    "not a Drip frame": "bad_frame", "an image over the limit": "too_large",
    "a trimap without grey (file)": "no_unknown", "a trimap of another size": "bad_trimap",
    "a mask that selects nothing": "empty_selection", "a mask that selects everything": "no_unknown",
    "a server argument without a port": "bad_server_arg", "an address with no token (plug-in)": "no_token",
    "no server and no command (plug-in)": "no_server",
}


def test_failures_provoked_in_process_read_right(scene):
    tmp, image, selection = scene
    groups = [(engine_cases(tmp, image, selection), EVERYWHERE), (connection_cases(tmp), EVERYWHERE),
              (guide_cases(tmp, image), CLI_ONLY), (plugin_cases(tmp), PLUGIN_ONLY)]
    for cases, surfaces in groups:
        for what, call in cases.items():
            exc = raised(call)
            code = EXPECTED_CODES[what]
            if code.startswith("model_") and getattr(exc, "code", "") == "engine_unavailable":
                code = "engine_unavailable"  # no torch here: a DRIP engine cannot be made at all
            assert getattr(exc, "code", None) == code, (what, exc)
            said = getattr(exc, "message", str(exc))
            assert statements(code, said) == 1, f"{what}: the cause is not said once: {said}"
            check(exc, surfaces, what)


def test_the_missing_model_folder_is_not_called_unconfigured(scene):
    tmp = scene[0]
    from drip_core.engines.registry import get_engine
    exc = raised(lambda: get_engine("drip", drip_model=str(tmp / "missing")))
    if exc.code == "engine_unavailable":
        pytest.skip("torch and diffusers are not installed")
    for text in texts(exc, EVERYWHERE, None).values():
        assert "does not exist" in text and "configured" not in text, text


def test_a_server_that_dies_names_its_log_and_a_closed_port_does_not(scene):
    tmp = scene[0]
    dead = raised(connection_cases(tmp)["a server that dies at start-up"])
    assert dead.log_file == str(tmp / "dead.log")
    for text in texts(dead, EVERYWHERE, None).values():
        assert text.endswith(f"Server log: {tmp / 'dead.log'}."), text
    refused = raised(connection_cases(tmp)["a closed port"])
    assert refused.log_file is None and "Server log" not in logic.user_message(refused)


# --------------------------------------------------------------------------- through a real server

def raw_reply(server, hello: dict) -> dict:
    """The server's answer to a hand-made hello (a wrong token, an old protocol)."""
    with socket.create_connection(server.address, timeout=10) as sock:
        P.send_frame(sock, hello)
        header, _ = P.recv_frame(sock, 0)
    return header


def test_errors_from_a_real_server_read_right(server, scene):
    """Errors that cross the wire: the server's message and hint, the client's surfaces."""
    from drip_core.client import connect
    _, image, selection = scene
    host, port = server.address
    token = server.record["token"]
    wrong = raised(lambda: P.Connection(host, port, "0" * 64))
    assert wrong.code == "auth_failed"
    old = P.ProtocolError.from_header(raw_reply(server, {"type": "hello", "proto": 0, "token": token}))
    assert old.code == "version_mismatch"
    unknown = P.ProtocolError.from_header(raw_reply(server, {"type": "ping?", "token": token}))
    with connect(str(server.discovery), spawn=False) as client:
        no_grey = raised(lambda: client.matte(image, np.full((40, 40), 255, np.uint8), engine="classical"))
        nothing = raised(lambda: client.matte(image, np.zeros((40, 40), np.uint8), engine="classical",
                                              trimap_source="selection_band"))
    assert (no_grey.code, nothing.code) == ("no_unknown", "empty_selection")
    for what, exc in (("a wrong token", wrong), ("an old client", old), ("a bad first message", unknown),
                      ("a trimap without grey (server)", no_grey), ("an empty selection (server)", nothing)):
        check(exc, EVERYWHERE, what)
    for text in texts(wrong, EVERYWHERE, None).values():
        assert "token" in text.lower() and "no token" not in text.lower(), text
    assert wrong.log_file == str(server.log)  # the server names its log, shown only where it helps
    assert "Server log" not in logic.user_message(wrong)


def test_a_batch_report_says_what_drip_matte_says(scene):
    """A failed image in a batch report: the words drip-matte prints for it."""
    from drip_core.cluster import jobs as batch
    tmp, image, _ = scene
    for folder in ("in", "guides", "out"):
        (tmp / folder).mkdir()
    Image.fromarray(image).save(tmp / "in" / "p.png")
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(tmp / "guides" / "p.png")
    job = batch.make_jobs(str(tmp / "in"), str(tmp / "guides"), "trimap", 8, str(tmp / "out"))[0]
    result = batch.run_job(job, engine_name="classical")
    from drip_core.guides import read_trimap
    said = raised(lambda: read_trimap(str(tmp / "guides" / "p.png"), image.shape))
    assert result["code"] == "no_unknown" and result["message"] == command_line_text(said)
    assert not problems("no_unknown", str(said), "drip-matte", result["message"], None)
    report = json.dumps(result)
    assert report.count("no unknown (grey)") == 1
