"""Signed notes: golang sumdb/note and C2SP vectors, byte for byte, and the parsing rules."""

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from audit.keys import (
    Ed25519Signer,
    Ed25519Verifier,
    KeyFormatError,
    decode_verifier_key,
    encode_signer_key,
    encode_verifier_key,
    is_valid_key_name,
    key_id,
)
from audit.note import (
    AmbiguousVerifierError,
    InvalidSignatureError,
    MalformedNoteError,
    Note,
    NoteError,
    UnverifiedNoteError,
    add_signatures,
    open_note,
    sign_note,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors/signed-note"
GO = json.loads((VECTORS / "golang_mod_sumdb_note.json").read_text())
C2SP = json.loads((VECTORS / "c2sp_examples.json").read_text())
PETER = GO["keys"]["PeterNeumann"]
ENOCH = GO["keys"]["EnochRoot"]
TEXT: str = GO["sign_cases"][0]["text"]


def signer_named(name: str) -> Ed25519Signer:
    if name == "PeterNeumann":
        return Ed25519Signer.from_skey(PETER["skey"])
    assert name == "EnochRoot"
    return Ed25519Signer("EnochRoot", bytes.fromhex(ENOCH["seed_hex"]))


@pytest.fixture
def peter() -> Ed25519Verifier:
    return Ed25519Verifier.from_vkey(PETER["vkey"])


def test_key_strings_round_trip() -> None:
    peter = signer_named("PeterNeumann")
    assert peter.skey == PETER["skey"]
    assert peter.verifier().vkey == PETER["vkey"]
    assert peter.key_id == 0xC74F20A3
    assert signer_named("EnochRoot").verifier().vkey == ENOCH["vkey"]


def test_key_id_rule() -> None:
    verifier = Ed25519Verifier.from_vkey(PETER["vkey"])
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + verifier.public_key).digest()
    assert verifier.key_id == int.from_bytes(digest[:4], "big")
    assert key_id("PeterNeumann", 1, verifier.public_key) == verifier.key_id


def test_vkey_base64_may_contain_plus() -> None:
    decoded = decode_verifier_key(PETER["vkey"])
    assert decoded.name == "PeterNeumann"
    # the signer key's base64 has a '+' in it: the split must stop after the key id
    assert "+" in PETER["skey"].split("+", 4)[4]
    assert Ed25519Signer.from_skey(PETER["skey"]).name == "PeterNeumann"


@pytest.mark.parametrize("case", GO["sign_cases"], ids=lambda case: case["desc"])
def test_sign_case(case: dict[str, Any]) -> None:
    names = case.get("signers") or [case["signer"]]
    signers = [signer_named(name) for name in names]
    if "want_error" in case:
        with pytest.raises(MalformedNoteError, match=f"^{re.escape(case['want_error'])}"):
            sign_note(case["text"], *signers)
    else:
        assert sign_note(case["text"], *signers) == case["want_note"]


def test_adding_a_signature_to_an_opened_note(peter: Ed25519Verifier) -> None:
    signed = GO["sign_cases"][0]["want_note"]
    note = open_note(signed, [peter])
    assert add_signatures(note, signer_named("EnochRoot")) == GO["sign_cases"][1]["want_note"]
    # re-signing with a key already present replaces its line instead of adding one
    assert add_signatures(note, signer_named("PeterNeumann")) == signed


@pytest.mark.parametrize("case", GO["open_cases"], ids=lambda case: case["desc"])
def test_open_case(case: dict[str, Any]) -> None:
    message = base64.b64decode(case["note_b64"])
    if case["note"] is not None:
        assert case["note"].encode("utf-8") == message
    verifiers = [Ed25519Verifier.from_vkey(vkey) for vkey in case["verifiers"]]
    if "want_error" in case:
        with pytest.raises(NoteError, match=f"^{re.escape(case['want_error'])}"):
            Note(message, verifiers)
        return
    note = Note(message, verifiers)
    assert note.text == TEXT
    assert [item.signature.name for item in note.signatures] == case["want_verified"]
    assert [item.name for item in note.unverified_signatures] == case["want_unverified"]
    # byte for byte: the lines re-serialise to the message
    lines = [item.signature for item in note.signatures] + list(note.unverified_signatures)
    assert (note.text + "\n" + "".join(line.line() for line in lines)).encode() == message


