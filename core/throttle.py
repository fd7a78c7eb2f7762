"""Sign-in throttling per address, per login string and per both, whether or not the account
exists: the same answer for a real and an unknown login, so it is neither an oracle nor an
enumeration, and one attacker's address cannot lock out the real user at another address
before the (higher) per-login limit.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from core import audit, messages
from core.clock import format_tokyo, utcnow
from core.models import SignInThrottle
from core.reasons import DomainError, Reason
from core.settings import get_settings

messages.register(
    {
        "auth.throttled": (
            "サインインの失敗が続いたため、{until} まで受け付けません。"
            "その時刻以降にもう一度お試しください。急ぐ場合はシステム管理者に解除を依頼してください。",
            "Too many failed sign-ins: try again after {until} (Japan time). If it is urgent, "
            "ask a system administrator to lift the block.",
        ),
        "auth.throttle_lifted": (
            "「{login}」のサインイン制限を解除しました（{count} 件）。",
            "Lifted the sign-in blocks on {login!r} ({count}).",
        ),
    }
)


class SignInThrottled(DomainError):
    status_code = 429

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(Reason.of("auth.throttled", until=format_tokyo(until)))


def _digest(kind: str, value: str) -> str:
    secret = get_settings().signing_secret().encode()
    return hmac.new(secret, f"throttle:{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def login_digest(login: str) -> str:
    return _digest("login", login.strip().casefold())


def _keys(login: str, address: str) -> list[tuple[str, int]]:
    """(row key, failure limit) for the three counters of one attempt."""
    settings = get_settings()
    who = login_digest(login)
    return [
        ("pair:" + _digest("pair", f"{address}\x00{who}")[:64], settings.login_max_failures),
        ("login:" + who[:64], settings.login_max_failures_per_login),
        ("addr:" + _digest("addr", address)[:64], settings.login_max_failures_per_address),
    ]


def check(session: Session, login: str, address: str) -> None:
    """Refuse (429) while any counter of this attempt is blocked; nothing else is looked at."""
    now = utcnow()
    keys = [key for key, _ in _keys(login, address)]
    rows = session.exec(select(SignInThrottle).where(col(SignInThrottle.key).in_(keys))).all()
    blocked = [r.blocked_until for r in rows
               if r.blocked_until is not None and r.blocked_until > now]
    if blocked:
        until = max(blocked)
        audit.append(session, "core.sign_in_throttled", details={"until": until.isoformat()})
        raise SignInThrottled(max(blocked))


def failed(session: Session, login: str, address: str) -> None:
    """Count a failure on every counter; a counter at its limit blocks for the lock period."""
    settings = get_settings()
    now = utcnow()
    window = timedelta(minutes=settings.login_lock_minutes)
    who = login_digest(login)[:64]
    for key, limit in _keys(login, address):
        row = session.get(SignInThrottle, key)
        if row is None:
            row = SignInThrottle(key=key, login_digest=None if key.startswith("addr:") else who,
                                 window_started_at=now)
        elif row.window_started_at + window <= now:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= limit:
            row.blocked_until = now + window
            row.failures = 0
            row.window_started_at = now
        session.add(row)


def succeeded(session: Session, login: str, address: str) -> None:
    """A right password clears this login's counters (the address keeps its count)."""
    keys = [key for key, _ in _keys(login, address)[:2]]
    session.exec(delete(SignInThrottle).where(col(SignInThrottle.key).in_(keys)))


def lift(session: Session, actor: audit.Actor, login: str) -> int:
    """An administrator lifts every block and count on one login string (any address)."""
    rows = session.exec(
        select(SignInThrottle).where(SignInThrottle.login_digest == login_digest(login)[:64])
    ).all()
    for row in rows:
        session.delete(row)
    audit.append(session, "core.sign_in_throttle_lifted", actor=actor,
                 details={"count": len(rows)})
    return len(rows)
