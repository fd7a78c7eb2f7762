"""The shared Reason type and the domain errors that carry Reasons to every caller."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core import messages


@dataclass(frozen=True)
class Reason:
    """Why something was refused or is invalid: stable code, both languages, what it concerns."""

    code: str
    message_ja: str
    message_en: str
    refs: Mapping[str, Any] = field(default_factory=dict)
    field: str | None = None
    row: int | None = None

    @classmethod
    def of(
        cls,
        code: str,
        /,
        *,
        refs: Mapping[str, Any] | None = None,
        field: str | None = None,
        row: int | None = None,
        **params: Any,
    ) -> Reason:
        # `field` and `row` belong to the Reason; a message template cannot use them as
        # placeholders (pass e.g. `where=` instead).
        ja, en = messages.both(code, **params)
        return cls(code, ja, en, dict(refs or {}), field, row)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "message_ja": self.message_ja,
            "message_en": self.message_en,
            "refs": dict(self.refs),
        }
        if self.field is not None:
            data["field"] = self.field
        if self.row is not None:
            data["row"] = self.row
        return data


class DomainError(Exception):
    """A refusal or validation failure with one or more Reasons; status is the HTTP analogue."""

    status_code = 400

    def __init__(self, reasons: Reason | Iterable[Reason]) -> None:
        self.reasons: list[Reason] = [reasons] if isinstance(reasons, Reason) else list(reasons)
        if not self.reasons:
            raise ValueError("a DomainError needs at least one Reason")
        super().__init__("; ".join(f"{r.code}: {r.message_en}" for r in self.reasons))

    @property
    def code(self) -> str:
        return self.reasons[0].code


class InvalidInput(DomainError):
    status_code = 422


class NotFound(DomainError):
    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class NotAuthenticated(DomainError):
    status_code = 401
