"""Staff sign-in and JWT access tokens: what is refused, lockout, equal failure paths, no leaks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import extract_parameters
from argon2.exceptions import VerifyMismatchError
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy.engine import Connection
from sqlmodel import select

from core import audit, auth, service
from core import demo as core_demo
from core.clock import utcnow
from core.models import Role, SignInThrottle
from core.reasons import NotAuthenticated
from core.settings import Settings, get_settings
from tests.databases import session_on
from tests.factories import KeyPair, UseEnv
from tests.web import api_sign_in, api_token, bearer, console_sign_in

WRONG_PASSWORD = "not-the-password-Zq81"

# ---------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def hmac_sha256(key: bytes, signing_input: str) -> str:
    return b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def forge(
    claims: dict[str, Any], header: dict[str, Any] | None = None, key: bytes | None = None
) -> str:
    """A token signed by hand with HMAC-SHA256; by default with the service's own secret."""
    head = b64json(header or {"alg": "HS256", "typ": "JWT"})
    body = b64json(claims)
    secret = key if key is not None else get_settings().signing_secret().encode()
    return f"{head}.{body}.{hmac_sha256(secret, f'{head}.{body}')}"


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_claims(token))


def me(client: TestClient, token: str) -> httpx.Response:
    return client.get("/api/me", headers=bearer(token))


def assert_accepted(client: TestClient, token: str, login: str) -> None:
    response = me(client, token)
    assert response.status_code == 200, response.text
    assert response.json()["login"] == login


def assert_refused(
    client: TestClient, connection: Connection, token: str, code: str = "auth.token_invalid"
) -> None:
    """Refused on the API (401 with the code) and by core.auth itself (NotAuthenticated)."""
    response = me(client, token)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"
    with session_on(connection) as session, pytest.raises(NotAuthenticated) as caught:
        auth.staff_principal_from_token(session, token)
    assert caught.value.code == code


def assert_same_reply(first: httpx.Response, second: httpx.Response) -> None:
    assert first.status_code == second.status_code == 401
    assert first.content == second.content
    for header in ("content-type", "www-authenticate", "set-cookie"):
        assert first.headers.get(header) == second.headers.get(header)


@pytest.fixture
def analyst(client: TestClient) -> str:
    return api_token(client, "analyst")


# ---------------------------------------------------------------- valid tokens (the control)


def test_a_token_the_service_issued_is_accepted(client: TestClient, analyst: str) -> None:
    assert_accepted(client, analyst, "analyst")
    header = jwt.get_unverified_header(analyst)
    assert header["alg"] == "HS256"
    claims = claims_of(analyst)
    assert claims["aud"] == auth.STAFF_AUDIENCE
    assert claims["iss"] == get_settings().jwt_issuer
    assert claims["sub"].startswith("staff:")
    lifetime = claims["exp"] - claims["iat"]
    assert lifetime == get_settings().access_token_minutes * 60 <= 2 * 60 * 60


def test_a_hand_signed_copy_is_accepted(client: TestClient, analyst: str) -> None:
    """The forging helper is right: unchanged claims re-signed with the secret pass."""
    assert_accepted(client, forge(claims_of(analyst)), "analyst")


# ---------------------------------------------------------------- algorithm attacks


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(
    client: TestClient, connection: Connection, analyst: str, alg: str
) -> None:
    head = b64json({"alg": alg, "typ": "JWT"})
    body = b64json(claims_of(analyst))
    assert_refused(client, connection, f"{head}.{body}.")


def test_rs256_service_works(client: TestClient, rs256: Settings) -> None:
    token = api_token(client, "analyst")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert_accepted(client, token, "analyst")


def test_hs256_signed_with_the_rsa_public_key_is_refused(
    client: TestClient, connection: Connection, rs256: Settings, rsa_keys: KeyPair
) -> None:
    """HS/RS confusion: the public key PEM used as an HMAC secret must not verify."""
    claims = claims_of(api_token(client, "analyst"))
    header = {"alg": "HS256", "typ": "JWT"}
    for secret in (rsa_keys.public_pem, rsa_keys.public_pem.strip()):
        assert_refused(client, connection, forge(claims, header, key=secret))


