"""Service settings from KODOMO_* environment variables and .env, checked before start-up."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that ship in examples and must never protect a real deployment.
KNOWN_DEFAULT_SECRETS = frozenset({"", "changeme", "change-me", "secret", "demo", "kodomo"})
MIN_SECRET_LENGTH = 32


class SettingsError(RuntimeError):
    """A setting is missing or wrong; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KODOMO_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    demo: bool = Field(False, description="Demo mode: the service makes its own secret and keys.")
    data_dir: Path = Field(Path("var"), description="Where the SQLite file and demo keys live.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite file.")

    secret_key: SecretStr | None = Field(None, description="HS256 signing and CSRF secret.")
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "kodomo"
    access_token_minutes: int = Field(15, ge=1, le=120)
    resident_token_minutes: int = Field(30, ge=1, le=240)

    key_file: Path | None = Field(None, description="Keyring JSON, kept outside the repository.")
    # The deployment's policies ([package] tables of TOML, docs/policies.md); the environment's
    # KODOMO_<PACKAGE>_<KEY> variables win over it.
    policy_file: Path | None = None

    # Failed sign-ins before a block (login_lock_minutes): per address and login string, per
    # login string from any address, per address over any login strings.
    login_max_failures: int = Field(5, ge=1)
    login_max_failures_per_login: int = Field(20, ge=1)
    login_max_failures_per_address: int = Field(50, ge=1)
    login_lock_minutes: int = Field(15, ge=1)
    cookie_secure: bool | None = Field(
        None, description="Force the Secure cookie flag; by default set when the request is TLS."
    )

    max_request_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    # Imports (people extracts, the register, governance bundles): the largest field (a CSV
    # cell, a YAML scalar) and the largest line (a CSV record, a YAML line), in UTF-8 bytes.
    import_max_field_bytes: int = Field(64 * 1024, ge=1024)
    import_max_line_bytes: int = Field(1024 * 1024, ge=1024)
    # PostgreSQL: how long a statement may wait for a lock (the audit chain's advisory lock, a
    # row) and run at all before it fails; 0 turns a limit off (e.g. a worker's long jobs).
    db_lock_timeout_ms: int = Field(5_000, ge=0)
    db_statement_timeout_ms: int = Field(30_000, ge=0)
    # The connection pool of each process (both backends): connections kept, extra ones allowed
    # under load, and how long a request waits for one before it is answered 503.
    db_pool_size: int = Field(10, ge=1)
    db_pool_overflow: int = Field(30, ge=0)
    db_pool_timeout_seconds: float = Field(1.0, ge=0)

    audit_checkpoint_every: int = Field(1000, ge=1)
    # The scheduler signs a checkpoint when the newest one is older than this (core.audit.
    # checkpoint_if_due); the hook exists, the scheduler calls it once it exists.
    audit_checkpoint_minutes: int = Field(60, ge=1)
    # Where signed checkpoints are also written: see core/witness.py (default: a file under
    # the data directory; file:PATH on shared storage; syslog://HOST:PORT).
    audit_witness: str | None = None
    timezone: str = "Asia/Tokyo"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "kodomo.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def effective_key_file(self) -> Path:
        if self.key_file is not None:
            return self.key_file
        if self.demo:
            return self.data_dir / "keys.json"
        raise SettingsError("KODOMO_KEY_FILE", "not set; production keys live outside the database")

    def signing_secret(self) -> str:
        """The HS256/CSRF secret; in demo mode one is made and kept in the data directory."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if not self.demo:
            raise SettingsError("KODOMO_SECRET_KEY", "not set")
        path = self.data_dir / "demo-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()


def check_settings(settings: Settings, *, need_keyring: bool = True) -> None:
    """Refuse to start outside demo mode with a default or missing secret, naming the variable."""
    if settings.demo:
        return
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    if settings.jwt_algorithm == "HS256":
        if secret is None:
            raise SettingsError("KODOMO_SECRET_KEY", "not set (required outside demo mode)")
        if secret.strip().lower() in KNOWN_DEFAULT_SECRETS:
            raise SettingsError("KODOMO_SECRET_KEY", "is a known default value; set a random one")
        if len(secret) < MIN_SECRET_LENGTH:
            raise SettingsError(
                "KODOMO_SECRET_KEY", f"is shorter than {MIN_SECRET_LENGTH} characters"
            )
    else:
        for variable, path in (
            ("KODOMO_JWT_PRIVATE_KEY_FILE", settings.jwt_private_key_file),
            ("KODOMO_JWT_PUBLIC_KEY_FILE", settings.jwt_public_key_file),
        ):
            if path is None:
                raise SettingsError(variable, f"not set (required for {settings.jwt_algorithm})")
            if not path.is_file():
                raise SettingsError(variable, f"file {path} does not exist")
        if secret is None or len(secret) < MIN_SECRET_LENGTH:
            raise SettingsError("KODOMO_SECRET_KEY", "needed for CSRF tokens; 32+ characters")
    if settings.key_file is None:
        raise SettingsError("KODOMO_KEY_FILE", "not set (required outside demo mode)")
    if need_keyring and not settings.key_file.is_file():
        raise SettingsError("KODOMO_KEY_FILE", f"file {settings.key_file} does not exist")


@lru_cache
def get_settings() -> Settings:
    return Settings()
