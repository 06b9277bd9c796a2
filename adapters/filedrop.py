"""``filedrop``: signed envelopes written to a directory, for networks that are not connected
(an air gap, removable media, a one-way diode).

Configuration: ``{"directory": "/srv/palermo/drop/to-nl", "node_key": "<base64>"}``.
``directory`` is absolute and must exist, writable by the worker; ``node_key`` (optional) is
the key of the Palermo node on the other side, which lets this node import what that node
drops for it (``palermo filedrop import``).

Writing: each message becomes ``<message id>.json``, the countersigned envelope (the
sender's signature, then this node's), written atomically: a hidden temporary file in the same
directory, ``fsync``, ``rename`` over the final name, ``fsync`` of the directory. A reader that
takes only ``*.json`` names never sees a partial file; writing the same message again replaces
the file with the same bytes (the receiver deduplicates by id anyway).

Reading (``drop_files``, ``settle``): the importer takes ``*.json`` files in name order and
moves each, once its transaction committed, to ``processed/`` or ``rejected/`` (with a
``.reason`` file beside it), with the same atomic rename.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.contracts import (
    AdapterConfigError,
    AdapterSpec,
    DeliveryResult,
    DestinationRules,
    NodeIdentity,
    Outgoing,
)
from adapters.destinations import STRICT, check_directory
from adapters.peer import decode_node_key

SUFFIX = ".json"
PROCESSED = "processed"
REJECTED = "rejected"


def check(config: Mapping[str, Any], rules: DestinationRules = STRICT) -> dict[str, Any]:
    unknown = set(config) - {"directory", "node_key"}
    if unknown:
        raise AdapterConfigError(
            f"unknown filedrop setting {sorted(unknown)[0]!r}", field="adapter_config"
        )
    directory = config.get("directory")
    field = "adapter_config.directory"
    if not isinstance(directory, str) or not os.path.isabs(directory):
        raise AdapterConfigError("directory must be an absolute path", field=field)
    check_directory(directory, rules, field=field)
    out: dict[str, Any] = {"directory": directory}
    if config.get("node_key") is not None:
        decode_node_key(config["node_key"])
        out["node_key"] = config["node_key"]
    return out


def probe(config: dict[str, Any]) -> None:
    directory = config["directory"]
    field = "adapter_config.directory"
    if not os.path.isdir(directory):
        raise AdapterConfigError(f"directory {directory} does not exist", field=field)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise AdapterConfigError(f"directory {directory} is not writable", field=field)


def write_atomically(directory: Path, name: str, data: bytes) -> Path:
    """Write ``directory/name`` so that it appears whole or not at all."""
    final = directory / name
    tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return final


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_files(directory: Path) -> list[Path]:
    """The complete envelope files waiting in ``directory``, in name order."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(SUFFIX) and not p.name.startswith(".")
    )


def settle(path: Path, *, accepted: bool, reason: str | None = None) -> Path:
    """Move an imported file out of the way: ``processed/`` or ``rejected/`` (with why)."""
    target_dir = path.parent / (PROCESSED if accepted else REJECTED)
    target_dir.mkdir(exist_ok=True)
    if reason is not None:
        write_atomically(target_dir, path.name + ".reason", reason.encode() + b"\n")
    target = target_dir / path.name
    os.replace(path, target)
    _fsync_dir(path.parent)
    return target


class FiledropAdapter:
    name = "filedrop"
    pull = False

    def __init__(self, config: dict[str, Any]) -> None:
        self.directory = Path(config["directory"])

    async def deliver(self, item: Outgoing) -> DeliveryResult:
        name = f"{item.message_id}{SUFFIX}"
        try:
            await asyncio.to_thread(write_atomically, self.directory, name, item.envelope.to_json())
        except OSError as exc:
            return DeliveryResult.retry(f"cannot write to the drop directory ({exc.strerror})")
        return DeliveryResult.ok(file=name)

    async def aclose(self) -> None:
        return None


def build(config: dict[str, Any], node: NodeIdentity) -> FiledropAdapter:
    return FiledropAdapter(config)


SPEC = AdapterSpec(
    name="filedrop",
    summary="signed envelopes written atomically to a directory (air gap, removable media)",
    check=check,
    build=build,
    probe=probe,
)
