"""What tests and benches that start real processes share: a free port, waiting for a
process to listen on it, and a ``palermo`` process that can be killed and started again."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    *,
    seconds: float = 30,
    log: Callable[[], str] = lambda: "",
) -> None:
    """Wait until ``process`` listens on ``port``; fail with its log if it exits or is late."""
    deadline = time.monotonic() + seconds
    while not port_open(port, 0.2):
        assert process.poll() is None, f"the process exited:\n{log()}"
        assert time.monotonic() < deadline, f"nothing listened on {port} in {seconds} s:\n{log()}"
        time.sleep(0.1)


@dataclass
class Palermo:
    """A ``palermo`` process (``python -m broker.cli ARGS``) in a process group of its own, so
    that SIGKILL reaches a worker's children too; it can be killed and started again."""

    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "broker.cli", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
