"""palermo-verify and the palermo-audit-bundle/v1 format, tamper cases included."""

import base64
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit import _b64
from audit.bundle import (
    BundleError,
    consistency_proof_line,
    entry_line,
    inclusion_proof_line,
    verify_bundle,
    write_bundle,
)
from audit.checkpoint import Checkpoint, sign_checkpoint
from audit.keys import Ed25519Signer
from audit.merkle import EMPTY_ROOT, MemoryTree, leaf_hash
from audit.verify import main

ORIGIN = "audit.example/log"


@dataclass
class Log:
    signer: Ed25519Signer
    leaves: list[bytes]

    @property
    def tree(self) -> MemoryTree:
        return MemoryTree(leaf_hash(leaf) for leaf in self.leaves)

    def checkpoint(self, size: int | None = None) -> tuple[str, Checkpoint]:
        size = len(self.leaves) if size is None else size
        checkpoint = Checkpoint(ORIGIN, size, self.tree.root(size))
        return sign_checkpoint(checkpoint, self.signer), checkpoint

    def bundle(self, proof_lines: list[bytes] | None = None) -> bytes:
        text, checkpoint = self.checkpoint()
        out = io.BytesIO()
        write_bundle(out, text, checkpoint, self.leaves, proof_lines or [])
        return out.getvalue()


def make_log(signer: Ed25519Signer, size: int = 20, salt: str = "") -> Log:
    leaves = [
        json.dumps({"id": f"{salt}{i}", "kind": "message:accepted"}).encode() for i in range(size)
    ]
    return Log(signer, leaves)


@pytest.fixture
def log(log_signer: Ed25519Signer) -> Log:
    return make_log(log_signer)


class Runner:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str], log: Log) -> None:
        self.tmp_path = tmp_path
        self.capsys = capsys
        self.log = log

    def __call__(
        self, bundle: bytes, earlier: list[int | str] | None = None, key: str | None = None
    ) -> tuple[int, str, str]:
        path = self.tmp_path / "bundle.jsonl"
        path.write_bytes(bundle)
        argv = ["--key", key or self.log.signer.verifier().vkey]
        for number, item in enumerate(earlier or []):
            text = self.log.checkpoint(item)[0] if isinstance(item, int) else item
            kept = self.tmp_path / f"checkpoint-{number}.txt"
            kept.write_text(text)
            argv += ["--checkpoint", str(kept)]
        status = main([*argv, str(path)])
        captured = self.capsys.readouterr()
        return status, captured.out, captured.err


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], log: Log) -> Runner:
    return Runner(tmp_path, capsys, log)


def lines_of(bundle: bytes) -> list[bytes]:
    return bundle.splitlines(keepends=True)


def edit_leaf(bundle: bytes, index: int, leaf: bytes) -> bytes:
    lines = lines_of(bundle)
    lines[1 + index] = entry_line(index, leaf)
    return b"".join(lines)


# --- the honest case ----------------------------------------------------------------------


def test_an_honest_bundle_verifies(run: Runner, log: Log) -> None:
    status, out, err = run(log.bundle(), earlier=[8, 20])
    assert status == 0
    assert out.startswith(f"OK: log '{ORIGIN}' has 20 entries with root ")
    assert "consistent with earlier checkpoints of size 8, 20" in out
    assert out.count("\n") == 1
    assert err == ""  # stderr is not a terminal here: no progress indicator


def test_progress_only_on_a_terminal(
    run: Runner, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status, out, _ = run(log.bundle())
    assert status == 0
    assert "palermo-verify: 20/20 entries (100%)" in terminal.getvalue()
    assert "palermo-verify" not in out


def test_bundle_from_standard_input(
    log: Log, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(log.bundle())))
    assert main(["--key", log.signer.verifier().vkey, "-"]) == 0
    assert capsys.readouterr().out.startswith("OK:")


def test_proof_lines_are_checked(run: Runner, log: Log) -> None:
    tree = log.tree
    proofs = [
        inclusion_proof_line(5, tree.get_subtree(0, 5), tree.inclusion_proof(5)),
        consistency_proof_line(7, tree.root(7), tree.consistency_proof(7)),
    ]
    status, out, _ = run(log.bundle(proofs), earlier=[7])
    assert status == 0
    assert "2 proofs checked" in out