def test_open_error_types(peter: Ed25519Verifier) -> None:
    cases = {case["desc"]: base64.b64decode(case["note_b64"]) for case in GO["open_cases"]}
    with pytest.raises(UnverifiedNoteError):
        Note(cases["no verifiers -> error note has no verifiable signatures"], [])
    with pytest.raises(InvalidSignatureError) as caught:
        Note(cases["corrupted signature base64 for known key -> invalid signature"], [peter])
    assert (caught.value.name, caught.value.key_id) == ("PeterNeumann", 0xC74F20A3)
    for desc, message in cases.items():
        if desc.startswith("malformed") or desc.startswith("101"):
            with pytest.raises(MalformedNoteError):
                Note(message, [peter])


@pytest.mark.parametrize("bad", GO["bad_vkeys"], ids=lambda bad: bad["why"])
def test_bad_vkey(bad: dict[str, str]) -> None:
    with pytest.raises(KeyFormatError):
        Ed25519Verifier.from_vkey(bad["vkey"])


def test_every_proper_substring_of_the_vkey_is_refused() -> None:
    vkey = PETER["vkey"]
    for start in range(len(vkey)):
        for end in range(start, len(vkey) + 1):
            if (start, end) == (0, len(vkey)):
                continue
            with pytest.raises(KeyFormatError):
                Ed25519Verifier.from_vkey(vkey[start:end])


def test_every_single_byte_increment_of_the_vkey_is_refused() -> None:
    raw = PETER["vkey"].encode()
    for position in range(len(raw)):
        changed = bytearray(raw)
        changed[position] += 1
        with pytest.raises((KeyFormatError, UnicodeDecodeError)):
            Ed25519Verifier.from_vkey(changed.decode())


def test_c2sp_signed_note_example() -> None:
    example = C2SP["signed_note_example"]
    note = Note(example["note"], [Ed25519Verifier.from_vkey(example["vkey"])])
    assert note.text == "This is an example message.\n"
    assert note.is_signed_by(Ed25519Verifier.from_vkey(example["vkey"]))


def test_unknown_key_sharing_a_name_is_ignored_not_trusted(peter: Ed25519Verifier) -> None:
    impostor = Ed25519Signer("PeterNeumann", b"\x07" * 32)
    signed = sign_note(TEXT, impostor)
    with pytest.raises(UnverifiedNoteError):
        Note(signed, [peter])
    both = sign_note(TEXT, signer_named("PeterNeumann"), impostor)
    note = Note(both, [peter])
    assert [item.signature.name for item in note.signatures] == ["PeterNeumann"]
    assert note.unverified_signatures[0].key_id == impostor.key_id


def test_note_text_may_hold_blank_lines(peter: Ed25519Verifier) -> None:
    text = "first\n\nsecond\n\n"
    signed = sign_note(text, signer_named("PeterNeumann"))
    assert Note(signed, [peter]).text == text


def test_repeated_lines_by_one_key_count_once(peter: Ed25519Verifier) -> None:
    signed = GO["sign_cases"][0]["want_note"]
    line = signed.split("\n\n")[1]
    note = Note(signed + line, [peter])
    assert len(note.signatures) == 1


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        (lambda s: s.replace("\u2014 ", "- "), "em dash"),
        (lambda s: s.replace("PeterNeumann ", "PeterNeumann  "), "base64"),
        (lambda s: s.replace("AM=\n", "AN=\n"), "canonical"),
        (lambda s: s.replace("problem,\n", "problem,\r\n"), "control character"),
        (lambda s: s.replace("x08go", "x08g"), "base64"),
        (lambda s: s.rstrip("\n"), "newline"),
    ],
)
def test_malformed_notes_fail_clearly(mutation: Any, reason: str, peter: Ed25519Verifier) -> None:
    signed = GO["sign_cases"][0]["want_note"]
    Note(signed, [peter])
    with pytest.raises(MalformedNoteError, match=reason):
        Note(mutation(signed), [peter])


def test_signing_rules() -> None:
    peter = signer_named("PeterNeumann")
    with pytest.raises(MalformedNoteError, match="control character"):
        sign_note("tab\there\n", peter)
    with pytest.raises(MalformedNoteError, match="UTF-8"):
        sign_note("lone \ud800 surrogate\n", peter)
    with pytest.raises(NoteError, match="at least one signature"):
        sign_note(TEXT)
    with pytest.raises(NoteError, match="given twice"):
        sign_note(TEXT, peter, peter)


