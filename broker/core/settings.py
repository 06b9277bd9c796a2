"""Typed settings for a Palermo node, read from ``PALERMO_*`` environment variables.

Secrets (the node master key, the node signing key, the token secret) never live in the
repository: they come from the environment or from files that ``palermo init`` writes into the
data directory with mode 0600. A node in ``production`` refuses to start on development
secrets (those ``palermo dev`` made) or without them.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from broker.core.clientaddr import IPNetwork, parse_networks

DEV_MARKER = "DEVELOPMENT-NODE"
_SECRET_FILES = {
    "master_key": "master.key",
    "node_signing_key": "node-signing.key",
    "token_secret": "token.secret",
}


class ConfigurationError(RuntimeError):
    """The node cannot start with this configuration; the message says what to fix."""


PasswordHash = Literal["strong", "fast"]


class PasswordHashSettings(BaseSettings):
    """How password hashes are made (``PALERMO_PASSWORD_HASH``): ``strong``, argon2-cffi's
    default argon2id parameters, or ``fast``, the cheapest parameters argon2 allows, for test
    suites only. Production refuses ``fast``: the check runs whenever settings are read, so a
    node started with it fails instead of storing weak hashes."""

    model_config = SettingsConfigDict(env_prefix="PALERMO_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    password_hash: PasswordHash = "strong"  # noqa: S105 - a name of parameters
    #: How many password hashes (argon2id: CPU and 64 MiB each) one process computes at
    #: once, in worker threads; further logins wait their turn (off the event loop).
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)

    @model_validator(mode="after")
    def _strong_hashes_in_production(self) -> Self:
        if self.env == "production" and self.password_hash != "strong":  # noqa: S105 - a name of parameters
            raise ValueError(
                f"PALERMO_PASSWORD_HASH={self.password_hash} is for tests: production hashes "
                "passwords with the strong argon2id parameters only"
            )
        return self


class FileSettingsSource(PydanticBaseSettingsSource):
    """``PALERMO_<NAME>_FILE=path``: the setting ``<NAME>`` is the content of that file, less
    its trailing newline (compose and Kubernetes mount secrets as files; the convention of the
    postgres image's ``POSTGRES_PASSWORD_FILE``). A setting given both ways is refused: which
    one wins would be a guess. Raises ConfigurationError (also when the file cannot be read).
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"PALERMO_{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        if f"PALERMO_{field_name.upper()}" in os.environ:
            raise ConfigurationError(
                f"PALERMO_{field_name.upper()} and PALERMO_{field_name.upper()}_FILE are both "
                "set: give one"
            )
        try:
            return Path(path).read_text().rstrip("\r\n"), field_name, False
        except OSError as exc:
            raise ConfigurationError(
                f"PALERMO_{field_name.upper()}_FILE={path} cannot be read: {exc.strerror}"
            ) from exc

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                found[key] = value
        return found


class Settings(PasswordHashSettings):
    model_config = SettingsConfigDict(env_prefix="PALERMO_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            FileSettingsSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    data_dir: Path = Path("data")
    #: What the api, worker and beat connect as: in production a LOGIN role that is only a
    #: member of palermo_app (docs/operations.md, "Database roles").
    database_url: str = ""
    #: What ``palermo init`` migrates as: the owner of the schema (or a role that may create
    #: roles, to make the app role too). Empty: init uses PALERMO_DATABASE_URL.
    migration_database_url: SecretStr | None = None
    celery_broker_url: str = ""
    celery_result_backend: str = ""
    node_id: str = "palermo.local"
    public_url: str = "http://127.0.0.1:8000"
    #: A hub operator's admins manage the accounts of every participant on the node; otherwise
    #: an admin manages only its own participant's accounts (PALERMO_HUB_OPERATOR).
    hub_operator: bool = False

    master_key: SecretStr | None = None
    node_signing_key: SecretStr | None = None
    token_secret: SecretStr | None = None

    token_issuer: str = ""
    token_audience: str = "palermo-api"  # noqa: S105 - an audience name, not a secret
    token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)

    clock_skew_seconds: int = Field(default=300, ge=1, le=86_400)
    max_payload_bytes: int = Field(default=1_048_576, ge=1024)
    # Request limits (broker/limits.py, docs/security.md), applied before any work: a request
    # body over request_max_bytes (default: what an envelope of max_payload_bytes needs, in
    # base64 and JSON) is refused with 413 while it streams, evidence uploads up to
    # evidence_max_bytes; a body that sends nothing for body_idle_timeout_seconds, or is not
    # whole within body_timeout_seconds (evidence: only the idle limit), is cut with 408.
    request_max_bytes: int | None = Field(default=None, ge=1024)
    body_idle_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    # Policy (docs/policies.md): deployment packs (files or directories, separated by ":"),
    # shipped packs switched off (names, separated by ","), and the reference data directory
    # (jurisdictions, groups, treaties, flags) when the shipped data is not the deployment's.
    policy_paths: str = ""
    policy_disabled: str = ""
    reference_data_dir: Path | None = None
    justification_min_length: int = Field(default=10, ge=1)
    inbox_page_size: int = Field(default=50, ge=1, le=1000)
    # Oversight statistics (broker/statistics): a count from 1 to this minus one is shown
    # as "<N>" on the page, its CSV and the API, so a small State's case cannot be singled
    # out; 0 or 1 turns suppression off.
    statistics_suppress_below: int = Field(default=5, ge=0, le=1000)
    relay_interval_seconds: float = Field(default=1.0, gt=0)
    relay_batch_size: int = Field(default=500, ge=1)
    # Delivery (broker/delivery): the relay claims due outbox rows and sends one deliver task
    # per batch of ids; message-level retries are scheduled in the outbox row.
    relay_max_per_run: int = Field(default=10_000, ge=1)
    delivery_batch_size: int = Field(default=250, ge=1, le=5_000)
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    delivery_backoff_seconds: float = Field(default=2.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=3_600.0, gt=0)
    delivery_concurrency: int = Field(default=16, ge=1, le=256)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    delivery_task_max_retries: int = Field(default=12, ge=0)
    # Destinations (adapters/destinations.py, docs/security.md): a webhook may reach
    # loopback, link-local, private, unspecified or multicast addresses only when this is
    # true (a gateway on the same machine or the same private network).
    webhook_allow_private: bool = False
    federation_max_age_seconds: int = Field(default=7 * 86_400, ge=60)
    # Batched federation (POST /v1/federation/batch, docs/api.md): the most envelopes one
    # signed request may carry, and its body limit (at least the single request's, so any
    # envelope the single endpoint takes fits a batch of one). The sending node groups its
    # due envelopes for one peer node within the same two bounds.
    federation_batch_max_envelopes: int = Field(default=100, ge=1, le=1000)
    federation_batch_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Peer directories (broker/federation): beat fetches each peer's signed directory every
    # federation_directory_interval_seconds; one issued longer ago than
    # federation_directory_max_age_seconds (or ahead of this clock by more than the clock
    # skew) is refused as stale.
    federation_directory_interval_seconds: float = Field(default=180.0, gt=0)
    federation_directory_max_age_seconds: int = Field(default=3600, ge=60)
    filedrop_import_dir: Path | None = None
    filedrop_import_interval_seconds: float = Field(default=30.0, gt=0)
    # Connections each API process keeps open, and how many more it may open under a burst.
    # Keep the pool at least as large as the requests a process usually has in flight:
    # connections beyond it are closed when they come back, and reopened per request.
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)

    # Audit log: the sequencer runs every checkpoint_interval_seconds (the checkpoint lag)
    # and sequences at most sequencer_batch_size leaves per checkpoint.
    checkpoint_interval_seconds: float = Field(default=1.0, gt=0)
    sequencer_batch_size: int = Field(default=5000, ge=1, le=20_000)
    audit_page_size: int = Field(default=1000, ge=1, le=10_000)
    # Witnesses (c2sp.org/tlog-witness): comma-separated URLs and, in the same order, their
    # cosignature verifier keys (<name>+<hex key id>+<base64>); a cosignature is kept only if
    # it verifies under the key configured for the witness that returned it.
    witness_urls: str = ""
    witness_keys: str = ""
    witness_timeout_seconds: float = Field(default=5.0, gt=0)

    # Cases (docs/workflows.md): a YAML file of reference clocks replacing the built-in ones
    # (EU EIO, Egmont), retention of ended cases before their content is crypto-shredded,
    # how often an urgent request awaiting written confirmation is escalated, the scheduler's
    # interval, the evidence file size limit and directory (default: <data_dir>/evidence),
    # and the most keyed filters one anonymous matching query may carry.
    case_clocks_file: Path | None = None
    # PALERMO_CASE_RETENTION_DAYS is the default retention of a case (and of its messages and
    # evidence), counted from its closure, refusal or withdrawal.
    case_retention_days: int = Field(default=1826, ge=1)
    urgent_confirmation_hours: float = Field(default=24.0, gt=0)
    case_tick_seconds: float = Field(default=60.0, gt=0)
    evidence_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    evidence_dir: Path | None = None
    fiu_match_max_filters: int = Field(default=1000, ge=1, le=100_000)

    # Retention (docs/retention.md, P17, LED art. 4(1)(e), 5): a message outside a case is
    # kept for the period of the policy decision's ``retention`` obligation, else for
    # PALERMO_RETENTION_MESSAGE_DAYS from its acceptance; PALERMO_RETENTION_ERASE_SECONDS is
    # how often the scheduler erases what is due.
    retention_message_days: int = Field(default=1826, ge=1)
    retention_erase_seconds: float = Field(default=3600.0, gt=0)
    # A reasoned review (P17) opens PALERMO_RETENTION_REVIEW_DAYS before a deadline (the
    # clocks remind a case's parties then); a supervisor of a holding participant may extend
    # the deadline once per review, by at most PALERMO_RETENTION_MAX_EXTENSION_DAYS.
    retention_review_days: int = Field(default=90, ge=1, le=3650)
    retention_max_extension_days: int = Field(default=1826, ge=1, le=36_500)
    # A ``follow_up`` obligation (P5 late notice, UNTOC art. 18(19); P20, art. 16(10)) opens a
    # tracked item due PALERMO_FOLLOW_UP_DAYS after it opens; the clocks remind when it falls
    # due (docs/api.md, "Approvals and follow-ups").
    follow_up_days: int = Field(default=7, ge=1, le=365)

    # Web app (docs/web.md): a signed-in session ends after web_session_idle_seconds without
    # a request, and web_session_lifetime_seconds after sign-in whatever happens.
    web_session_idle_seconds: int = Field(default=1800, ge=60, le=86_400)
    web_session_lifetime_seconds: int = Field(default=12 * 3600, ge=300, le=7 * 86_400)
    # Failed logins (API password and client credentials, web sign-in; docs/security.md),
    # counted per login and per client address: after the free failures each further try
    # waits auth_base_delay_seconds, doubled at each failure up to auth_max_delay_seconds;
    # at the lockout threshold the login (or address) is refused for auth_lockout_seconds,
    # whatever the password. Failures are forgotten auth_failure_memory_seconds after the last.
    auth_free_failures: int = Field(default=3, ge=0)
    auth_address_free_failures: int = Field(default=10, ge=0)
    auth_base_delay_seconds: float = Field(default=1.0, gt=0)
    auth_max_delay_seconds: float = Field(default=60.0, gt=0)
    auth_lockout_failures: int = Field(default=10, ge=1)
    auth_address_lockout_failures: int = Field(default=50, ge=1)
    auth_lockout_seconds: int = Field(default=900, ge=1, le=7 * 86_400)
    auth_failure_memory_seconds: int = Field(default=3600, ge=1, le=30 * 86_400)
    # Reverse proxies whose X-Forwarded-For the node believes (broker/core/clientaddr.py,
    # docs/security.md): addresses and CIDR networks, comma-separated. Empty (the default):
    # the client address is the peer's, whatever the header says.
    trusted_proxies: str = ""
    web_default_timezone: str = "UTC"

    # Metrics (docs/operations.md, "Metrics"): when metrics_token is set, GET /metrics needs
    # ``Authorization: Bearer <token>``; without it /metrics is open in development and
    # disabled (404) in production. The database figures are read at scrape time, within
    # metrics_db_timeout_seconds (beyond it the scrape answers without them).
    metrics_token: SecretStr | None = None
    metrics_db_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    log_level: str = "INFO"
    log_json: bool = True

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` in production, where the node is served over TLS."""
        return self.env == "production" or self.public_url.startswith("https://")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'palermo.db').resolve()}"

    @property
    def resolved_migration_url(self) -> str:
        if self.migration_database_url is not None:
            return self.migration_database_url.get_secret_value()
        return self.resolved_database_url

    @property
    def resolved_broker_url(self) -> str:
        if self.celery_broker_url:
            return self.celery_broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'celery-broker.db').resolve()}"

    @property
    def resolved_result_backend(self) -> str:
        if self.celery_result_backend:
            return self.celery_result_backend
        if self.celery_broker_url.startswith(("redis://", "rediss://")):
            return self.celery_broker_url
        return f"db+sqlite:///{(self.data_dir / 'celery-results.db').resolve()}"

    @property
    def resolved_issuer(self) -> str:
        return self.token_issuer or self.public_url

    @property
    def resolved_request_max_bytes(self) -> int:
        """The body limit of every request but evidence uploads: by default room for an
        envelope whose payload is ``max_payload_bytes``, in base64, with its JSON around it."""
        if self.request_max_bytes is not None:
            return self.request_max_bytes
        return self.max_payload_bytes * 4 // 3 + 65_536

    @property
    def resolved_federation_batch_max_bytes(self) -> int:
        """The body limit of a federation batch: never below the single request's."""
        return max(self.federation_batch_max_bytes, self.resolved_request_max_bytes)

    @model_validator(mode="after")
    def _trusted_proxies_parse(self) -> Self:
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"PALERMO_TRUSTED_PROXIES: {exc}") from exc
        return self

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        """The parsed PALERMO_TRUSTED_PROXIES (checked when the settings are read)."""
        return parse_networks(self.trusted_proxies)

    @property
    def witnesses(self) -> list[tuple[str, str]]:
        """(URL, cosignature verifier key) of each configured witness.

        Raises ConfigurationError when the two lists differ in length.
        """
        urls = [u.strip() for u in self.witness_urls.split(",") if u.strip()]
        keys = [k.strip() for k in self.witness_keys.split(",") if k.strip()]
        if len(urls) != len(keys):
            raise ConfigurationError(
                f"PALERMO_WITNESS_URLS lists {len(urls)} witnesses and PALERMO_WITNESS_KEYS "
                f"{len(keys)} keys: give one verifier key per witness URL, in the same order"
            )
        return list(zip(urls, keys, strict=True))

    def _secret_bytes(self, name: str, length: int | None) -> bytes:
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            raw = value.get_secret_value().strip()
        else:
            path = self.data_dir / _SECRET_FILES[name]
            if not path.exists():
                raise ConfigurationError(
                    f"no {name}: set PALERMO_{name.upper()} or run `palermo init` to create {path}"
                )
            raw = path.read_text().strip()
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError(f"{name} is not valid base64") from exc
        if length is not None and len(decoded) != length:
            raise ConfigurationError(f"{name} must decode to {length} bytes, not {len(decoded)}")
        if length is None and len(decoded) < 32:
            raise ConfigurationError(f"{name} must decode to at least 32 bytes")
        return decoded

    @cached_property
    def master_key_bytes(self) -> bytes:
        return self._secret_bytes("master_key", 32)

    @cached_property
    def node_signing_seed(self) -> bytes:
        return self._secret_bytes("node_signing_key", 32)

    @cached_property
    def token_secret_bytes(self) -> bytes:
        return self._secret_bytes("token_secret", None)

    @property
    def is_development_node(self) -> bool:
        return (self.data_dir / DEV_MARKER).exists()

    def check_startup(self) -> None:
        """Refuse to start on a configuration that is unsafe for the chosen environment.

        Raises ConfigurationError.
        """
        self.master_key_bytes  # noqa: B018 - each access validates one secret
        self.node_signing_seed  # noqa: B018
        self.token_secret_bytes  # noqa: B018
        if self.env == "production":
            if self.is_development_node:
                raise ConfigurationError(
                    f"{self.data_dir} holds a development node (demo users, development "
                    "secrets); production refuses to start on it"
                )
            if self.resolved_database_url.startswith("sqlite") and not os.environ.get(
                "PALERMO_ALLOW_SQLITE_IN_PRODUCTION"
            ):
                raise ConfigurationError("production needs PostgreSQL (PALERMO_DATABASE_URL)")
            self._check_production()

    def check_database_role(self, process: str) -> None:
        """In production on PostgreSQL, refuse a connection role that is a superuser, owns the
        tables, may create tables or roles: the api, worker and beat need none of that, and
        an audit log its writer may alter proves nothing. Checked with one query.

        Raises ConfigurationError (also when the database cannot be reached to check).
        """
        from broker.core import dbroles

        url = self.resolved_database_url
        if self.env != "production" or not dbroles.is_postgresql(url):
            return
        try:
            dbroles.refuse_privileged_role(url, process=process)
        except dbroles.PrivilegedRoleError as exc:
            raise ConfigurationError(str(exc)) from exc
        except Exception as exc:
            raise ConfigurationError(
                f"{process} cannot check the database role it connects as "
                f"({type(exc).__name__}: {exc}); production does not start unchecked"
            ) from exc

    def _check_production(self) -> None:
        """What production asks beyond a real database: TLS in front of the API, a real
        message broker, three distinct secrets, and secret files only the node can read."""
        if not self.public_url.startswith("https://"):
            raise ConfigurationError(
                f"PALERMO_PUBLIC_URL is {self.public_url}: production serves clients over "
                "TLS, so it must be an https:// URL (the API itself may listen behind a "
                "TLS-terminating proxy)"
            )
        if not self.celery_broker_url.startswith(("amqp://", "amqps://", "redis://", "rediss://")):
            raise ConfigurationError(
                "production needs a message broker: set PALERMO_CELERY_BROKER_URL to an "
                "amqp:// (RabbitMQ) or redis:// URL; the file-backed development transport "
                "is for one machine"
            )
        secrets_ = [self.master_key_bytes, self.node_signing_seed, self.token_secret_bytes]
        if len(set(secrets_)) != len(secrets_):
            raise ConfigurationError(
                "PALERMO_MASTER_KEY, PALERMO_NODE_SIGNING_KEY and PALERMO_TOKEN_SECRET must be "
                "three different secrets: one leaked must not give away another"
            )
        for name, filename in _SECRET_FILES.items():
            path = self.data_dir / filename
            if getattr(self, name) is None and path.stat().st_mode & 0o077:
                raise ConfigurationError(
                    f"{path} can be read by other users (mode {path.stat().st_mode & 0o777:o}): "
                    f"chmod 600 {path}"
                )


def make_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` (or make it again) 0700, whatever the umask: it holds the node's
    secrets and the SQLite databases. Parents it has to make are 0700 too."""
    missing = [p for p in (data_dir, *data_dir.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is masked by the umask
    data_dir.chmod(0o700)


def write_secret_files(data_dir: Path, settings: Settings | None = None) -> list[Path]:
    """Create any missing secret file in ``data_dir`` (mode 0600), except for secrets the
    environment already provides; return the files created. The directory is made (or
    made again) 0700 (``make_data_dir``)."""
    make_data_dir(data_dir)
    created = []
    for name, filename in _SECRET_FILES.items():
        path = data_dir / filename
        if path.exists() or (settings is not None and getattr(settings, name) is not None):
            continue
        size = 48 if name == "token_secret" else 32
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(size)).decode() + "\n")
        created.append(path)
    return created


def get_settings() -> Settings:
    return Settings()