def test_an_empty_log_verifies(run: Runner, log_signer: Ed25519Signer) -> None:
    status, out, _ = run(make_log(log_signer, size=0).bundle())
    assert status == 0
    assert f"0 entries with root {_b64.encode(EMPTY_ROOT)}" in out


# --- tamper cases: each caught, with the first bad index ------------------------------


def test_edited_leaf(run: Runner, log: Log) -> None:
    tampered = edit_leaf(log.bundle(), 7, b'{"id": "7", "kind": "message:refused"}')
    assert run(tampered)[:2] == (
        1,
        "FAIL at index 19: entries 0..19 do not hash to the checkpoint's root: "
        "at least one of them was changed\n",
    )
    status, out, _ = run(tampered, earlier=[8])
    assert status == 1
    assert out.startswith("FAIL at index 7: entries 0..7 do not hash to the root of the earlier")
    status, out, _ = run(tampered, earlier=[5, 12])
    assert out.startswith("FAIL at index 11: entries 5..11 ")


def test_deleted_leaf(run: Runner, log: Log) -> None:
    lines = lines_of(log.bundle())
    del lines[1 + 7]
    status, out, _ = run(b"".join(lines), earlier=[12])
    assert status == 1
    assert out == (
        "FAIL at index 7: expected entry 7, found entry 8: "
        "an entry was removed, inserted or reordered\n"
    )


def test_deleted_leaf_with_renumbered_entries(run: Runner, log: Log) -> None:
    kept = log.leaves[:7] + log.leaves[8:]
    lines = lines_of(log.bundle())[:1] + [entry_line(i, leaf) for i, leaf in enumerate(kept)]
    status, out, _ = run(b"".join(lines), earlier=[8])
    assert status == 1
    assert out.startswith("FAIL at index 7: entries 0..7 do not hash")
    status, out, _ = run(b"".join(lines))
    assert out.startswith("FAIL at index 19: the bundle ends after 19 entries")


def test_swapped_leaves(run: Runner, log: Log) -> None:
    lines = lines_of(log.bundle())
    lines[1 + 3], lines[1 + 9] = lines[1 + 9], lines[1 + 3]
    status, out, _ = run(b"".join(lines), earlier=[15])
    assert status == 1
    assert out.startswith("FAIL at index 3: expected entry 3, found entry 9")


def test_swapped_leaf_contents_under_their_old_numbers(run: Runner, log: Log) -> None:
    swapped = edit_leaf(edit_leaf(log.bundle(), 3, log.leaves[9]), 9, log.leaves[3])
    status, out, _ = run(swapped, earlier=[4])
    assert status == 1
    assert out.startswith("FAIL at index 3: entries 0..3 do not hash")


def test_truncated_tail(run: Runner, log: Log) -> None:
    truncated = b"".join(lines_of(log.bundle())[: 1 + 15])
    status, out, _ = run(truncated, earlier=[10])
    assert status == 1
    assert out == (
        "FAIL at index 15: the bundle ends after 15 entries but the checkpoint covers 20: "
        "entries 15..19 are missing\n"
    )
    assert run(truncated, earlier=[18])[1].startswith("FAIL at index 15: the bundle ends")


def test_different_log_under_a_same_size_checkpoint(
    run: Runner, log: Log, log_signer: Ed25519Signer
) -> None:
    # The node's key signs another history of the same size: entries 0..9 shared, then not.
    fork = Log(log_signer, log.leaves[:10] + make_log(log_signer, 10, salt="fork").leaves)
    forged = fork.bundle()
    assert run(forged)[0] == 0  # alone, a consistent forgery verifies: hence held checkpoints
    genuine_same_size = log.checkpoint(20)[0]
    status, out, _ = run(forged, earlier=[genuine_same_size])
    assert status == 1
    assert out.startswith("FAIL at index 19: entries 0..19 do not hash to the root of the earlier")
    assert "the log signed two different trees" in out
    status, out, _ = run(forged, earlier=[log.checkpoint(10)[0], log.checkpoint(11)[0]])
    assert out.startswith("FAIL at index 10: entries 10..10 do not hash")
    # a checkpoint from before the fork cannot tell (documented limit)
    assert run(forged, earlier=[log.checkpoint(10)[0]])[0] == 0


