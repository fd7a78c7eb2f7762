"""Helpers for PIA tests: principals and one complete, approvable PIA for any purpose."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from core.auth import Principal, principal_for
from core.clock import utcnow
from core.models import StaffAccount
from governance import assessment, purposes
from pia import rules
from pia import service as pia
from pia.models import Assessment, Level, Residual, SelfRating, Stage
from pia.schemas import MeasureIn, ProcedureIn, RiskIn


def who(db: Session, login: str) -> Principal:
    account = db.exec(select(StaffAccount).where(StaffAccount.login == login)).one()
    return principal_for(db, account)


def risk(version: int, **change: object) -> RiskIn:
    data: dict[str, object] = {
        "version": version, "stage": Stage.use, "title": "不正に使用されるリスク",
        "likelihood": 1, "impact": 4, "self_rating": SelfRating.sufficient,
        "residual": Residual.low, "measures": [MeasureIn(text="アクセスを役割で制限する")],
    }
    data.update(change)
    return RiskIn.model_validate(data)


def complete(db: Session, purpose_key: str, author: str = "privacy") -> Assessment:
    """Open a PIA of the purpose's current design and fill in everything its level needs."""
    by = who(db, author)
    purpose = purposes.get_purpose(db, purpose_key)
    # Carry on with a draft in progress (as the demo leaves one), else open a new PIA.
    opened = pia.in_progress(db, purpose.id or 0) or assessment.open_pia(db, by, purpose_key)
    assert opened.id is not None
    for old_risk, _measures in pia.risks_of(db, opened):  # the draft's own, possibly unrated
        pia.delete_risk(db, by, opened.id, old_risk.id or 0, opened.version)
        db.refresh(opened)
    snapshot = pia.loads(opened.snapshot)
    current = pia.save_threshold(db, by, opened.id, opened.version,
                                 pia.suggested_threshold(snapshot))
    for section, (_, fields) in pia.FORM_SECTIONS.items():
        current = pia.save_section(db, by, opened.id, current.version, section,
                                   {name: f"{label}の記入" for name, label in fields})
    keys = [i["key"] for i in snapshot["context"]["items"]]
    pia.add_risk(db, by, opened.id, risk(current.version, items=keys))
    db.refresh(current)
    now = utcnow()
    return pia.save_procedure(db, by, opened.id, ProcedureIn(
        version=current.version, comment_start=now - timedelta(days=40),
        comment_end=now - timedelta(days=5), third_party_body="個人情報保護審議会",
        third_party_opinion="適当である", conclusion="受容可能"))


def approve(db: Session, purpose_key: str, author: str = "privacy",
            approver: str = "privacy2") -> Assessment:
    """A PIA approved against the purpose's current design (the whole workflow)."""
    filled = complete(db, purpose_key, author)
    by = who(db, author)
    current = assessment.submit_pia(db, by, purpose_key, filled.version)
    assert current.id is not None
    if current.level == Level.full:
        current = pia.start_public_comment(db, by, current.id, current.version)
        current = pia.to_third_party(db, by, current.id or 0, current.version)
    assert current.id is not None
    return pia.approve(db, who(db, approver), current.id, current.version,
                       accept_residual_risk=True, comment="承認")


__all__ = ["approve", "complete", "risk", "rules", "who"]
