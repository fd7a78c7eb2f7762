"""The PIA through governance.assessment and pia.service: staleness, guards, locking, PDFs."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from pypdf import PdfReader
from sqlmodel import Session

from core.clock import utcnow
from core.policies import override_policy
from core.reasons import Conflict, Forbidden, InvalidInput
from governance import assessment, footing, purposes
from governance.models import Basis, Recurrence
from governance.schemas import Citation, PurposeItemIn, PurposeUpdate, RouteCreate
from pia import rules
from pia import service as pia
from pia.models import Level, State
from pia.schemas import MeasureIn, ProcedureIn, SectionIn
from tests.factories import (
    approve_pia,
    codes,
    complete_pia,
    draft_purpose,
    one_off_route,
    pia_risk,
    who,
)

ABUSE = "child_abuse_prevention"


def abuse_status(db: Session, at: Any = None) -> pia.PiaStatus:
    return assessment.pia_status(db, purposes.get_purpose(db, ABUSE), at)


def test_demo_pias(db: Session) -> None:
    found = abuse_status(db)
    assert found.usable, found.reasons
    approved = pia.get(db, found.pia_id or 0)
    assert (approved.level, approved.status) == (Level.full, State.approved)
    assert approved.approved_by != approved.author_id
    assert approved.next_review_due is not None
    carers = purposes.get_purpose(db, "young_carers_outreach")
    draft = pia.in_progress(db, carers.id or 0)
    assert draft is not None and draft.status == State.draft
    assert not assessment.pia_status(db, carers).usable
    assert assessment.changes_since_approval(db, ABUSE) == []


def _revise(db: Session, change: PurposeUpdate) -> None:
    purposes.revise_purpose(db, who(db, "analyst"), ABUSE)
    purposes.update_purpose(db, who(db, "analyst"), ABUSE, change)


CHANGES = {
    "text": lambda db: _revise(db, PurposeUpdate(purpose_text="別の目的に変える")),
    "handling.logic_version": lambda db: _revise(
        db, PurposeUpdate(handling_logic_version="rules-2027.1")),
    "handling_subjects": lambda db: _revise(
        db, PurposeUpdate(subjects=[{"organ": "mayor", "role": "overall"}])),
    "citations": lambda db: _revise(db, PurposeUpdate(citations=[
        Citation(kind="statute", law_name="児童福祉法", article="第11条")])),
    "items": lambda db: (purposes.revise_purpose(db, who(db, "analyst"), ABUSE),
                         purposes.set_item(db, who(db, "analyst"), ABUSE, PurposeItemIn(
                             item="shukketsu.late_early", necessity_reason="n",
                             relevance_to_difficulty="r"))),
}


def _draft_route(db: Session) -> None:
    footing.create_route(db, who(db, "analyst"), ABUSE, RouteCreate(
        key="abuse.extra", items=["gakurei.aid"], to_body="pref_child_guidance",
        basis=Basis.one_off, recurrence=Recurrence.one_off))


def test_a_draft_route_is_the_next_design_and_leaves_the_pia_in_force(db: Session) -> None:
    # The reproduction: a draft route on the approved purpose once made its PIA read
    # as outdated and refused every job of the purpose (pia.design_changed).
    before = abuse_status(db)
    _draft_route(db)
    after = abuse_status(db)
    assert after.usable, after.reasons
    assert after.pia_id == before.pia_id
    # What the PIA must re-assess before the route can be approved: the new flow.
    paths = {c.path for c in assessment.changes_since_approval(db, ABUSE) or []}
    assert paths == {"flows"}
    purpose = purposes.get_purpose(db, ABUSE)
    assert not assessment.next_design_pia_status(db, purpose).usable


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_each_kind_of_design_change_makes_the_pia_stale(db: Session, kind: str) -> None:
    before = abuse_status(db)
    assert before.usable
    CHANGES[kind](db)
    after = abuse_status(db)
    assert not after.usable
    assert codes(InvalidInput(after.reasons)) == ["pia.design_changed"]
    assert after.pia_id == before.pia_id
    paths = {c.path for c in assessment.changes_since_approval(db, ABUSE) or []}
    assert kind in paths, paths


def test_routine_records_do_not_make_it_stale(db: Session) -> None:
    auth = footing.get_authorisation(db, "abuse.mayor_internal.2026")
    auth.runs_used += 1
    db.add(auth)
    db.flush()
    assert abuse_status(db).usable


def test_review_overdue_is_a_policy(db: Session) -> None:
    late = utcnow() + timedelta(days=400)
    assert codes(InvalidInput(abuse_status(db, late).reasons)) == ["pia.review_overdue"]
    with override_policy(rules.PiaPolicy(refuse_overdue_review=False)):
        assert abuse_status(db, late).usable


def test_a_draft_reassessment_does_not_replace_the_approved_pia(db: Session) -> None:
    before = abuse_status(db)
    reassessment = assessment.open_pia(db, who(db, "privacy"), ABUSE)
    assert reassessment.id != before.pia_id
    assert len(pia.risks_of(db, reassessment)) == 6  # starts from the approved register
    assert abuse_status(db).pia_id == before.pia_id
    with pytest.raises(Conflict) as twice:
        assessment.open_pia(db, who(db, "privacy"), ABUSE)
    assert codes(twice.value) == ["pia.already_open"]


def test_no_approved_pia_refuses(db: Session) -> None:
    scoring = purposes.get_purpose(db, "all_children_scoring")
    assert codes(InvalidInput(assessment.pia_status(db, scoring).reasons)) == ["pia.not_approved"]


def _trial_full(db: Session) -> None:
    """The trial purpose with a flow from the board of education: a full assessment."""
    draft_purpose(db)
    one_off_route(db)


def _to_approval(db: Session, pia_id: int, version: int) -> int:
    by = who(db, "privacy")
    submitted = assessment.submit_pia(db, by, "trial", version)
    current = pia.start_public_comment(db, by, pia_id, submitted.version)
    current = pia.to_third_party(db, by, pia_id, current.version)
    return current.version


def test_approval_guards(db: Session) -> None:
    _trial_full(db)
    filled = complete_pia(db, "trial")
    assert filled.id is not None and filled.level == Level.full
    by = who(db, "privacy")
    pia.add_risk(db, by, filled.id, pia_risk(filled.version, title="未評価のリスク",
                                             likelihood=None))
    db.refresh(filled)
    pia.add_risk(db, by, filled.id, pia_risk(filled.version, title="空の措置",
                                             measures=[MeasureIn(text="")]))
    db.refresh(filled)
    version = _to_approval(db, filled.id, filled.version)
    with pytest.raises(Forbidden) as author:
        pia.approve(db, by, filled.id, version, accept_residual_risk=True)
    assert "pia.self_approval" in codes(author.value)
    with pytest.raises(InvalidInput) as refused:
        pia.approve(db, who(db, "privacy2"), filled.id, version, accept_residual_risk=False)
    found = codes(refused.value)
    assert {"pia.residual_not_accepted", "pia.risk_unrated", "pia.measure_empty"} <= set(found)
    unrated = next(r for r in refused.value.reasons if r.code == "pia.risk_unrated")
    assert (unrated.field, unrated.row) == ("likelihood", 2)


def test_special_care_items_must_be_addressed(db: Session) -> None:
    _trial_full(db)
    by = who(db, "privacy")
    opened = assessment.open_pia(db, by, "trial")
    special = rules.special_care_items(pia.loads(opened.snapshot))
    assert special, "the trial purpose uses a special-care item"
    pia.add_risk(db, by, opened.id or 0, pia_risk(opened.version, items=[]))
    db.refresh(opened)
    found = [r for r in pia.problems(db, opened) if r.code == "pia.special_care_unaddressed"]
    assert [r.refs["item"] for r in found] == special
    pia.add_risk(db, by, opened.id or 0, pia_risk(opened.version, items=special, impact=2))
    db.refresh(opened)
    left = {r.code for r in pia.problems(db, opened)}
    assert "pia.special_care_unaddressed" not in left
    assert "pia.special_care_impact_low" in left


def test_short_comment_period_needs_a_reason(db: Session) -> None:
    _trial_full(db)
    filled = complete_pia(db, "trial")
    by = who(db, "privacy")
    now = utcnow()
    short = ProcedureIn(version=filled.version, comment_start=now - timedelta(days=20),
                        comment_end=now - timedelta(days=1), third_party_body="審議会",
                        third_party_opinion="適当")
    filled = pia.save_procedure(db, by, filled.id or 0, short)
    submitted = assessment.submit_pia(db, by, "trial", filled.version)
    with pytest.raises(InvalidInput) as refused:
        pia.start_public_comment(db, by, submitted.id or 0, submitted.version)
    assert codes(refused.value) == ["pia.comment_period_short"]
    db.refresh(submitted)
    with_reason = short.model_copy(update={"version": submitted.version,
                                           "comment_short_reason": "緊急の支援体制整備のため"})
    current = pia.save_procedure(db, by, submitted.id or 0, with_reason)
    assert pia.start_public_comment(db, by, current.id or 0, current.version).status == (
        State.public_comment)


def test_threshold_cannot_deny_the_design(db: Session) -> None:
    _trial_full(db)
    by = who(db, "privacy")
    opened = assessment.open_pia(db, by, "trial")
    current = pia.save_threshold(db, by, opened.id or 0, opened.version, {"persons": 10})
    assert current.level == Level.none
    with pytest.raises(InvalidInput) as refused:
        assessment.submit_pia(db, by, "trial", current.version)
    assert set(codes(refused.value)) == {"pia.threshold_contradicts_design"}


def test_optimistic_locking(db: Session) -> None:
    draft_purpose(db)
    opened = assessment.open_pia(db, who(db, "privacy"), "trial")
    seen = opened.version
    pia.save_section(db, who(db, "privacy"), opened.id or 0, seen, "other", {"audit": "年1回"})
    with pytest.raises(Conflict) as stale:
        pia.save_section(db, who(db, "privacy2"), opened.id or 0, seen, "other",
                         {"audit": "上書き"})
    assert codes(stale.value) == ["pia.conflict"]
    assert "他の担当者" in stale.value.reasons[0].message_ja
    assert pia.loads(pia.get(db, opened.id or 0).form)["other"]["audit"]["value"] == "年1回"
    assert SectionIn(version=seen + 1).version == seen + 1


def test_approval_makes_authorisations_possible_and_binds_the_design(db: Session) -> None:
    draft_purpose(db)
    approved = approve_pia(db, "trial")
    assert approved.status == State.approved
    status = assessment.pia_status(db, purposes.get_purpose(db, "trial"))
    assert status.usable and status.pia_id == approved.id and status.version == approved.version


def test_the_pdfs_hold_every_section(db: Session) -> None:
    found = abuse_status(db)
    approved = pia.get(db, found.pia_id or 0)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(
        pia.report_pdf(db, approved))).pages)
    flat = text.replace("\n", "").replace(" ", "")
    for heading in ("しきい値判断", "基本情報", "ファイルの概要", "リスク対策",
                    "その他のリスク対策",
                    "開示請求・問合せ", "評価実施手続", "意見聴取", "第三者点検", "結論",
                    "入手", "使用", "委託", "提供・移転", "保管・消去", "全項目評価",
                    "権限のない者によって不正に使用されるリスク"):
        assert heading in flat, heading
    summary = "".join(p.extract_text() for p in PdfReader(io.BytesIO(
        pia.summary_pdf(db, approved))).pages).replace("\n", "").replace(" ", "")
    for heading in ("公表用概要", "基本情報", "ファイルの概要", "リスク対策の概要", "問合せ先"):
        assert heading in summary, heading