def test_other_entries_under_the_genuine_checkpoint(
    run: Runner, log: Log, log_signer: Ed25519Signer
) -> None:
    other = make_log(log_signer, 20, salt="other")
    lines = lines_of(log.bundle())[:1] + lines_of(other.bundle())[1:]
    status, out, _ = run(b"".join(lines), earlier=[1])
    assert status == 1
    assert out.startswith("FAIL at index 0: entries 0..0 do not hash")


# --- signatures, keys and held checkpoints --------------------------------------------


def test_wrong_key(run: Runner, log: Log) -> None:
    other = Ed25519Signer(log.signer.name, b"\x05" * 32).verifier().vkey
    status, out, _ = run(log.bundle(), key=other)
    assert status == 1
    assert out == "FAIL: checkpoint does not verify: note has no verifiable signatures\n"


def test_tampered_checkpoint_signature(run: Runner, log: Log) -> None:
    lines = lines_of(log.bundle())
    header = json.loads(lines[0])
    header["checkpoint"] = header["checkpoint"].replace("\n20\n", "\n21\n")
    header["size"] = 21
    lines[0] = json.dumps(header).encode() + b"\n"
    status, out, _ = run(b"".join(lines))
    assert status == 1
    assert out.startswith("FAIL: checkpoint does not verify: invalid signature for key")


def test_earlier_checkpoint_larger_than_the_bundle(run: Runner, log: Log) -> None:
    longer = make_log(log.signer, 25)
    status, out, _ = run(log.bundle(), earlier=[longer.checkpoint()[0]])
    assert status == 1
    assert out.startswith("FAIL at index 20: earlier checkpoint #1 has size 25")


def test_an_entry_proven_wrong_is_named_before_a_larger_checkpoint(run: Runner, log: Log) -> None:
    longer = make_log(log.signer, 25).checkpoint()[0]
    lines = lines_of(log.bundle())
    deleted = b"".join(lines[:6] + lines[7:])  # entry 5 removed
    status, out, _ = run(deleted, earlier=[longer])
    assert status == 1
    assert out.startswith("FAIL at index 5: expected entry 5, found entry 6"), out
    truncated = b"".join(lines[: 1 + 15])
    status, out, _ = run(truncated, earlier=[longer])
    assert out.startswith("FAIL at index 15: the bundle ends after 15 entries"), out
    changed = json.loads(lines[1 + 3])
    changed["leaf"] = base64.b64encode(b"changed").decode()
    lines[1 + 3] = json.dumps(changed).encode() + b"\n"
    status, out, _ = run(b"".join(lines), earlier=[longer, log.checkpoint(4)[0]])
    assert out.startswith("FAIL at index 3: entries 0..3 do not hash"), out


def test_earlier_checkpoints_that_disagree(run: Runner, log: Log) -> None:
    other = make_log(log.signer, 20, salt="other")
    status, out, _ = run(log.bundle(), earlier=[log.checkpoint(5)[0], other.checkpoint(5)[0]])
    assert status == 1
    assert out == (
        "FAIL: two earlier checkpoints of size 5 have different roots: "
        "the log signed two different trees\n"
    )


def test_earlier_checkpoint_by_another_key_or_origin(run: Runner, log: Log) -> None:
    stranger = Ed25519Signer(log.signer.name, b"\x06" * 32)
    foreign = sign_checkpoint(Checkpoint(ORIGIN, 3, log.tree.root(3)), stranger)
    status, out, _ = run(log.bundle(), earlier=[foreign])
    assert out.startswith("FAIL: earlier checkpoint #1 does not verify")
    elsewhere = sign_checkpoint(Checkpoint("elsewhere/log", 3, log.tree.root(3)), log.signer)
    status, out, _ = run(log.bundle(), earlier=[elsewhere])
    assert status == 1
    assert "is for log 'elsewhere/log'" in out


