"""Witness cosignatures (c2sp.org/tlog-cosignature v1, Ed25519)."""

import base64
import hashlib
import json
from pathlib import Path

import pytest

from audit.checkpoint import Checkpoint, CheckpointFormatError, sign_checkpoint
from audit.cosignature import (
    MAX_TIMESTAMP,
    CosignatureError,
    CosignatureQuorumError,
    CosignatureSigner,
    CosignatureVerifier,
    cosign_checkpoint,
    cosigned_message,
    open_cosigned_checkpoint,
    parse_timestamped_signature,
)
from audit.keys import Ed25519Signer, Ed25519Verifier, KeyFormatError
from audit.merkle import leaf_hash
from audit.note import InvalidSignatureError, Note, UnverifiedNoteError, sign_note

VECTORS = Path(__file__).resolve().parents[2] / "vectors/signed-note"
C2SP = json.loads((VECTORS / "c2sp_examples.json").read_text())
CHECKPOINT = Checkpoint("audit.example/log", 20852163, leaf_hash(b"root"), ("extension",))


@pytest.fixture
def signed(log_signer: Ed25519Signer) -> str:
    return sign_checkpoint(CHECKPOINT, log_signer)


def test_cosigned_message_is_the_spec_layout() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosigned_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    with pytest.raises(CosignatureError):
        cosigned_message(body, MAX_TIMESTAMP + 1)
    with pytest.raises(CosignatureError):
        cosigned_message(body, -1)


def test_c2sp_cosigned_example_line_layout() -> None:
    note = C2SP["cosigned_checkpoint_example_parse_only"]["note"]
    witness_line = note.rstrip("\n").split("\n")[-1]
    name, payload = witness_line.removeprefix("\u2014 ").split(" ")
    raw = base64.b64decode(payload)
    assert name == "witness.example.com/w1"
    assert len(raw) == 4 + 8 + 64
    timestamp, signature = parse_timestamped_signature(raw[4:])
    assert timestamp == 1679315147  # the time shown in the spec's signed message
    assert len(signature) == 64
    # no witness key is published: the note parses but nothing in it can be trusted
    with pytest.raises(UnverifiedNoteError):
        Note(note, [CosignatureVerifier("witness.example.com/w1", b"\x00" * 32)])


def test_key_id_uses_signature_type_4(witness_signer: CosignatureSigner) -> None:
    verifier = witness_signer.verifier()
    digest = hashlib.sha256(
        witness_signer.name.encode() + b"\n\x04" + witness_signer.public_key
    ).digest()
    assert verifier.key_id == int.from_bytes(digest[:4], "big")
    name, key_hex, material = verifier.vkey.split("+", 2)
    assert (name, int(key_hex, 16)) == (witness_signer.name, verifier.key_id)
    assert base64.b64decode(material)[0] == 0x04
    assert CosignatureVerifier.from_vkey(verifier.vkey) == verifier
    restored = CosignatureSigner.from_skey(witness_signer.skey, witness_signer.clock)
    assert restored.verifier() == verifier