def test_rs256_token_is_refused_by_an_hs256_service(
    client: TestClient, connection: Connection, analyst: str, rsa_keys: KeyPair
) -> None:
    assert get_settings().jwt_algorithm == "HS256"
    token = jwt.encode(claims_of(analyst), rsa_keys.private_pem.decode(), algorithm="RS256")
    assert_refused(client, connection, token)


def test_es256_works_end_to_end(
    client: TestClient, connection: Connection, use_env: UseEnv, ec_keys: KeyPair
) -> None:
    old_hs256 = api_token(client, "auditor")
    use_env(**ec_keys.env())
    token = api_token(client, "auditor")
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert_accepted(client, token, "auditor")
    assert client.get("/api/audit/events", headers=bearer(token)).status_code == 200
    # A token signed under the previous configuration no longer counts.
    assert_refused(client, connection, old_hs256)
    # The console signs in with the same codec.
    assert console_sign_in(client, "auditor").status_code == 303
    assert client.get("/audit").status_code == 200
    client.cookies.clear()


def test_rs256_and_es256_keys_are_not_interchangeable(
    client: TestClient, connection: Connection, use_env: UseEnv, ec_keys: KeyPair,
    rsa_keys: KeyPair
) -> None:
    use_env(**ec_keys.env())
    claims = claims_of(api_token(client, "analyst"))
    assert_refused(client, connection,
                   jwt.encode(claims, rsa_keys.private_pem.decode(), algorithm="RS256"))


# ---------------------------------------------------------------- signature and claims


def test_stripped_signature_is_refused(
    client: TestClient, connection: Connection, analyst: str
) -> None:
    head, body, _signature = analyst.split(".")
    assert_refused(client, connection, f"{head}.{body}.")
    assert_refused(client, connection, f"{head}.{body}")


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "staff:1"},
        {"sub": "staff:999999"},
        {"ver": 999},
        {"exp": 4102444800},
        {"aud": auth.RESIDENT_AUDIENCE},
    ],
    ids=["sub", "sub-unknown", "ver", "exp", "aud"],
)
def test_tampered_payload_with_the_old_signature_is_refused(
    client: TestClient, connection: Connection, analyst: str, change: dict[str, Any]
) -> None:
    head, _body, signature = analyst.split(".")
    claims = claims_of(analyst)
    claims.update(change)
    assert claims != claims_of(analyst)
    assert_refused(client, connection, f"{head}.{b64json(claims)}.{signature}")


def now() -> int:
    return int(time.time())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: {"exp": now() - 120}, id="expired"),
        pytest.param(lambda: {"nbf": now() + 600}, id="nbf-in-future"),
        pytest.param(lambda: {"iat": now() + 600}, id="iat-in-future"),
        pytest.param(lambda: {"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param(lambda: {"aud": auth.RESIDENT_AUDIENCE}, id="resident-audience"),
        pytest.param(lambda: {"aud": "kodomo"}, id="other-audience"),
        pytest.param(lambda: {"aud": [auth.RESIDENT_AUDIENCE]}, id="audience-list"),
        pytest.param(lambda: {"sub": "resident:abc"}, id="resident-subject"),
        pytest.param(lambda: {"sub": "staff:x"}, id="malformed-subject"),
    ],
)
def test_wrong_claims_signed_with_the_right_key_are_refused(
    client: TestClient, connection: Connection, analyst: str, change: Any
) -> None:
    claims = claims_of(analyst)
    claims.update(change())
    assert_refused(client, connection, forge(claims))


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
def test_missing_required_claim_is_refused(
    client: TestClient, connection: Connection, analyst: str, claim: str
) -> None:
    claims = claims_of(analyst)
    del claims[claim]
    assert_refused(client, connection, forge(claims))
    with pytest.raises(NotAuthenticated):
        auth.codec().decode(forge(claims), auth.STAFF_AUDIENCE)


def test_missing_token_version_is_refused(
    client: TestClient, connection: Connection, analyst: str
) -> None:
    claims = claims_of(analyst)
    del claims["ver"]
    assert_refused(client, connection, forge(claims), "auth.token_revoked")


