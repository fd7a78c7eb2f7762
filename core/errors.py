"""The last line before a 500: database refusals of bad input or of a lost race become 4xx
with a Reason. Services should refuse first with their own Reason; this catches what they miss
(an id past the column's range, a reference to nothing, two approvals of one record at once).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from core import messages
from core.reasons import Conflict, DomainError, InvalidInput, Reason
from core.web import busy_response, database_busy

messages.register(
    {
        "core.value_out_of_range": (
            "入力された番号や値が範囲外です。正しい値を入力してください。",
            "A number or value in the request is out of range. Enter a valid value.",
        ),
        "core.unknown_reference": (
            "入力された参照先（番号）が存在しません。一覧から選び直してください。",
            "The request refers to a record that does not exist. Choose it again from the list.",
        ),
        "core.concurrent_change": (
            "同じ記録が同時に別の操作で変更されました。画面を再読み込みして確認してください。",
            "The same record was changed by someone else at the same moment. Reload and check.",
        ),
    }
)

# SQLite's and PostgreSQL's integer columns: 64-bit at most (INTEGER on PostgreSQL is 32-bit).
SQLITE_INTEGER_MAX = 2**63 - 1
POSTGRES_INTEGER_MAX = 2**31 - 1


def _is_foreign_key(error: IntegrityError) -> bool:
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if code is not None:
        return str(code) == "23503"
    return "FOREIGN KEY" in str(error.orig).upper()


def _is_lost_race(error: OperationalError) -> bool:
    """A serialisation failure or a deadlock: the other request won (a waiting request that
    gave up on a lock is `core.web.database_busy`, answered 503)."""
    return str(getattr(error.orig, "sqlstate", "") or "") in {"40001", "40P01"}


def domain_error_for(error: Exception) -> DomainError | None:
    """The 4xx a database error stands for, or None when it is a real fault (a 500)."""
    if isinstance(error, OverflowError):
        return InvalidInput(Reason.of("core.value_out_of_range"))
    if isinstance(error, DataError):
        return InvalidInput(Reason.of("core.value_out_of_range"))
    if isinstance(error, IntegrityError):
        if _is_foreign_key(error):
            return InvalidInput(Reason.of("core.unknown_reference"))
        return Conflict(Reason.of("core.concurrent_change"))
    if isinstance(error, OperationalError) and _is_lost_race(error):
        return Conflict(Reason.of("core.concurrent_change"))
    return None


def install_database_error_handlers(app: FastAPI) -> None:
    """Answer database refusals through the app's DomainError handler (recorded, bilingual)."""
    domain_handler = app.exception_handlers[DomainError]

    async def _database_error(request: Request, error: Exception) -> Response:
        if isinstance(error, OperationalError) and database_busy(error):
            return busy_response(request)
        mapped = domain_error_for(error)
        if mapped is None:
            raise error
        answer = domain_handler(request, mapped)
        return answer if isinstance(answer, Response) else await answer

    for kind in (OverflowError, DataError, IntegrityError, OperationalError):
        app.add_exception_handler(kind, _database_error)
