"""Fixtures for the core tests: switching settings, JWT key pairs, the app over TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from core.settings import Settings, get_settings
from tests.factories import KeyPair, UseEnv, write_key_pair
from tests.web import app_client


@pytest.fixture
def use_env() -> Iterator[UseEnv]:
    """Set (or, with None, unset) KODOMO_* variables and reload the settings; undone afterwards."""
    with pytest.MonkeyPatch.context() as patch:

        def apply(**env: str | None) -> Settings:
            for name, value in env.items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, value)
            get_settings.cache_clear()
            return get_settings()

        try:
            yield apply
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return write_key_pair(tmp_path_factory.mktemp("rsa"), "RS256", key)


@pytest.fixture(scope="session")
def ec_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    return write_key_pair(tmp_path_factory.mktemp("ec"), "ES256", key)


@pytest.fixture
def rs256(use_env: UseEnv, rsa_keys: KeyPair) -> Settings:
    """The service configured for RS256 with a generated key pair."""
    return use_env(**rsa_keys.env())


@pytest.fixture
def https_client(connection: Connection) -> Iterator[TestClient]:
    """The whole app as seen over TLS (https://testserver)."""
    with app_client(connection, base_url="https://testserver") as test_client:
        yield test_client
