"""Staff sign-in, password hashing, and JWT access tokens (the only module that imports jose)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from jose import JWTError, jwt
from sqlmodel import Session, col, select

from core import audit, messages, throttle
from core.clock import utcnow
from core.models import Role, RoleGrant, StaffAccount
from core.reasons import NotAuthenticated, Reason
from core.settings import Settings, get_settings

Audience = Literal["kodomo-staff", "kodomo-resident"]
STAFF_AUDIENCE: Audience = "kodomo-staff"
RESIDENT_AUDIENCE: Audience = "kodomo-resident"
# Clock skew tolerated between the issuing and the checking process.
LEEWAY_SECONDS = 30

messages.register(
    {
        "auth.invalid_credentials": (
            "ログインIDまたはパスワードが正しくありません。",
            "The login ID or password is not correct.",
        ),
        "auth.not_signed_in": (
            "サインインしてください。",
            "Please sign in.",
        ),
        "auth.token_invalid": (
            "認証情報が無効です。もう一度サインインしてください。",
            "Your credentials are not valid. Please sign in again.",
        ),
        "auth.token_revoked": (
            "この認証情報は失効しています。もう一度サインインしてください。",
            "These credentials have been revoked. Please sign in again.",
        ),
        "auth.role_required": (
            "この操作には次のいずれかの役割が必要です: {roles}",
            "This needs one of these roles: {roles}",
        ),
        "auth.token_other_login": (
            "トークンは「{token_login}」のものです（指定されたのは「{login}」）。",
            "The token belongs to {token_login!r}, not {login!r}.",
        ),
        "auth.csrf_failed": (
            "フォームの有効期限が切れました。ページを再読み込みしてもう一度送信してください。",
            "The form has expired. Reload the page and submit it again.",
        ),
    }
)

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def warm_up() -> None:
    """Make the dummy hash at start-up, so the first unknown login costs no more than others."""
    _dummy_hash()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so both paths cost one argon2 check.
    return _hasher.hash(secrets.token_urlsafe(24))


def _password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Grant:
    role: Role
    organ_id: int
    department_id: int | None = None


@dataclass(frozen=True)
class Principal:
    """A signed-in staff member with their active role grants."""

    account_id: int
    login: str
    display_name: str
    token_version: int
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    def has_role(self, *roles: Role) -> bool:
        return any(g.role in roles for g in self.grants)

    def organs_for(self, role: Role) -> frozenset[int]:
        return frozenset(g.organ_id for g in self.grants if g.role == role)

    def actor(self, role: Role | None = None) -> audit.Actor:
        """The audit actor; with a role, the organ of the first grant of that role."""
        grant = next((g for g in self.grants if role is None or g.role == role), None)
        return audit.Actor(
            "staff",
            self.account_id,
            (grant.role.value if grant else None),
            (grant.organ_id if grant else None),
        )


@dataclass(frozen=True)
class ResidentPrincipal:
    """A resident signed in to the public portal (issued by the portal's own sign-in)."""

    subject: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    jti: str


class TokenCodec:
    """Issues and checks JWTs with one explicit algorithm; nothing else is ever accepted."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        if self.algorithm == "HS256":
            secret = settings.signing_secret()
            self._signing_key: str = secret
            self._verifying_key: str = secret
        else:
            if settings.jwt_private_key_file is None or settings.jwt_public_key_file is None:
                raise ValueError(
                    "RS256/ES256 need KODOMO_JWT_PRIVATE_KEY_FILE and _PUBLIC_KEY_FILE"
                )
            self._signing_key = settings.jwt_private_key_file.read_text(encoding="utf-8")
            self._verifying_key = settings.jwt_public_key_file.read_text(encoding="utf-8")

    def issue(
        self, subject: str, audience: Audience, lifetime: timedelta, extra: dict[str, Any]
    ) -> IssuedToken:
        now = utcnow()
        jti = secrets.token_urlsafe(16)
        expires = now + lifetime
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": jti,
            **extra,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        return IssuedToken(token, expires, jti)

    def decode(self, token: str, audience: Audience) -> dict[str, Any]:
        """The verified claims, or NotAuthenticated for anything wrong with the token."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != self.algorithm:
                raise JWTError("unexpected algorithm")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                audience=audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_iss": True,
                    "require_aud": True,
                    "require_sub": True,
                    "leeway": LEEWAY_SECONDS,
                },
            )
        except (JWTError, ValueError, TypeError, KeyError) as error:
            raise NotAuthenticated(Reason.of("auth.token_invalid")) from error
        if int(claims["iat"]) > time.time() + LEEWAY_SECONDS:
            raise NotAuthenticated(Reason.of("auth.token_invalid"))
        return claims


