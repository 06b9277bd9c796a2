"""Checkpoints: transparency-dev/formats and C2SP vectors, strict body rules, signer rules."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from audit.checkpoint import (
    Checkpoint,
    CheckpointFormatError,
    CheckpointSignatureError,
    OriginMismatchError,
    _parse_body,
    checkpoint_from_note,
    open_checkpoint,
    sign_checkpoint,
)
from audit.cosignature import CosignatureSigner
from audit.keys import Ed25519Signer, Ed25519Verifier
from audit.merkle import leaf_hash
from audit.note import InvalidSignatureError, Note, UnverifiedNoteError, sign_note

VECTORS = Path(__file__).resolve().parents[2] / "vectors/signed-note"
FORMATS = json.loads((VECTORS / "transparency_dev_formats.json").read_text())
C2SP = json.loads((VECTORS / "c2sp_examples.json").read_text())
SUMDB = FORMATS["real_sumdb_checkpoint"]
ROOT = leaf_hash(b"root")


def test_real_sumdb_checkpoint_opens() -> None:
    checkpoint = open_checkpoint(SUMDB["note"], Ed25519Verifier.from_vkey(SUMDB["vkey"]))
    want = SUMDB["want"]
    assert checkpoint.origin == want["origin"]
    assert checkpoint.size == want["size"]
    assert checkpoint.root_hash == base64.b64decode(want["root_b64"])
    assert checkpoint.extensions == ()
    assert SUMDB["note"].startswith(checkpoint.body() + "\n")


def test_real_sumdb_checkpoint_under_the_wrong_origin() -> None:
    verifier = Ed25519Verifier.from_vkey(SUMDB["vkey"])
    with pytest.raises(OriginMismatchError, match="expected 'Go rocks"):
        open_checkpoint(SUMDB["note"], verifier, origin=SUMDB["want_error_if_expected_origin_is"])
    assert open_checkpoint(SUMDB["note"], verifier, origin="go.sum database tree").size == 6476701


def test_extra_signers_on_the_same_text() -> None:
    extra = FORMATS["extra_cosigners_on_same_text"]
    text = SUMDB["note"] + "".join(item["sig_line"] + "\n" for item in extra)
    log = Ed25519Verifier.from_vkey(SUMDB["vkey"])
    others = [Ed25519Verifier.from_vkey(item["vkey"]) for item in extra]
    assert open_checkpoint(text, log, other_verifiers=others).size == 6476701
    note = Note(text, [log, *others])
    assert [item.signature.name for item in note.signatures] == [
        "sum.golang.org",
        "monkeys",
        "bananas",
        "witness",
    ]
    # unknown extra lines are ignored
    assert open_checkpoint(text, log).size == 6476701
    # a note signed only by the extra keys is not the log's checkpoint
    only_extra = SUMDB["note"].split("\u2014")[0] + "".join(
        item["sig_line"] + "\n" for item in extra
    )
    with pytest.raises(CheckpointSignatureError, match="not signed by the log key"):
        checkpoint_from_note(Note(only_extra, others), log)
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(only_extra, log, other_verifiers=[])


def test_a_tampered_checkpoint_fails() -> None:
    verifier = Ed25519Verifier.from_vkey(SUMDB["vkey"])
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(SUMDB["note"].replace("6476701", "6476702"), verifier)


@pytest.mark.parametrize(
    "case", FORMATS["checkpoint_body_parse_cases"], ids=lambda case: case["desc"]
)
def test_checkpoint_body_parse_case(case: dict[str, Any]) -> None:
    if case.get("want_error"):
        with pytest.raises(CheckpointFormatError):
            _parse_body(case["body"])
        return
    origin, size, root, extensions = _parse_body(case["body"])
    assert origin == case["want"]["origin"]
    assert size == case["want"]["size"]
    if "root_b64" in case["want"]:
        assert root == base64.b64decode(case["want"]["root_b64"])
    assert "".join(line + "\n" for line in extensions) == case.get("want_rest", "")
    # These Go cases carry roots that are not 32 bytes: a Palermo checkpoint refuses them.
    assert len(root) != 32
    with pytest.raises(CheckpointFormatError, match="root hash must be 32 bytes"):
        Checkpoint(origin, size, root, extensions)


def test_a_signed_body_with_a_short_root_does_not_open(log_signer: Ed25519Signer) -> None:
    signed = sign_note("Log\n123\nYmFuYW5hcw==\n", log_signer)
    with pytest.raises(CheckpointFormatError, match="32 bytes"):
        open_checkpoint(signed, log_signer.verifier())


def test_c2sp_checkpoint_example_parses() -> None:
    example = C2SP["checkpoint_example_parse_only"]
    body = example["note"].split("\n\n")[0] + "\n"
    origin, size, root, extensions = _parse_body(body)
    want = example["want"]
    assert (origin, size, root, extensions) == (
        want["origin"],
        want["size"],
        base64.b64decode(want["root_b64"]),
        (),
    )
    assert Checkpoint(origin, size, root).body() == body
    # no key is published for it: it must not open without one
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(
            example["note"], Ed25519Signer("example.com/behind-the-sofa", b"\x01" * 32).verifier()
        )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("Log\n0123\n" + base64.b64encode(ROOT).decode() + "\n", "leading zero"),
        ("Log\n+5\n" + base64.b64encode(ROOT).decode() + "\n", "without sign"),
        ("Log\n\u0661\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("Log\n18446744073709551616\n" + base64.b64encode(ROOT).decode() + "\n", "64 bits"),
        ("Log\n5\n" + base64.b64encode(ROOT).decode().rstrip("=") + "\n", "base64"),
        ("Log\n5\n" + base64.b64encode(ROOT).decode() + "\n\nx\n", "must not be empty"),
        ("Log\n5\n" + base64.b64encode(ROOT).decode(), "end in a newline"),
    ],
)
def test_strict_body_rules(body: str, reason: str) -> None:
    with pytest.raises(CheckpointFormatError, match=reason):
        _parse_body(body)


def test_largest_size_and_zero_are_accepted() -> None:
    root = base64.b64encode(ROOT).decode()
    assert _parse_body(f"Log\n18446744073709551615\n{root}\n")[1] == 2**64 - 1
    assert _parse_body(f"Log\n0\n{root}\n")[1] == 0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (("", 1, ROOT, ()), "origin must not be empty"),
        (("a\nb", 1, ROOT, ()), "control character"),
        (("log", -1, ROOT, ()), "tree size"),
        (("log", 2**64, ROOT, ()), "tree size"),
        (("log", 1, ROOT[:31], ()), "32 bytes"),
        (("log", 1, ROOT, ("",)), "extension line 1 must not be empty"),
        (("log", 1, ROOT, ("ok", "bad\n")), "extension line 2"),
    ],
)
def test_checkpoint_fields_are_validated(
    fields: tuple[str, int, bytes, tuple[str, ...]], reason: str
) -> None:
    with pytest.raises(CheckpointFormatError, match=reason):
        Checkpoint(*fields)


def test_sign_and_open_round_trip_with_extensions(log_signer: Ed25519Signer) -> None:
    checkpoint = Checkpoint("audit.example/log", 42, ROOT, ("ext one", "ext two"))
    signed = sign_checkpoint(checkpoint, log_signer)
    assert signed == sign_checkpoint(checkpoint, log_signer)  # deterministic
    assert open_checkpoint(signed, log_signer.verifier(), origin="audit.example/log") == checkpoint
    tampered = signed.replace("ext two", "ext 2")
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(tampered, log_signer.verifier())


def test_a_witness_signature_alone_is_not_a_checkpoint(
    log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    checkpoint = Checkpoint("audit.example/log", 1, ROOT)
    signed = sign_checkpoint(checkpoint, witness_signer)
    with pytest.raises(CheckpointSignatureError):
        open_checkpoint(signed, log_signer.verifier(), other_verifiers=[witness_signer.verifier()])
