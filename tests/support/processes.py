"""What tests and benches that start real processes share: a free port, and waiting for a
process to listen on it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable


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