# The settings object the codec was built from is kept alive with it: keyed by id() alone, a new
# Settings could reuse a collected one's id and be handed the old keys and algorithm.
_codec_cache: list[tuple[Settings, TokenCodec]] = []


def codec() -> TokenCodec:
    """The codec for the current settings (tests swap settings, so cache per settings object)."""
    settings = get_settings()
    if _codec_cache and _codec_cache[0][0] is settings:
        return _codec_cache[0][1]
    found = TokenCodec(settings)
    _codec_cache[:] = [(settings, found)]
    return found


def _invalid() -> NotAuthenticated:
    return NotAuthenticated(Reason.of("auth.invalid_credentials"))


def authenticate(
    session: Session, login: str, password: str, address: str = "local"
) -> StaffAccount:
    """Check a password; a wrong password, unknown login and locked account look the same.

    Sign-in is throttled per address, per login string and per both (core.throttle) whether or
    not the account exists; a throttled attempt is refused (429) before any password check.
    Failures are counted and written to the audit chain in the caller's transaction, so the
    caller must commit even when this raises.
    """
    throttle.check(session, login, address)
    account = session.exec(select(StaffAccount).where(StaffAccount.login == login)).first()
    if account is None:
        _password_matches(_dummy_hash(), password)
        throttle.failed(session, login, address)
        audit.append(session, "core.sign_in_failed", details={"reason": "unknown_login"})
        raise _invalid()
    matches = _password_matches(account.password_hash, password)
    now = utcnow()
    # locked_until is set by hand (an administrator's lock); failures no longer lock accounts,
    # which let anyone lock anyone out: the throttle counts them instead.
    locked = account.locked_until is not None and account.locked_until > now
    if matches and account.is_active and not locked:
        throttle.succeeded(session, login, address)
        session.add(account)
        audit.append(
            session,
            "core.signed_in",
            actor=audit.Actor("staff", account.id),
            target_type="staff_account",
            target_id=account.id,
        )
        return account
    reason = "inactive" if not account.is_active else "locked" if locked else "wrong_password"
    throttle.failed(session, login, address)
    audit.append(
        session,
        "core.sign_in_failed",
        target_type="staff_account",
        target_id=account.id,
        details={"reason": reason},
    )
    raise _invalid()


def active_grants(session: Session, account_id: int) -> tuple[Grant, ...]:
    rows = session.exec(
        select(RoleGrant)
        .where(RoleGrant.account_id == account_id, col(RoleGrant.revoked_at).is_(None))
        .order_by(col(RoleGrant.id))
    ).all()
    return tuple(Grant(Role(r.role), r.organ_id, r.department_id) for r in rows)


def principal_for(session: Session, account: StaffAccount) -> Principal:
    assert account.id is not None
    return Principal(
        account.id,
        account.login,
        account.display_name,
        account.token_version,
        active_grants(session, account.id),
    )


def issue_staff_token(account: StaffAccount) -> IssuedToken:
    settings = get_settings()
    return codec().issue(
        f"staff:{account.id}",
        STAFF_AUDIENCE,
        timedelta(minutes=settings.access_token_minutes),
        {"ver": account.token_version},
    )


def issue_resident_token(subject: str) -> IssuedToken:
    settings = get_settings()
    return codec().issue(
        f"resident:{subject}",
        RESIDENT_AUDIENCE,
        timedelta(minutes=settings.resident_token_minutes),
        {},
    )


def staff_principal_from_token(session: Session, token: str) -> Principal:
    """Verify a staff token and load the account; revoked or stale tokens are refused."""
    claims = codec().decode(token, STAFF_AUDIENCE)
    subject = str(claims.get("sub", ""))
    if not subject.startswith("staff:") or not subject[6:].isdigit():
        raise NotAuthenticated(Reason.of("auth.token_invalid"))
    account = session.get(StaffAccount, int(subject[6:]))
    if account is None or not account.is_active:
        raise NotAuthenticated(Reason.of("auth.token_revoked"))
    if claims.get("ver") != account.token_version:
        raise NotAuthenticated(Reason.of("auth.token_revoked"))
    return principal_for(session, account)