def test_vkey_types_are_not_interchangeable(
    log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    with pytest.raises(KeyFormatError, match="0x04"):
        CosignatureVerifier.from_vkey(log_signer.verifier().vkey)
    with pytest.raises(KeyFormatError, match="0x01"):
        Ed25519Verifier.from_vkey(witness_signer.verifier().vkey)
    with pytest.raises(KeyFormatError, match="0x04"):
        CosignatureSigner.from_skey(log_signer.skey)


def test_cosign_and_verify(
    signed: str, log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    cosigned = cosign_checkpoint(signed, log_signer.verifier(), witness_signer)
    assert cosigned.startswith(signed)
    assert cosigned.count("\u2014 ") == 2
    assert cosigned.endswith("\n\u2014 witness.example/w1 " + cosigned.split(" ")[-1])
    result = open_cosigned_checkpoint(
        cosigned, log_signer.verifier(), [witness_signer.verifier()], origin="audit.example/log"
    )
    assert result.checkpoint == CHECKPOINT
    assert [(c.name, c.timestamp) for c in result.cosignatures] == [
        ("witness.example/w1", 1_700_000_000)
    ]


def test_cosignature_signs_the_extension_lines(
    signed: str, log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    cosigned = cosign_checkpoint(signed, log_signer.verifier(), witness_signer)
    witness_line = cosigned.split("\n")[-2] + "\n"
    other_body = sign_checkpoint(
        Checkpoint(CHECKPOINT.origin, CHECKPOINT.size, CHECKPOINT.root_hash, ("other",)),
        log_signer,
    )
    with pytest.raises(InvalidSignatureError, match=r"witness\.example/w1"):
        Note(other_body + witness_line, [log_signer.verifier(), witness_signer.verifier()])


def test_a_changed_timestamp_breaks_the_cosignature(
    signed: str, log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    cosigned = cosign_checkpoint(signed, log_signer.verifier(), witness_signer)
    note = Note(cosigned, [log_signer.verifier(), witness_signer.verifier()])
    line = note.signatures[1].signature
    later = (line.signature[:7] + bytes([line.signature[7] ^ 1])) + line.signature[8:]
    verifier = witness_signer.verifier()
    assert verifier.verify(CHECKPOINT.body().encode(), line.signature)
    assert not verifier.verify(CHECKPOINT.body().encode(), later)
    too_late = (MAX_TIMESTAMP + 1).to_bytes(8, "big") + line.signature[8:]
    assert not verifier.verify(CHECKPOINT.body().encode(), too_late)
    assert not verifier.verify(CHECKPOINT.body().encode(), line.signature[:-1])


def test_a_plain_note_key_cannot_stand_in_for_a_cosignature(
    signed: str, log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    cosigned = cosign_checkpoint(signed, log_signer.verifier(), witness_signer)
    same_key_as_type_1 = Ed25519Verifier(witness_signer.name, witness_signer.public_key)
    note = Note(cosigned, [log_signer.verifier(), same_key_as_type_1])
    assert len(note.signatures) == 1  # the cosignature line stays unverified
    assert note.unverified_signatures[0].name == witness_signer.name


def test_quorum(signed: str, log_signer: Ed25519Signer, witness_signer: CosignatureSigner) -> None:
    second = CosignatureSigner("witness.example/w2", b"\x02" * 32, lambda: 1_700_000_100)
    one = cosign_checkpoint(signed, log_signer.verifier(), witness_signer)
    both = cosign_checkpoint(one, log_signer.verifier(), second)
    witnesses = [witness_signer.verifier(), second.verifier()]
    assert len(open_cosigned_checkpoint(both, log_signer.verifier(), witnesses).cosignatures) == 2
    with pytest.raises(CosignatureQuorumError, match="1 of the 2"):
        open_cosigned_checkpoint(one, log_signer.verifier(), witnesses)
    assert open_cosigned_checkpoint(one, log_signer.verifier(), witnesses, quorum=1).cosignatures
    with pytest.raises(CosignatureError, match="cannot be met"):
        open_cosigned_checkpoint(one, log_signer.verifier(), witnesses, quorum=3)
    with pytest.raises(CosignatureError, match="cannot be met"):
        open_cosigned_checkpoint(one, log_signer.verifier(), [])
    # the same witness listed twice is one witness
    doubled = [witness_signer.verifier(), witness_signer.verifier()]
    with pytest.raises(CosignatureError, match="cannot be met"):
        open_cosigned_checkpoint(one, log_signer.verifier(), doubled, quorum=2)


def test_cosigning_again_replaces_the_witness_line(
    signed: str, log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    once = cosign_checkpoint(signed, log_signer.verifier(), witness_signer)
    later = CosignatureSigner(witness_signer.name, witness_signer.seed, lambda: 1_800_000_000)
    twice = cosign_checkpoint(once, log_signer.verifier(), later)
    result = open_cosigned_checkpoint(twice, log_signer.verifier(), [later.verifier()])
    assert [c.timestamp for c in result.cosignatures] == [1_800_000_000]


def test_witness_refuses_what_the_log_did_not_sign(
    log_signer: Ed25519Signer, witness_signer: CosignatureSigner
) -> None:
    impostor = Ed25519Signer(log_signer.name, b"\x09" * 32)
    forged = sign_checkpoint(CHECKPOINT, impostor)
    with pytest.raises(UnverifiedNoteError):
        cosign_checkpoint(forged, log_signer.verifier(), witness_signer)
    not_a_checkpoint = sign_note("hello\n", log_signer)
    with pytest.raises(CheckpointFormatError):
        cosign_checkpoint(not_a_checkpoint, log_signer.verifier(), witness_signer)


def test_clock_out_of_range_is_refused(signed: str, log_signer: Ed25519Signer) -> None:
    broken = CosignatureSigner("witness.example/w3", b"\x03" * 32, lambda: -5)
    with pytest.raises(CosignatureError):
        cosign_checkpoint(signed, log_signer.verifier(), broken)


def test_parse_timestamped_signature_lengths() -> None:
    with pytest.raises(CosignatureError, match="72 bytes"):
        parse_timestamped_signature(b"\x00" * 71)
    with pytest.raises(CosignatureError, match="exceeds"):
        parse_timestamped_signature(b"\xff" * 72)


def test_default_clock_is_the_current_time(signed: str, log_signer: Ed25519Signer) -> None:
    import time

    fresh = CosignatureSigner.generate("witness.example/fresh")
    before = int(time.time())
    cosigned = cosign_checkpoint(signed, log_signer.verifier(), fresh)
    result = open_cosigned_checkpoint(cosigned, log_signer.verifier(), [fresh.verifier()])
    assert before <= result.cosignatures[0].timestamp <= int(time.time())


def test_witness_key_validation(witness_signer: CosignatureSigner) -> None:
    wrong_id = witness_signer.skey.replace(f"+{witness_signer.key_id:08x}+", "+00000000+")
    with pytest.raises(KeyFormatError, match="key id"):
        CosignatureSigner.from_skey(wrong_id)
    with pytest.raises(KeyFormatError, match="invalid key name"):
        CosignatureVerifier("bad name", b"\x00" * 32)
    with pytest.raises(KeyFormatError, match="32 bytes"):
        CosignatureVerifier("name", b"\x00" * 33)
    with pytest.raises(KeyFormatError, match="invalid key name"):
        CosignatureSigner("", b"\x00" * 32)
    assert witness_signer.seed.hex() not in repr(witness_signer)
