"""Fixtures for the core tests: switching settings, JWT key pairs, console sign-in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from core import demo as core_demo
from core.settings import Settings, get_settings
from main import create_app
from tests.conftest import session_on

UseEnv = Callable[..., Settings]


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


@dataclass(frozen=True)
class KeyPair:
    algorithm: str
    private_pem: bytes
    public_pem: bytes
    private_file: Path
    public_file: Path

    def env(self) -> dict[str, str | None]:
        return {
            "KODOMO_JWT_ALGORITHM": self.algorithm,
            "KODOMO_JWT_PRIVATE_KEY_FILE": str(self.private_file),
            "KODOMO_JWT_PUBLIC_KEY_FILE": str(self.public_file),
        }


def write_key_pair(
    directory: Path, algorithm: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> KeyPair:
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_file = directory / f"jwt-{algorithm.lower()}-private.pem"
    public_file = directory / f"jwt-{algorithm.lower()}-public.pem"
    private_file.write_bytes(private_pem)
    public_file.write_bytes(public_pem)
    return KeyPair(algorithm, private_pem, public_pem, private_file, public_file)


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
    app = create_app("all", session_factory=lambda: session_on(connection))
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(page: str) -> str:
    found = _CSRF_INPUT.search(page)
    assert found is not None, "no csrf_token field on the page"
    return found.group(1)


def console_sign_in(
    client: TestClient, login: str, password: str | None = None, next: str | None = None
) -> httpx.Response:
    """Sign in through the form as a browser would: read the page's CSRF token, post it back."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    data = {
        "csrf_token": csrf_from(page.text),
        "login": login,
        "password": password if password is not None else core_demo.demo_password(),
    }
    if next is not None:
        data["next"] = next
    return client.post("/login", data=data, follow_redirects=False)


def set_cookie_header(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def cookie_attributes(header: str) -> dict[str, str]:
    """The attributes of one Set-Cookie header, names lower-cased (the value pair left out)."""
    attributes: dict[str, str] = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value
    return attributes