def test_earlier_empty_checkpoint(run: Runner, log: Log) -> None:
    assert run(log.bundle(), earlier=[0])[0] == 0
    bogus = sign_checkpoint(Checkpoint(ORIGIN, 0, leaf_hash(b"x")), log.signer)
    assert run(log.bundle(), earlier=[bogus])[1].startswith("FAIL: earlier checkpoint #1 of size 0")


# --- usage errors ---------------------------------------------------------------------


def test_bad_key_is_a_usage_error(run: Runner, log: Log) -> None:
    status, out, err = run(log.bundle(), key="not-a-key")
    assert (status, out) == (2, "")
    assert err.startswith("palermo-verify: error: --key:")


def test_missing_files_are_usage_errors(
    tmp_path: Path, log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    vkey = log.signer.verifier().vkey
    assert main(["--key", vkey, str(tmp_path / "absent.jsonl")]) == 2
    assert "absent.jsonl" in capsys.readouterr().err
    bundle = tmp_path / "b.jsonl"
    bundle.write_bytes(log.bundle())
    assert main(["--key", vkey, "--checkpoint", str(tmp_path / "nope"), str(bundle)]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_missing_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


# --- strict format --------------------------------------------------------------------


def verify_bytes(log: Log, data: bytes, max_line_bytes: int = 1 << 20) -> None:
    verify_bundle(io.BytesIO(data), log.signer.verifier(), max_line_bytes=max_line_bytes)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"index": 4, "leaf": "AA==", "leaf": "AA=="}\n', "duplicate key"),
        (b'{"index": 4, "leaf": "AA==", "extra": 1}\n', "exactly the keys"),
        (b'{"index": true, "leaf": "AA=="}\n', "non-negative integer"),
        (b'{"index": 4.0, "leaf": "AA=="}\n', "non-negative integer"),
        (b'{"index": NaN, "leaf": "AA=="}\n', "not a number"),
        (b'{"index": 4, "leaf": "AB=="}\n', "not base64"),
        (b'{"index": 4, "leaf": 7}\n', "must be a string"),
        (b"\n", "not a JSON object"),
        (b"[4]\n", "not a JSON object"),
        (b'{"index": 4, "leaf": "\xff"}\n', "not a JSON object"),
    ],
)
def test_malformed_entry_lines(log: Log, line: bytes, reason: str) -> None:
    lines = lines_of(log.bundle())
    lines[1 + 4] = line
    with pytest.raises(BundleError, match=reason) as caught:
        verify_bytes(log, b"".join(lines))
    assert caught.value.index == 4


def test_overlong_line(log: Log) -> None:
    lines = lines_of(log.bundle())
    lines[1 + 2] = entry_line(2, b"x" * 600)
    with pytest.raises(BundleError, match="longer than 500 bytes") as caught:
        verify_bytes(log, b"".join(lines), 500)
    assert caught.value.index == 2


def test_header_errors(log: Log) -> None:
    lines = lines_of(log.bundle())
    header = json.loads(lines[0])
    with pytest.raises(BundleError, match="no header"):
        verify_bytes(log, b"")
    for key, value, reason in [
        ("format", "palermo-audit-bundle/v2", "format must be"),
        ("size", 19, "size differs"),
        ("origin", "other", "origin differs"),
    ]:
        changed = dict(header, **{key: value})
        data = json.dumps(changed).encode() + b"\n" + b"".join(lines[1:])
        with pytest.raises(BundleError, match=reason):
            verify_bytes(log, data)


def test_extra_entry_beyond_the_size(log: Log) -> None:
    data = log.bundle() + entry_line(20, b"late")
    with pytest.raises(BundleError, match="beyond the checkpoint's size 20") as caught:
        verify_bytes(log, data)
    assert caught.value.index == 20


def test_bad_proof_lines(log: Log) -> None:
    tree = log.tree
    good = inclusion_proof_line(5, tree.get_subtree(0, 5), tree.inclusion_proof(5))
    wrong_leaf = inclusion_proof_line(5, tree.get_subtree(0, 6), tree.inclusion_proof(5))
    with pytest.raises(BundleError, match="inclusion proof of entry 5 fails"):
        verify_bytes(log, log.bundle([good, wrong_leaf]))
    stale = consistency_proof_line(7, tree.root(6), tree.consistency_proof(7))
    with pytest.raises(BundleError, match="consistency proof from size 7 fails"):
        verify_bytes(log, log.bundle([stale]))
    with pytest.raises(BundleError, match="unknown proof type 'audit'"):
        verify_bytes(log, log.bundle([b'{"type": "audit"}\n']))
    with pytest.raises(BundleError, match="entry lines must come before proof lines"):
        verify_bytes(log, log.bundle([good, entry_line(20, b"late")]))
    with pytest.raises(BundleError, match="list of base64"):
        verify_bytes(log, log.bundle([b'{"type":"consistency","size1":7,"root1":"","hashes":1}\n']))


