"""Password hashes: production hashes with argon2-cffi's default argon2id strength and refuses
the cheap parameters the test suite uses, wherever they come from."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from pydantic import ValidationError

from broker.core import crypto
from broker.core.settings import ConfigurationError, PasswordHashSettings, Settings


@pytest.fixture
def restore_hashing() -> Iterator[None]:
    before = list(crypto._configured)
    yield
    crypto._configured[:] = before
    crypto._hashing.cache_clear()


def test_strong_is_argon2_cffis_default_and_at_least_rfc_9106() -> None:
    strong = extract_parameters(crypto.PASSWORD_HASHERS["strong"].hash("x"))
    default = extract_parameters(PasswordHasher().hash("x"))
    assert strong == default
    assert strong.type.name == "ID"
    assert strong.time_cost >= RFC_9106_LOW_MEMORY.time_cost
    assert strong.memory_cost >= RFC_9106_LOW_MEMORY.memory_cost  # 64 MiB
    assert strong.parallelism >= RFC_9106_LOW_MEMORY.parallelism


def test_production_and_the_default_hash_strong(restore_hashing: None) -> None:
    assert PasswordHashSettings(env="production").password_hash == "strong"
    crypto.configure_password_hashing(PasswordHashSettings(env="production"))
    made = extract_parameters(crypto.hash_password("a long enough password"))
    assert (made.time_cost, made.memory_cost, made.parallelism) == (
        RFC_9106_LOW_MEMORY.time_cost,
        RFC_9106_LOW_MEMORY.memory_cost,
        RFC_9106_LOW_MEMORY.parallelism,
    )


def test_fast_is_honoured_outside_production(restore_hashing: None) -> None:
    crypto.configure_password_hashing(PasswordHashSettings(env="test", password_hash="fast"))
    h = crypto.hash_password("a long enough password")
    assert extract_parameters(h).memory_cost == 8
    assert crypto.check_password(h, "a long enough password")
    assert not crypto.check_password(h, "another password")
    # A hash keeps its own parameters: one made strong still verifies under fast.
    strong = crypto.PASSWORD_HASHERS["strong"].hash("a long enough password")
    assert crypto.check_password(strong, "a long enough password")


def test_production_settings_refuse_fast_hashes(restore_hashing: None) -> None:
    with pytest.raises(ValidationError, match="PALERMO_PASSWORD_HASH=fast is for tests"):
        PasswordHashSettings(env="production", password_hash="fast")
    with pytest.raises(ValidationError, match="PALERMO_PASSWORD_HASH=fast is for tests"):
        Settings(env="production", password_hash="fast")
    # Settings that skipped validation do not get through either.
    unchecked = PasswordHashSettings.model_construct(env="production", password_hash="fast")
    with pytest.raises(ConfigurationError):
        crypto.configure_password_hashing(unchecked)


def test_a_production_process_with_fast_in_its_environment_hashes_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")}
    code = "from broker.core import crypto; print(crypto.hash_password('a long password'))"
    refused = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PALERMO_ENV": "production", "PALERMO_PASSWORD_HASH": "fast"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "PALERMO_PASSWORD_HASH=fast is for tests" in refused.stderr
    made = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PALERMO_ENV": "production"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert extract_parameters(made.stdout.strip()).memory_cost == RFC_9106_LOW_MEMORY.memory_cost
