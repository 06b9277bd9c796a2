"""API shapes of the audit log. Hashes, leaves and signatures are standard base64."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class CosignatureRead(BaseModel):
    witness: str = Field(description="the witness's key name")
    key_id: str = Field(description="the witness key id, 8 hex digits")
    timestamp: int = Field(description="when the witness cosigned, POSIX seconds")


class CheckpointRead(BaseModel):
    origin: str
    size: int
    root_hash: str
    note: str = Field(
        description="the C2SP signed checkpoint note: the node's signature, then any witness "
        "cosignatures (c2sp.org/tlog-cosignature)"
    )
    verifier_key: str = Field(
        description="the node's checkpoint verifier key (<name>+<hex id>+<base64>), for "
        "palermo-verify --key; obtain it out of band too before trusting it"
    )
    created_at: dt.datetime
    cosignatures: list[CosignatureRead]


class EntryRead(BaseModel):
    index: int
    event_id: str
    kind: str
    message_id: str | None
    created_at: dt.datetime
    sequenced_at: dt.datetime
    leaf: str = Field(description="the leaf bytes (canonical JSON of the event)")
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf)")


class EntryPage(BaseModel):
    tree_size: int = Field(description="size of the latest checkpoint")
    start: int
    end: int
    entries: list[EntryRead] = Field(
        description="the entries of [start, end) the caller may see, in index order"
    )
    next: int | None = Field(description="start of the next page; null at the end of the log")


class InclusionProofRead(BaseModel):
    entry: EntryRead
    hashes: list[str] = Field(description="RFC 9162 inclusion proof, lowest level first")


class InclusionProofs(BaseModel):
    tree_size: int
    root_hash: str
    checkpoint: str | None = Field(
        description="the signed checkpoint of tree_size, if one was published at that size"
    )
    proofs: list[InclusionProofRead]


class ConsistencyProofRead(BaseModel):
    old: int
    new: int
    old_root: str
    new_root: str
    hashes: list[str] = Field(description="RFC 9162 consistency proof, lowest level first")
    old_checkpoint: str | None
    new_checkpoint: str | None