def test_consistency_line_must_match_a_held_checkpoint(log: Log) -> None:
    tree = log.tree
    other = make_log(log.signer, 20, salt="other").tree
    line = consistency_proof_line(7, other.root(7), tree.consistency_proof(7))
    with pytest.raises(BundleError, match="root1 differs from the earlier checkpoint of size 7"):
        verify_bundle(
            io.BytesIO(log.bundle([line])),
            log.signer.verifier(),
            earlier=[log.checkpoint(7)[0]],
        )


def test_writer_refuses_inconsistent_input(log: Log) -> None:
    text, checkpoint = log.checkpoint()
    with pytest.raises(ValueError, match="19 leaves written"):
        write_bundle(io.BytesIO(), text, checkpoint, log.leaves[:19])
    with pytest.raises(ValueError, match="more leaves"):
        write_bundle(io.BytesIO(), text, checkpoint, [*log.leaves, b"x"])
    with pytest.raises(ValueError, match="not a signed note of this checkpoint"):
        write_bundle(io.BytesIO(), log.checkpoint(3)[0], checkpoint, log.leaves)


def test_progress_callback_cadence(log_signer: Ed25519Signer) -> None:
    big = make_log(log_signer, 5000)
    calls: list[tuple[int, int]] = []
    verify_bundle(
        io.BytesIO(big.bundle()),
        log_signer.verifier(),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(4096, 5000), (5000, 5000)]


def test_empty_log_with_a_non_empty_root(log_signer: Ed25519Signer) -> None:
    checkpoint = Checkpoint(ORIGIN, 0, leaf_hash(b"not empty"))
    out = io.BytesIO()
    write_bundle(out, sign_checkpoint(checkpoint, log_signer), checkpoint, [])
    with pytest.raises(BundleError, match="empty log has a non-empty root") as caught:
        verify_bundle(io.BytesIO(out.getvalue()), log_signer.verifier())
    assert caught.value.index is None


def test_failure_ends_the_progress_line_on_a_terminal(
    run: Runner, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status, out, _ = run(edit_leaf(log.bundle(), 2, b"changed"))
    assert status == 1
    assert out.startswith("FAIL at index 19")
    assert terminal.getvalue().endswith("(100%)\n")


def test_oversized_checkpoint_file_is_a_usage_error(
    tmp_path: Path, log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b.jsonl"
    bundle.write_bytes(log.bundle())
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"x" * ((1 << 20) + 1))
    argv = ["--key", log.signer.verifier().vkey, "--checkpoint", str(huge), str(bundle)]
    assert main(argv) == 2
    assert "larger than" in capsys.readouterr().err


def test_origin_option(run: Runner, log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    path = run.tmp_path / "b.jsonl"
    path.write_bytes(log.bundle())
    vkey = log.signer.verifier().vkey
    assert main(["--key", vkey, "--origin", ORIGIN, str(path)]) == 0
    assert main(["--key", vkey, "--origin", "other/log", str(path)]) == 1
    assert "expected 'other/log'" in capsys.readouterr().out


def test_proof_hash_that_is_not_base64(log: Log) -> None:
    line = b'{"type":"consistency","size1":7,"root1":"","hashes":["AB=="]}\n'
    with pytest.raises(BundleError, match="a proof hash is not base64"):
        verify_bytes(log, log.bundle([line]))


def test_runs_as_a_module(tmp_path: Path, log: Log) -> None:
    bundle = tmp_path / "b.jsonl"
    bundle.write_bytes(log.bundle())
    result = subprocess.run(
        [sys.executable, "-m", "audit.verify", "--key", log.signer.verifier().vkey, str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("OK:")
