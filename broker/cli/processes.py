"""The process kinds (serve, worker, beat) and ``palermo dev``, which runs all three on the
embedded default: SQLite, and a real Celery worker on kombu's SQLAlchemy transport (a broker
that needs no server)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from broker.cli.admin import init_node
from broker.cli.demo import DEMO_LOGINS_FILE, seed_demo
from broker.core.settings import DEV_MARKER, Settings, make_data_dir
from broker.policy.service import node_policy


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    settings.check_startup()
    settings.check_database_role("palermo serve")
    uvicorn.run(
        "broker.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        # The node reads X-Forwarded-For itself, from PALERMO_TRUSTED_PROXIES only
        # (broker.core.clientaddr): uvicorn must not rewrite the peer address first.
        proxy_headers=False,
    )
    return 0


def _celery(*argv: str) -> int:
    from broker.worker import celery_app

    celery_app.start(argv=list(argv))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings()
    settings.check_startup()
    settings.check_database_role("palermo worker")
    node_policy(settings)  # a bad policy pack stops the worker here, not at its first task
    extra = ["--pool", args.pool, "--concurrency", str(args.concurrency)]
    if args.queues:
        extra += ["--queues", args.queues]
    if args.hostname:
        extra += ["--hostname", args.hostname]
    return _celery("worker", "--loglevel", args.loglevel, *extra)


def _watch_lock(lock: Any, interval: float = 15.0) -> None:
    """Stop this beat (SIGTERM to itself) as soon as the connection that holds the lock is
    lost: PostgreSQL released the lock with it, and another beat may take it."""
    import threading

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                lock.execute("SELECT 1")
            except Exception:
                print("palermo beat: lost the beat lock connection; stopping", file=sys.stderr)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="beat-lock", daemon=True).start()


def cmd_beat(args: argparse.Namespace) -> int:
    """One scheduler per node, even while a rollout runs an old and a new one: on PostgreSQL
    beat schedules only while it holds an advisory lock (BEAT_LOCK_KEY), and waits for it
    (``--lock-wait`` seconds, default for ever) while another beat holds it."""
    from broker.core import dbroles

    settings = Settings()
    settings.check_startup()
    settings.check_database_role("palermo beat")
    lock = None
    url = settings.resolved_database_url
    if dbroles.is_postgresql(url):
        lock = dbroles.hold_advisory_lock(
            url,
            dbroles.BEAT_LOCK_KEY,
            wait_seconds=args.lock_wait,
            on_wait=lambda: print(
                "palermo beat: another beat holds the beat lock; waiting", file=sys.stderr
            ),
        )
        if lock is None:
            print(
                f"palermo beat: another beat still holds the beat lock after {args.lock_wait}s; "
                "refusing to run a second scheduler",
                file=sys.stderr,
            )
            return 3
        print("palermo beat: holding the beat lock", file=sys.stderr, flush=True)
        _watch_lock(lock)
    schedule = settings.data_dir / "celerybeat-schedule"
    try:
        return _celery("beat", "--loglevel", args.loglevel, "--schedule", str(schedule))
    finally:
        if lock is not None:
            lock.close()


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _load_sample(url: str, data_dir: Path, logins: dict[str, Any]) -> list[str]:
    """The sample work, made once per data directory."""
    from broker.cli.sample import SAMPLE_MARKER, SampleError, seed_sample

    marker = data_dir / SAMPLE_MARKER
    if marker.exists():
        return ["(loaded before; a fresh data directory loads it again)"]
    try:
        made = seed_sample(url, logins)
    except SampleError as exc:
        print(f"palermo dev: the sample could not be loaded: {exc}", file=sys.stderr)
        return []
    marker.write_text("\n".join(made) + "\n")
    return made


def _print_banner(
    url: str,
    data_dir: Path,
    logins: dict[str, Any],
    logs: dict[str, Path],
    *,
    sample: list[str],
    asked: bool,
) -> None:
    print("", flush=True)
    print(f"Palermo is running at {url}  (OpenAPI: {url}/docs)")
    print(f"open {url}/ in a browser and sign in with one of the demo logins below")
    print(f"data directory: {data_dir.resolve()}   stop with Ctrl-C")
    print("logs: " + "  ".join(f"{name} {path}" for name, path in logs.items()))
    if sample:
        print("sample work:")
        for line in sample:
            print(f"  {line}")
    elif not asked:
        print("for example messages and cases to look at: palermo dev --sample")
    print("demo logins (the web app, or POST /v1/auth/token with grant_type=password):")
    for person in logins["people"]:
        print(
            f"  {person['login']:24} {person['password']:26} "
            f"{person['participant']:24} {', '.join(person['roles'])}"
        )
    print("demo agency system (grant_type=client_credentials):")
    for system in logins["systems"]:
        print(
            f"  {system['client_id']:24} {system['client_secret']}  {system['participant']}  "
            f"key file {system['key_file']}"
        )
    print("", flush=True)


def prepare_dev_node(settings: Settings) -> None:
    """What ``palermo dev`` does before it starts the processes: the data directory 0700
    from the start (not only once ``init_node`` runs), ``init_node`` (secrets, the SQLite
    databases 0600, migrations), and the demo participants on the first run."""
    make_data_dir(settings.data_dir)
    init_node(settings)
    if not (settings.data_dir / DEV_MARKER).exists():
        seed_demo(settings)


def cmd_dev(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.env == "production":
        print("palermo dev refuses to run with PALERMO_ENV=production", file=sys.stderr)
        return 2
    prepare_dev_node(settings)
    url = f"http://{args.host}:{args.port}"
    env = {
        **os.environ,
        "PALERMO_DATA_DIR": str(settings.data_dir.resolve()),
        "PALERMO_PUBLIC_URL": os.environ.get("PALERMO_PUBLIC_URL", url),
        # The embedded node hosts every demo participant: its admin manages all their accounts.
        "PALERMO_HUB_OPERATOR": os.environ.get("PALERMO_HUB_OPERATOR", "true"),
    }
    exe = [sys.executable, "-m", "broker.cli"]
    commands = {
        "api": [*exe, "serve", "--host", args.host, "--port", str(args.port)],
        "worker": [*exe, "worker", "--pool", "solo", "--concurrency", "1"],
        "beat": [*exe, "beat"],
    }
    # The console keeps the URL and the logins; each process logs to its own file (the
    # scheduler and the worker write lines every second).
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    logs = {name: log_dir / f"{name}.log" for name in commands}
    children: dict[str, subprocess.Popen[bytes]] = {}
    for name, cmd in commands.items():
        with logs[name].open("ab") as sink:
            children[name] = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    if _wait_ready(url, children):
        logins = json.loads((settings.data_dir / DEMO_LOGINS_FILE).read_text())
        sample = _load_sample(url, settings.data_dir, logins) if args.sample else []
        _print_banner(url, settings.data_dir, logins, logs, sample=sample, asked=args.sample)
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"palermo dev: {name} exited with {child.returncode}", file=sys.stderr)
                print(_tail(logs[name]), file=sys.stderr)
                stopping, code = True, 1
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for child in children.values():
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return code


def _wait_ready(url: str, children: dict[str, subprocess.Popen[bytes]]) -> bool:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children.values()):
            return False
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the API (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=cmd_serve)
    p = sub.add_parser("worker", help="run a Celery worker")
    p.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--queues", help="comma-separated queues to consume (default: celery)")
    p.add_argument(
        "--hostname",
        help="the worker's node name (default celery@<host>): give each worker that shares a "
        "broker on one host its own, or their control queues collide",
    )
    p.set_defaults(handler=cmd_worker)
    p = sub.add_parser("beat", help="run the scheduler (Celery beat)")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument(
        "--lock-wait",
        type=float,
        default=None,
        help="PostgreSQL: seconds to wait for the beat lock another beat holds, then exit 3 "
        "(default: wait for ever)",
    )
    p.set_defaults(handler=cmd_beat)
    p = sub.add_parser("dev", help="embedded node: init, demo participants, API + worker + beat")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--sample",
        action="store_true",
        help="also load example messages and cases (once per data directory)",
    )
    p.set_defaults(handler=cmd_dev)