def test_resident_token_is_refused_on_a_staff_route(
    client: TestClient, connection: Connection, analyst: str
) -> None:
    resident = auth.issue_resident_token("r-123").token
    assert claims_of(resident)["aud"] == auth.RESIDENT_AUDIENCE
    assert auth.resident_from_token(resident).subject == "r-123"
    assert_refused(client, connection, resident)
    # And the other way round: a staff token is not a resident token.
    with pytest.raises(NotAuthenticated):
        auth.resident_from_token(analyst)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer", "...."])
def test_garbage_is_refused(client: TestClient, garbage: str) -> None:
    response = client.get("/api/me", headers={"Authorization": f"Bearer {garbage}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"auth.not_signed_in", "auth.token_invalid"}


# ---------------------------------------------------------------- revocation


def test_logout_revokes_every_earlier_token(
    client: TestClient, connection: Connection
) -> None:
    first = api_token(client, "analyst")
    second = api_token(client, "analyst")
    assert client.post("/api/auth/logout", headers=bearer(second)).status_code == 204
    assert_refused(client, connection, second, "auth.token_revoked")
    assert_refused(client, connection, first, "auth.token_revoked")
    assert client.post("/api/auth/logout", headers=bearer(second)).status_code == 401
    assert_accepted(client, api_token(client, "analyst"), "analyst")


def test_role_grant_and_revoke_revoke_tokens(client: TestClient, connection: Connection) -> None:
    before_grant = api_token(client, "analyst")
    with session_on(connection) as session:
        grant = service.grant_role(session, audit.SYSTEM, login="analyst", role=Role.auditor,
                                   organ_key="mayor")
        session.commit()
        grant_id = grant.id
    assert grant_id is not None
    assert_refused(client, connection, before_grant, "auth.token_revoked")
    after_grant = api_token(client, "analyst")
    assert me(client, after_grant).json()["roles"] == ["analyst", "auditor"]
    assert client.get("/api/audit/events", headers=bearer(after_grant)).status_code == 200

    with session_on(connection) as session:
        service.revoke_role(session, audit.SYSTEM, grant_id)
        session.commit()
    assert_refused(client, connection, after_grant, "auth.token_revoked")
    after_revoke = api_token(client, "analyst")
    assert me(client, after_revoke).json()["roles"] == ["analyst"]
    assert client.get("/api/audit/events", headers=bearer(after_revoke)).status_code == 403


def test_password_change_revokes_tokens(client: TestClient, connection: Connection) -> None:
    token = api_token(client, "holder")
    with session_on(connection) as session:
        account = service.account_by_login(session, "holder")
        service.set_password(session, audit.SYSTEM, account, "a-new-long-password-77")
        session.commit()
    assert_refused(client, connection, token, "auth.token_revoked")


# ---------------------------------------------------------------- sign-in failures


def _throttled_until(reply: httpx.Response) -> str:
    assert reply.status_code == 429, reply.text
    reason = reply.json()["error"]["reasons"][0]
    assert reply.json()["error"]["code"] == "auth.throttled"
    assert "システム管理者" in reason["message_ja"] and "administrator" in reason["message_en"]
    assert int(reply.headers["Retry-After"]) > 0
    return str(reason["message_ja"])


def test_throttle_after_max_failures_same_for_real_and_unknown_logins(
    client: TestClient, connection: Connection
) -> None:
    limit = get_settings().login_max_failures
    unknown = api_sign_in(client, "nobody-here", WRONG_PASSWORD)
    # One short of the limit, the right password still works and resets the count.
    for _ in range(limit - 1):
        assert_same_reply(api_sign_in(client, "holder", WRONG_PASSWORD), unknown)
    assert api_sign_in(client, "holder", core_demo.demo_password()).status_code == 200
    for _ in range(limit):
        assert_same_reply(api_sign_in(client, "holder", WRONG_PASSWORD), unknown)
    for _ in range(limit - 1):
        api_sign_in(client, "nobody-here", WRONG_PASSWORD)
    # Now both are throttled, the right password too, with the same answer: no oracle, and an
    # unknown login cannot be told from a real one.
    real = api_sign_in(client, "holder", core_demo.demo_password())
    ghost = api_sign_in(client, "nobody-here", WRONG_PASSWORD)
    # The two blocks began a moment apart, so only the time may differ.
    def without_time(text: str) -> str:
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<time>", text)

    assert without_time(_throttled_until(real)) == without_time(_throttled_until(ghost))
    assert without_time(real.text) == without_time(ghost.text)
    assert unknown.json()["error"]["code"] == "auth.invalid_credentials"

    # The account itself is not locked: the block belongs to (this address, this login).
    with session_on(connection) as session:
        assert service.account_by_login(session, "holder").locked_until is None
        rows = session.exec(select(SignInThrottle)).all()
        assert all("holder" not in (r.key + (r.login_digest or "")) for r in rows)

    # An administrator lifts it; then the right password works.
    admin = api_token(client, "admin")
    lifted = client.post("/api/staff/holder/sign-in-block/lift", headers=bearer(admin))
    assert lifted.status_code == 200 and lifted.json()["lifted"] >= 1
    assert api_sign_in(client, "holder", core_demo.demo_password()).status_code == 200
    # Only an administrator may lift a block.
    other = api_token(client, "privacy")
    assert client.post("/api/staff/nobody-here/sign-in-block/lift",
                       headers=bearer(other)).status_code == 403


def test_block_runs_out_after_the_lock_period(client: TestClient, connection: Connection) -> None:
    for _ in range(get_settings().login_max_failures):
        api_sign_in(client, "holder", WRONG_PASSWORD)
    _throttled_until(api_sign_in(client, "holder", core_demo.demo_password()))
    with session_on(connection) as session:
        for row in session.exec(select(SignInThrottle)).all():
            if row.blocked_until is not None:
                row.blocked_until = utcnow() - timedelta(seconds=1)
                session.add(row)
        session.commit()
    assert api_sign_in(client, "holder", core_demo.demo_password()).status_code == 200


def test_another_address_is_not_locked_out_by_an_attackers_failures(
    client: TestClient,
) -> None:
    """Five wrong passwords from one address do not lock the real user out at another."""
    for _ in range(get_settings().login_max_failures):
        api_sign_in(client, "holder", WRONG_PASSWORD)
    assert api_sign_in(client, "holder", core_demo.demo_password()).status_code == 429
    with TestClient(client.app, client=("10.0.0.9", 50000)) as clerk:
        answer = api_sign_in(clerk, "holder", core_demo.demo_password())
        assert answer.status_code == 200, answer.text


def test_one_address_is_blocked_over_many_logins(client: TestClient) -> None:
    for n in range(get_settings().login_max_failures_per_address):
        api_sign_in(client, f"guess-{n}", WRONG_PASSWORD)
    _throttled_until(api_sign_in(client, "support", core_demo.demo_password()))


def test_console_sign_in_throttled_says_when_and_who(client: TestClient) -> None:
    for _ in range(get_settings().login_max_failures):
        console_sign_in(client, "nobody-here", WRONG_PASSWORD)
    reply = console_sign_in(client, "nobody-here", WRONG_PASSWORD)
    assert reply.status_code == 429
    assert "以降にもう一度お試しください" in reply.text and "システム管理者" in reply.text
    assert int(reply.headers["Retry-After"]) > 0


def _lock(connection: Connection, login: str) -> None:
    with session_on(connection) as session:
        account = service.account_by_login(session, login)
        account.locked_until = utcnow() + timedelta(minutes=10)
        session.add(account)
        session.commit()


def _deactivate(connection: Connection, login: str) -> None:
    with session_on(connection) as session:
        account = service.account_by_login(session, login)
        account.is_active = False
        session.add(account)
        session.commit()


def test_unknown_wrong_and_locked_answer_byte_for_byte_the_same(
    client: TestClient, connection: Connection
) -> None:
    unknown = api_sign_in(client, "nobody-here", core_demo.demo_password())
    wrong = api_sign_in(client, "support", WRONG_PASSWORD)
    _lock(connection, "privacy2")
    locked = api_sign_in(client, "privacy2", core_demo.demo_password())
    _deactivate(connection, "edu_holder")
    inactive = api_sign_in(client, "edu_holder", core_demo.demo_password())
    for other in (wrong, locked, inactive):
        assert_same_reply(other, unknown)


def _form_page(response: httpx.Response) -> str:
    # The form echoes the login typed; everything else must be the same.
    return re.sub(r'(id="login"[^>]*value=")[^"]*"', r'\1"', response.text)


def test_console_sign_in_failures_look_the_same(
    client: TestClient, connection: Connection
) -> None:
    unknown = console_sign_in(client, "nobody-here")
    wrong = console_sign_in(client, "support", WRONG_PASSWORD)
    _lock(connection, "privacy2")
    locked = console_sign_in(client, "privacy2")
    for other in (wrong, locked):
        assert other.status_code == unknown.status_code == 401
        assert _form_page(other) == _form_page(unknown)
        assert "kodomo_session" not in (other.headers.get("set-cookie") or "")
    assert "ログインIDまたはパスワードが正しくありません。" in unknown.text


class VerifySpy:
    """Stands in for the argon2 PasswordHasher (which has slots) and records each verify."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.verified: list[str] = []

    def verify(self, hash: str, password: str) -> bool:
        self.verified.append(hash)
        return bool(self.real.verify(hash, password))

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))


def test_every_failure_path_costs_one_argon2_verification(
    client: TestClient, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not wall-clock: the unknown account pays the same argon2 check with the same cost."""
    spy = VerifySpy(auth._hasher)
    monkeypatch.setattr(auth, "_hasher", spy)
    with session_on(connection) as session:
        real_hash = service.account_by_login(session, "support").password_hash
    _lock(connection, "privacy2")

    for login, password in [
        ("nobody-here", core_demo.demo_password()),
        ("support", WRONG_PASSWORD),
        ("privacy2", core_demo.demo_password()),
    ]:
        spy.verified.clear()
        assert api_sign_in(client, login, password).status_code == 401
        assert len(spy.verified) == 1, login
        used = spy.verified[0]
        assert used.startswith("$argon2id$")
        assert extract_parameters(used) == extract_parameters(real_hash)

    spy.verified.clear()
    api_sign_in(client, "nobody-here", WRONG_PASSWORD)
    dummy = spy.verified[0]
    with session_on(connection) as session:
        hashes = {service.account_by_login(session, a[0]).password_hash
                  for a in core_demo.ACCOUNTS}
    assert dummy not in hashes
    with pytest.raises(VerifyMismatchError):
        spy.real.verify(dummy, core_demo.demo_password())


# ---------------------------------------------------------------- nothing secret in logs


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """DEBUG everywhere, set before the database connection so SQL echo is captured too."""
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy pins its own logger at WARNING; open it so statements and parameters show.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    return caplog


def test_sign_in_logs_no_password_or_token(
    debug_logs: pytest.LogCaptureFixture, client: TestClient, connection: Connection
) -> None:
    password = core_demo.demo_password()
    api_sign_in(client, "analyst", WRONG_PASSWORD)
    api_sign_in(client, "nobody-here", WRONG_PASSWORD)
    token = api_token(client, "analyst")
    response = console_sign_in(client, "privacy")
    cookie_token = client.cookies.get("kodomo_session")
    assert response.status_code == 303 and cookie_token
    assert me(client, token).status_code == 200
    assert client.get("/").status_code == 200
    client.cookies.clear()

    assert any(r.name.startswith("sqlalchemy.engine") for r in debug_logs.records)
    logged = debug_logs.text + "\n".join(
        f"{r.getMessage()} {r.args!r}" for r in debug_logs.records
    )
    for secret in (password, WRONG_PASSWORD, token, cookie_token):
        assert secret not in logged
    # The token's signature alone must not appear either (e.g. a truncated header dump).
    for secret in (token, cookie_token):
        assert secret.rsplit(".", 1)[1] not in logged

    # Nor in the audit chain, which can never be purged.
    with session_on(connection) as session:
        events = audit.page(session, limit=50).events
    stored = " ".join(e.details for e in events)
    for secret in (password, WRONG_PASSWORD, "nobody-here", token):
        assert secret not in stored
