from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class PeerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, examples=["https://palermo.de.example"])
    node_key: str = Field(
        min_length=1,
        max_length=64,
        description="the peer's node signing key, base64 (its GET /v1/node signing_public_key)",
    )
    jurisdictions: list[str] = Field(
        min_length=1,
        max_length=300,
        examples=[["DE"]],
        description="ISO 3166 alpha-2 codes: a directory may list participants of these only",
    )


class PeerRead(BaseModel):
    node_id: str
    url: str
    node_key_id: str
    jurisdictions: list[str]
    directory_serial: int | None
    directory_issued_at: dt.datetime | None
    synced_at: dt.datetime | None
    failures: int = Field(description="directories from this peer refused so far")
    last_failure_at: dt.datetime | None
    last_error: str | None


class PeerList(BaseModel):
    items: list[PeerRead]


class DirectoryChanges(BaseModel):
    registered: list[str]
    updated: list[str]
    suspended: list[str]
    keys_added: list[str]
    keys_ended: list[str]
    keys_revoked: list[str]


class SyncRead(BaseModel):
    peer: str
    outcome: str = Field(description="applied, unchanged, refused or unreachable")
    serial: int | None
    changes: DirectoryChanges | None
    error: str | None


class SyncList(BaseModel):
    items: list[SyncRead]


class DirectoryEnvelope(BaseModel):
    payloadType: str  # noqa: N815 - the DSSE field name
    payload: str
    signatures: list[dict[str, str]]
