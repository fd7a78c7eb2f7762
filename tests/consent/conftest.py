"""Fixtures of the consent tests: a purpose, items, a recipient, a shown notice, and people."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, col, select

from consent import eligibility, importer, people, service
from consent.models import ChildView, ConsentRecord, Notice, Relation
from consent.rules import organ_recipient
from consent.schemas import ConsentIn, NoticeIn, NoticeItemIn, NoticeRecipientIn
from core import audit
from core.models import Organ
from governance.models import Purpose
from registry.models import RegistryItem

SHOWN = datetime(2026, 4, 1, tzinfo=UTC)
AT = datetime(2026, 6, 1, 3, tzinfo=UTC)  # 12:00 in Tokyo


@dataclass
class World:
    session: Session
    purpose_id: int
    organ_id: int
    items: list[int]
    recipient: str
    notice: Notice

    @property
    def flows(self) -> list[tuple[int, str]]:
        return [(i, self.recipient) for i in self.items]

    def people(self, *rows: dict[str, str]) -> dict[str, str]:
        """Import rows (atena_no, birth_date, parents, minor_guardian); returns atena -> id."""
        header = list(importer.COLUMNS)
        lines = [",".join(header)]
        for row in rows:
            values = {"family_name": "試験", "given_name": row["atena_no"][-4:],
                      "family_kana": "シケン", "given_kana": "タロウ", "sex": "9",
                      "parent_proof": "戸籍謄本" if row.get("parent1_atena_no") else "",
                      "minor_guardian_proof": "審判書" if row.get("minor_guardian_atena_no")
                      else "", **row}
            lines.append(",".join(values.get(h, "") for h in header))
        importer.import_bytes(self.session, audit.SYSTEM, "\n".join(lines).encode(),
                              at=SHOWN)
        found = {a: people.person_by_atena(self.session, a) for a in (r["atena_no"]
                                                                        for r in rows)}
        return {a: p.id for a, p in found.items() if p is not None}

    def family(self, child_birth: str, parents: int = 2, guardian: bool = False
               ) -> tuple[str, list[str]]:
        """A child with `parents` 親権者 (or one 未成年後見人); returns (child id, guardian ids)."""
        tag = secrets.token_hex(4).upper()
        adults = [{"atena_no": f"T{tag}A{n}", "birth_date": "1980-01-01"}
                  for n in range(1, (1 if guardian else parents) + 1)]
        child: dict[str, str] = {"atena_no": f"T{tag}C", "birth_date": child_birth}
        if guardian:
            child["minor_guardian_atena_no"] = adults[0]["atena_no"]
        else:
            for n, adult in enumerate(adults, start=1):
                child[f"parent{n}_atena_no"] = adult["atena_no"]
        ids = self.people(*adults, child)
        return ids[child["atena_no"]], [ids[a["atena_no"]] for a in adults]

    def give(self, child: str, giver: str | None = None, *, relation: Relation | None = None,
             at: datetime = SHOWN, view: ChildView | None = ChildView.assent,
             items: list[int] | None = None, recipients: list[str] | None = None,
             notice: Notice | None = None) -> ConsentRecord:
        record, _receipt = service.record_consent(self.session, audit.SYSTEM, ConsentIn(
            principal_id=child, given_by_id=giver,
            relation=relation or (Relation.parent if giver else Relation.self_),
            notice_id=(notice or self.notice).id or 0, item_ids=items or self.items,
            recipients=recipients or [self.recipient], child_view=view, at=at))
        return record

    def eligible(self, ids: list[str], at: datetime = AT,
                 flows: list[tuple[int, str]] | None = None, **kwargs: object) -> set[str]:
        query = eligibility.eligible(self.session, self.purpose_id,
                                     self.flows if flows is None else flows,
                                     eligibility.literal_population(ids), at, **kwargs)  # type: ignore[arg-type]
        return set(self.session.exec(query).all())  # type: ignore[call-overload]

    def why(self, person: str, at: datetime = AT, **kwargs: object) -> list[str]:
        return [r.code for r in eligibility.why_excluded(self.session, person, self.purpose_id,
                                                         self.flows, at, **kwargs)]  # type: ignore[arg-type]


def make_notice(session: Session, purpose_id: int, organ_id: int, items: list[int],
                recipient: str, *, optional: int | None = None, shown: bool = True) -> Notice:
    notice = service.create_notice(session, audit.SYSTEM, NoticeIn(
        key=f"test.{secrets.token_hex(3)}", purpose_id=purpose_id,
        controller_organ_id=organ_id, title_ja="試験の同意", text_ja="試験の説明",
        withdrawal_method_ja="窓口で撤回できます",
        items=[NoticeItemIn(item_id=i, label_ja=f"項目{i}", optional=i == optional)
               for i in items],
        recipients=[NoticeRecipientIn(recipient=recipient, label_ja="若葉台市長")]))
    if shown:
        service.mark_notice_shown(session, audit.SYSTEM, notice.id or 0, at=SHOWN)
    return notice


@pytest.fixture
def world(db: Session) -> Iterator[World]:
    purpose = db.exec(select(Purpose).where(Purpose.key == "young_carers_outreach")).one()
    organ = db.exec(select(Organ).where(Organ.key == "mayor")).one()
    items = [i.id for i in db.exec(select(RegistryItem).order_by(col(RegistryItem.id))).all()][:3]
    assert purpose.id and organ.id and len(items) == 3
    notice = make_notice(db, purpose.id, organ.id, [i for i in items[:2] if i],
                         organ_recipient(organ.id))
    service.set_policy(None)
    yield World(db, purpose.id, organ.id, [i for i in items[:2] if i],
                organ_recipient(organ.id), notice)
    service.set_policy(None)


@pytest.fixture
def birthday() -> Callable[[int, date], str]:
    def _birth(age: int, on: date) -> str:
        return date(on.year - age, on.month, on.day).isoformat()
    return _birth


__all__ = ["AT", "SHOWN", "World", "make_notice"]