def resident_from_token(token: str) -> ResidentPrincipal:
    claims = codec().decode(token, RESIDENT_AUDIENCE)
    subject = str(claims.get("sub", ""))
    if not subject.startswith("resident:"):
        raise NotAuthenticated(Reason.of("auth.token_invalid"))
    return ResidentPrincipal(subject[9:])


def revoke_tokens(session: Session, account: StaffAccount) -> None:
    """Every token issued before now stops working (sign-out, password or role change)."""
    account.token_version += 1
    session.add(account)


def sign_out(session: Session, principal: Principal) -> None:
    account = session.get(StaffAccount, principal.account_id)
    if account is None:
        return
    revoke_tokens(session, account)
    audit.append(
        session,
        "core.signed_out",
        actor=principal.actor(),
        target_type="staff_account",
        target_id=account.id,
    )


# ---------------------------------------------------------------- signed documents (JWS, ES256)
# Generic helpers for documents the service signs with the keyring's receipt key (for example
# consent receipts): compact JWS with ES256 only, and the public key as a JWKS.

JWS_ALGORITHM = "ES256"


class InvalidSignature(ValueError):
    """A signed document that does not verify (altered, wrong key, wrong algorithm, malformed)."""


def _receipt_keys() -> tuple[str, str, dict[str, str]]:
    """The active receipt key id and private PEM, and every verification key (PEM) by id:
    the active one and the retired ones, so a receipt signed before a rotation still verifies."""
    from core.keys import get_keyring

    ring = get_keyring()
    return ring.receipt_signing_kid, ring.receipt_signing_pem, ring.receipt_public_pems()


def sign_jws(payload: dict[str, Any]) -> str:
    """A compact JWS (ES256) of `payload` as canonical JSON, with the signing key's id."""
    import json

    from jose import jws

    kid, private_pem, _public = _receipt_keys()
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    token: str = jws.sign(
        body.encode("utf-8"), private_pem, headers={"kid": kid, "typ": "JWT"},
        algorithm=JWS_ALGORITHM,
    )
    return token


def _canonical_segment(segment: str) -> bool:
    """True when base64url text has no padding and no stray bits, so one encoding per value."""
    import base64

    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, TypeError):
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == segment


def verify_jws(token: str) -> dict[str, Any]:
    """The payload of a JWS signed by `sign_jws`; InvalidSignature for anything else.

    Only ES256 with one of the service's receipt keys (the active one or a retired one, named
    by the header's kid) is accepted, and each segment must be the
    canonical base64url of its bytes, so that changing any single character fails.
    """
    import json

    from jose import jws
    from jose.exceptions import JOSEError

    _kid, _private, public_pems = _receipt_keys()
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not all(parts) or not all(_canonical_segment(p) for p in parts):
        raise InvalidSignature("malformed JWS")
    try:
        header = jws.get_unverified_header(token)
        kid = header.get("kid")
        public_pem = public_pems.get(kid) if isinstance(kid, str) else None
        if header.get("alg") != JWS_ALGORITHM or public_pem is None:
            raise InvalidSignature("unexpected algorithm or key id")
        body = jws.verify(token, public_pem, algorithms=[JWS_ALGORITHM])
        payload = json.loads(body)
    except (JOSEError, ValueError, TypeError, KeyError) as error:
        raise InvalidSignature("the signature does not verify") from error
    if not isinstance(payload, dict):
        raise InvalidSignature("the payload is not a JSON object")
    return payload


def receipt_jwks() -> dict[str, Any]:
    """The receipt-signing public keys as a JSON Web Key Set (for /.well-known/jwks.json):
    the active key first, then the retired ones, which still verify older receipts."""
    from jose import jwk

    active, _private, public_pems = _receipt_keys()
    keys = []
    for kid in [active, *sorted(k for k in public_pems if k != active)]:
        key = jwk.construct(public_pems[kid], JWS_ALGORITHM).to_dict()
        public = {name: key[name] for name in ("kty", "crv", "x", "y")}
        keys.append({**public, "kid": kid, "use": "sig", "alg": JWS_ALGORITHM})
    return {"keys": keys}
