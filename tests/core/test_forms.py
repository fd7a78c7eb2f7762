"""Console forms: text of posted fields, a form parsed into a model, bad fields as Reasons."""

from __future__ import annotations

import io

import pytest
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import FormData, UploadFile

from core import messages
from core.forms import by_field, field_reason, parse_form, text, texts, validation_reasons
from core.reasons import InvalidInput, Reason

messages.register({"testforms.invalid": ("「{label}」の値が正しくありません（{detail}）。",
                                         "The value of {name!r} is not valid ({detail}).")})
LABELS = {"count": "件数", "safeguards": "安全管理措置"}


class Sample(BaseModel):
    count: int = Field(ge=0)
    title: str = Field(min_length=1)
    safeguards: dict[str, list[int]] = Field(default_factory=dict)


def test_text_and_texts_strip_and_ignore_what_is_not_text() -> None:
    upload = UploadFile(io.BytesIO(b"x"), filename="x.txt")
    form = FormData([("name", "  値 "), ("tag", " a"), ("tag", "b "), ("file", upload)])
    assert (text(form, "name"), text(form, "file"), text(form, "missing")) == ("値", "", "")
    assert texts(form, "tag") == ["a", "b"] and texts(form, "missing") == []


def test_a_valid_form_becomes_the_model() -> None:
    parsed = parse_form(Sample, {"count": "3", "title": "x"}, LABELS, code="testforms.invalid")
    assert parsed == Sample(count=3, title="x")


def test_each_bad_field_is_a_reason_named_by_the_callers_label() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_form(Sample, {"count": "-1", "title": ""}, LABELS, code="testforms.invalid")
    count, title = refused.value.reasons
    assert (count.code, count.field, title.field) == ("testforms.invalid", "count", "title")
    assert count.message_ja.startswith("「件数」の値が正しくありません（")
    assert title.message_ja.startswith("「title」の値") and "'title'" in title.message_en


def test_a_nested_field_keeps_its_group_key_when_asked() -> None:
    with pytest.raises(InvalidInput) as flat:
        parse_form(Sample, {"count": 1, "title": "x", "safeguards": {"technical": ["x"]}},
                   LABELS, code="testforms.invalid")
    assert [r.field for r in flat.value.reasons] == ["safeguards"]
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"count": 1, "title": "x", "safeguards": {"technical": ["x"]}})
    nested = validation_reasons(caught.value, LABELS, code="testforms.invalid",
                                nested={"safeguards"})
    assert [(r.field, r.message_ja[:9]) for r in nested] == [("safeguards.technical",
                                                               "「安全管理措置」の")]


def test_field_reason_and_by_field() -> None:
    one = field_reason("testforms.invalid", "count", LABELS, "必須です")
    other = field_reason("testforms.invalid", "date", {}, "x", field="count")
    page = Reason.of("testforms.invalid", name="n", label="l", detail="d")
    assert (one.field, other.field) == ("count", "count") and "「件数」" in one.message_ja
    assert by_field([one, other, page]) == {"count": [one, other], "": [page]}

