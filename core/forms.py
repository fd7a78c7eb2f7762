"""Console forms: posted fields as text, parsed into a pydantic model, bad fields as Reasons."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import ImmutableMultiDict

from core.reasons import InvalidInput, Reason

M = TypeVar("M", bound=BaseModel)


def text(form: Mapping[str, Any], name: str) -> str:
    """A posted field, stripped; "" when it is missing or not text."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def texts(form: ImmutableMultiDict[str, Any], name: str) -> list[str]:
    """Every value posted under one name (ticked boxes, repeated rows), stripped."""
    return [value.strip() if isinstance(value, str) else "" for value in form.getlist(name)]


def field_reason(code: str, name: str, labels: Mapping[str, str], detail: str, *,
                 field: str | None = None) -> Reason:
    """A bad input named by its label; `code` is a package's message with {label}, {name},
    {detail}, and the labels are the caller's, so core never learns a package's words."""
    return Reason.of(code, field=name if field is None else field, name=name,
                     label=labels.get(name, name), detail=detail)


def validation_reasons(error: ValidationError, labels: Mapping[str, str], *, code: str,
                       nested: Collection[str] = ()) -> list[Reason]:
    """One Reason per problem, on the form field it concerns.

    The field is the top-level name, or `name.key` for a name in `nested` (a group of inputs
    such as `safeguards.technical`), so that the page shows the message beside that input.
    """
    reasons = []
    for problem in error.errors():
        loc = [str(part) for part in problem.get("loc", ())]
        top = loc[0] if loc else ""
        field = ".".join(loc[:2]) if top in nested and len(loc) > 1 else top
        reasons.append(field_reason(code, top, labels, problem.get("msg", ""), field=field))
    return reasons


def parse_form(model: type[M], data: Mapping[str, Any], labels: Mapping[str, str], *,
               code: str, nested: Collection[str] = ()) -> M:
    """The form's data as `model`, or InvalidInput with a Reason for each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(validation_reasons(error, labels, code=code, nested=nested)) from error


def by_field(reasons: Iterable[Reason]) -> dict[str, list[Reason]]:
    """Reasons grouped by field, to show each beside its input ("" for the whole form)."""
    grouped: dict[str, list[Reason]] = {}
    for reason in reasons:
        grouped.setdefault(reason.field or "", []).append(reason)
    return grouped