def test_ambiguous_verifiers_are_refused() -> None:
    peter = Ed25519Verifier.from_vkey(PETER["vkey"])

    class Lookalike:
        name = peter.name
        key_id = peter.key_id

        def verify(self, message: bytes, signature: bytes) -> bool:
            return True

    with pytest.raises(AmbiguousVerifierError):
        Note(GO["sign_cases"][0]["want_note"], [peter, Lookalike()])
    # the same key twice is not ambiguous
    Note(GO["sign_cases"][0]["want_note"], [peter, Ed25519Verifier.from_vkey(PETER["vkey"])])


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("example.com/log", True),
        ("", False),
        ("a+b", False),
        ("a b", False),
        ("a\u00a0b", False),
        ("a\u2028b", False),
        ("tab\tname", False),
        ("caf\u00e9", True),
    ],
)
def test_key_names(name: str, valid: bool) -> None:
    assert is_valid_key_name(name) is valid


def test_signer_key_must_match_its_key_id() -> None:
    skey = PETER["skey"].replace("c74f20a3", "c74f20a4")
    with pytest.raises(KeyFormatError, match="key id"):
        Ed25519Signer.from_skey(skey)
    with pytest.raises(KeyFormatError, match="PRIVATE"):
        Ed25519Signer.from_skey(PETER["vkey"])


def test_secrets_stay_out_of_repr() -> None:
    peter = signer_named("PeterNeumann")
    assert peter.seed.hex() not in repr(peter)
    assert "seed" not in repr(peter)


def test_generated_keys_sign_and_verify() -> None:
    signer = Ed25519Signer.generate("audit.example/fresh")
    note = Note(sign_note("hello\n", signer), [Ed25519Verifier.from_vkey(signer.verifier().vkey)])
    assert note.text == "hello\n"


def test_signature_line_rules(peter: Ed25519Verifier) -> None:
    signed = GO["sign_cases"][0]["want_note"]
    text, line = signed.split("\n\n")
    with pytest.raises(MalformedNoteError, match="invalid key name"):
        Note(text + "\n\n" + line.replace("PeterNeumann", "Peter+Neumann"), [peter])
    with pytest.raises(MalformedNoteError, match="too short"):
        Note(text + "\n\n\u2014 PeterNeumann AAAAAA==\n", [peter])
    # identical unknown lines are listed once
    stranger = sign_note(TEXT, Ed25519Signer("stranger", b"\x08" * 32)).split("\n\n")[1]
    note = Note(signed + stranger + stranger, [peter])
    assert len(note.unverified_signatures) == 1
    assert "PeterNeumann" in repr(note)


def test_signature_count_limit_on_signing() -> None:
    signers = [Ed25519Signer(f"k{i}", i.to_bytes(32, "big")) for i in range(101)]
    with pytest.raises(NoteError, match="at most 100"):
        sign_note(TEXT, *signers)
    note = Note(sign_note(TEXT, *signers[:100]), [signers[0].verifier()])
    with pytest.raises(NoteError, match="at most 100"):
        add_signatures(note, signers[100])
    with pytest.raises(NoteError, match="no signer"):
        add_signatures(note)


def test_signer_key_syntax() -> None:
    for bad, reason in [
        ("PRIVATE+KEY+PeterNeumann+c74f20a3", "PRIVATE"),
        ("PRIVATE+KEY+Peter Neumann+c74f20a3+AAAA", "invalid key name"),
        ("PRIVATE+KEY+PeterNeumann+C74F20A3+" + PETER["skey"].split("+", 4)[4], "lowercase"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+AQ==", "too short"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+AgEC", "not Ed25519"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+AQEC", "32 bytes"),
    ]:
        with pytest.raises(KeyFormatError, match=reason):
            Ed25519Signer.from_skey(bad)


def test_key_objects_validate_their_fields() -> None:
    with pytest.raises(KeyFormatError, match="invalid key name"):
        Ed25519Verifier("bad name", b"\x00" * 32)
    with pytest.raises(KeyFormatError, match="32 bytes, got 31"):
        Ed25519Verifier("name", b"\x00" * 31)
    with pytest.raises(KeyFormatError, match="invalid key name"):
        Ed25519Signer("", b"\x00" * 32)
    with pytest.raises(KeyFormatError, match="seed is 32 bytes"):
        Ed25519Signer("name", b"\x00" * 16)
    assert not is_valid_key_name("lone\ud800")
    with pytest.raises(KeyFormatError):
        encode_verifier_key("bad name", 1, b"\x00" * 32)
    with pytest.raises(KeyFormatError):
        encode_signer_key("bad name", 1, b"\x00" * 32, b"\x00" * 32)


def test_custom_signers_are_held_to_the_name_rules() -> None:
    class Careless:
        name = "has space"
        key_id = 1

        def sign(self, message: bytes) -> bytes:
            return b"\x00" * 64

    with pytest.raises(KeyFormatError, match="invalid signer name"):
        sign_note(TEXT, Careless())
