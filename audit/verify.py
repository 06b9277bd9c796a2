"""``palermo-verify``: check a Palermo audit export offline.

Usage::

    palermo-verify --key <verifier key> [--checkpoint FILE]... [--origin ORIGIN] BUNDLE

``BUNDLE`` is a file path, or ``-`` for standard input. ``--key`` is the log's verifier key
string ``<name>+<hex key id>+<base64(0x01 || Ed25519 public key)>``. Each ``--checkpoint``
file holds an earlier signed checkpoint of the same log, kept by the auditor; the bundle
must be consistent with every one of them.

Bundle format ``palermo-audit-bundle/v1`` (full description in ``audit/BUNDLE.md`` and
`audit.bundle`): JSON Lines; a header ``{"format": "palermo-audit-bundle/v1", "origin": ...,
"size": n, "checkpoint": "<signed note text>"}``; then n lines ``{"index": i, "leaf":
"<base64 leaf bytes>"}`` in order; then optional proof lines (``"type": "inclusion"`` or
``"consistency"``) checked against the checkpoint.

What it checks: the checkpoint's signature with the given key; every entry, in order,
recomputing the RFC 6962 tree while streaming with O(log n) memory; that the root is the
checkpoint's; that the first ``m`` entries hash to the root of each earlier checkpoint of
size ``m``; and every proof line.

Output and exit status: one verdict line on standard output. ``0`` and ``OK: ...`` when
everything verifies; ``1`` and ``FAIL at index <i>: <why>`` (or ``FAIL: <why>`` when no
entry is at fault) on the first failure, ``<i>`` being the first bad index as defined in
`audit.bundle`; ``2`` for a usage error or an unreadable input. A progress indicator goes
to standard error, only when standard error is a terminal.

It needs only the standard library and PyNaCl, so an auditor can run it away from the node.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from audit.bundle import MAX_LINE_BYTES, BundleError, verify_bundle
from audit.keys import Ed25519Verifier, KeyFormatError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="palermo-verify",
        description="Verify a Palermo audit export bundle (palermo-audit-bundle/v1) offline.",
    )
    parser.add_argument(
        "--key",
        required=True,
        help="the log's verifier key: <name>+<hex key id>+<base64 key>",
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="FILE",
        help="an earlier signed checkpoint of the log (repeatable)",
    )
    parser.add_argument("--origin", help="the log origin the bundle must be for")
    parser.add_argument("bundle", help="bundle file, or - for standard input")
    return parser


def _progress(stream: TextIO) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        stream.write(f"\rpalermo-verify: {done}/{total} entries ({percent}%)")
        stream.flush()

    return report


def _usage_error(message: str) -> int:
    sys.stderr.write(f"palermo-verify: error: {message}\n")
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; return the exit status (0 verified, 1 failed, 2 usage error).

    Raises:
        SystemExit: from argparse, for a malformed command line (status 2) or --help (0).
    """
    args = _parser().parse_args(argv)
    try:
        verifier = Ed25519Verifier.from_vkey(args.key)
    except KeyFormatError as exc:
        return _usage_error(f"--key: {exc}")
    earlier: list[bytes] = []
    for path in args.checkpoint:
        try:
            with open(path, "rb") as handle:
                text = handle.read(MAX_LINE_BYTES + 1)
        except OSError as exc:
            return _usage_error(f"--checkpoint {path}: {exc.strerror or exc}")
        if len(text) > MAX_LINE_BYTES:
            return _usage_error(f"--checkpoint {path}: larger than {MAX_LINE_BYTES} bytes")
        earlier.append(text)

    interactive = sys.stderr.isatty()
    progress = _progress(sys.stderr) if interactive else None
    try:
        if args.bundle == "-":
            verdict = verify_bundle(
                sys.stdin.buffer, verifier, earlier=earlier, origin=args.origin, progress=progress
            )
        else:
            with open(args.bundle, "rb") as handle:
                verdict = verify_bundle(
                    handle, verifier, earlier=earlier, origin=args.origin, progress=progress
                )
    except OSError as exc:
        return _usage_error(f"{args.bundle}: {exc.strerror or exc}")
    except BundleError as exc:
        if interactive:
            sys.stderr.write("\n")
        where = "" if exc.index is None else f" at index {exc.index}"
        sys.stdout.write(f"FAIL{where}: {exc.reason}\n")
        return EXIT_FAILED
    if interactive:
        sys.stderr.write("\n")
    sys.stdout.write(verdict.summary() + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
