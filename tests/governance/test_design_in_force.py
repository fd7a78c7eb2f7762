"""The design in force: drafts are the next design, approvals need its PIA, formats keep PIAs."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from consent import people
from consent import service as consent
from core import audit
from core.models import Organ, OutsideBody
from core.reasons import InvalidInput
from governance import assessment, footing, gate, purposes
from governance.design import (
    DESIGN_FORMAT,
    DESIGN_FORMATS,
    design_hash,
    design_of,
    in_force_design_hash,
)
from governance.models import Basis, Recurrence
from governance.rules import JobKind
from governance.schemas import Decision, PurposeUpdate, RouteCreate
from registry.models import RegistryItem
from tests.factories import (
    approve_pia,
    assign_cases,
    carers_in_force,
    codes,
    make_notice,
    who,
)

ABUSE = "child_abuse_prevention"
CARERS = "young_carers_outreach"
OK = Decision(comment="テストのため")
EVERY_JOB = [
    ("analyst", JobKind.linkage, ["seiho.kind", "shukketsu.days_absent"]),
    ("analyst", JobKind.scoring, ["seiho.kind", "kenshin.unattended"]),
    ("analyst", JobKind.statistics, ["seiho.kind"]),
    ("support", JobKind.export, ["seiho.kind", "shukketsu.days_absent"]),
]


def _draft_route(db: Session, key: str = "abuse.extra") -> None:
    footing.create_route(db, who(db, "analyst"), ABUSE, RouteCreate(
        key=key, items=["gakurei.aid"], to_body="npo_kodomo_shokudo",
        basis=Basis.consent, recurrence=Recurrence.one_off))


def _allowed(db: Session, login: str, kind: JobKind, items: list[str],
             purpose: str = ABUSE, **to: str) -> gate.Decision:
    return gate.explain(db, gate.JobRequest(kind=kind, purpose=purpose, items=items,
                                            principal=who(db, login),
                                            recipient_organ=to.get("organ"),
                                            recipient_body=to.get("body")))


def test_a_draft_route_halts_nothing(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(people, "_case_assignments", [])
    assign_cases(db, "support")  # a support worker's export reaches its own cases only
    # The reproduction: a draft route on the approved purpose changed its design hash,
    # so every job of the purpose was refused with pia.design_changed.
    purpose = purposes.get_purpose(db, ABUSE)
    in_force = in_force_design_hash(db, purpose)
    _draft_route(db)
    footing.submit_route(db, who(db, "analyst"), "abuse.extra")
    assert in_force_design_hash(db, purpose) == in_force
    for login, kind, items in EVERY_JOB:
        decision = _allowed(db, login, kind, items)
        assert decision.allowed, [r.code for r in decision.reasons]
        assert decision.design_hash == in_force
    assert gate.usability(db, purpose).usable
    # The draft is the next design, with its own hash.
    assert design_hash(design_of(db, purpose)) != in_force


def test_approving_a_route_needs_the_pia_of_the_next_design_first(db: Session) -> None:
    _draft_route(db)
    footing.submit_route(db, who(db, "analyst"), "abuse.extra")
    with pytest.raises(InvalidInput) as refused:
        footing.approve_route(db, who(db, "privacy"), "abuse.extra", OK)
    assert codes(refused.value) == ["pia.design_changed"]
    route = footing.get_route(db, "abuse.extra")
    assert route.status == "submitted"
    # The re-assessment of the next design, once approved, lets the route be approved; while
    # it is pending, what runs still relies on the PIA of the design in force.
    reassessed = approve_pia(db, ABUSE)
    purpose = purposes.get_purpose(db, ABUSE)
    status = assessment.pia_status(db, purpose)
    assert status.usable and status.pia_id != reassessed.id
    footing.approve_route(db, who(db, "privacy"), "abuse.extra", OK)
    status = assessment.pia_status(db, purpose)
    assert status.usable and status.pia_id == reassessed.id
    assert assessment.changes_since_approval(db, ABUSE) == []


def test_approving_a_revision_needs_the_pia_of_the_revised_design(db: Session) -> None:
    analyst, officer = who(db, "analyst"), who(db, "privacy")
    purposes.revise_purpose(db, analyst, ABUSE)
    purposes.update_purpose(db, analyst, ABUSE, PurposeUpdate(
        job_kinds=[JobKind.linkage, JobKind.statistics, JobKind.export]))
    purposes.submit_purpose(db, analyst, ABUSE)
    with pytest.raises(InvalidInput) as refused:
        purposes.approve_purpose(db, officer, ABUSE, OK)
    assert codes(refused.value) == ["pia.design_changed"]
    approve_pia(db, ABUSE)
    assert purposes.approve_purpose(db, officer, ABUSE, OK).status == "approved"
    scoring = _allowed(db, "analyst", JobKind.scoring, ["seiho.kind"])
    assert [r.code for r in scoring.reasons] == ["gate.kind_not_in_purpose"]
    assert _allowed(db, "analyst", JobKind.linkage, ["seiho.kind"]).allowed


def test_every_format_is_computed_and_the_old_one_lacks_the_job_kinds(db: Session) -> None:
    purpose = purposes.get_purpose(db, ABUSE)
    assert max(DESIGN_FORMATS) == DESIGN_FORMAT
    old = design_of(db, purpose, in_force=True, design_format=1)
    new = design_of(db, purpose, in_force=True)
    assert "job_kinds" not in old
    assert new["job_kinds"] == ["export", "linkage", "scoring", "statistics"]
    assert {k: v for k, v in new.items() if k != "job_kinds"} == old
    with pytest.raises(ValueError):
        design_of(db, purpose, design_format=DESIGN_FORMAT + 1)


def test_a_pia_of_an_older_format_stays_current(db: Session) -> None:
    # A PIA approved before the job kinds were part of the design keeps its format and hash.
    purpose = purposes.get_purpose(db, ABUSE)
    relied = assessment.pia_status(db, purpose)
    from pia import service as pia

    approved = pia.get(db, relied.pia_id or 0)
    old_design = design_of(db, purpose, in_force=True, design_format=1)
    approved.design_format = 1
    approved.design_hash = design_hash(old_design)
    approved.snapshot = pia.dumps({"design": old_design, "design_hash": approved.design_hash})
    db.add(approved)
    db.flush()
    assert assessment.pia_status(db, purpose).usable
    # Nothing to re-assess either: the next design is compared in the PIA's format.
    assert assessment.changes_since_approval(db, ABUSE) == []
    approved.design_format = DESIGN_FORMAT  # the same hash read in the newer format: stale
    db.add(approved)
    db.flush()
    assert codes(InvalidInput(assessment.pia_status(db, purpose).reasons)) == [
        "pia.design_changed"]


def test_the_young_carers_pia_is_not_assessed_as_profiling(db: Session) -> None:
    # Its handling text says 「スコアリングは行わない」 and its job kinds leave scoring out.
    snapshot = assessment.snapshot_of(db, purposes.get_purpose(db, CARERS))
    from pia import service as pia

    assert snapshot["design"]["job_kinds"] == ["export", "linkage", "statistics"]
    assert pia.suggested_threshold(snapshot)["scoring"] is False
    abuse = assessment.snapshot_of(db, purposes.get_purpose(db, ABUSE))
    assert pia.suggested_threshold(abuse)["scoring"] is True


def test_a_consent_flow_needs_a_notice_shown_by_the_time_of_the_job(db: Session) -> None:
    carers_in_force(db)
    footing.create_route(db, who(db, "analyst"), CARERS, RouteCreate(
        key="carers.npo", items=["shukketsu.days_absent"], to_body="npo_kodomo_shokudo",
        basis=Basis.consent, recurrence=Recurrence.one_off))
    footing.submit_route(db, who(db, "analyst"), "carers.npo")
    approve_pia(db, CARERS)
    footing.approve_route(db, who(db, "privacy"), "carers.npo", OK)
    npo = db.exec(select(OutsideBody).where(OutsideBody.key == "npo_kodomo_shokudo")).one()
    item = db.exec(select(RegistryItem).where(RegistryItem.key == "shukketsu.days_absent")).one()
    purpose = purposes.get_purpose(db, CARERS)
    # The data holder exports the item its organ holds (a support worker would need cases).
    refused = _allowed(db, "edu_holder", JobKind.export, ["shukketsu.days_absent"], CARERS,
                       body="npo_kodomo_shokudo")
    assert [r.code for r in refused.reasons] == ["gate.no_notice"]
    assert "npo_kodomo_shokudo" in refused.reasons[0].message_en
    mayor = db.exec(select(Organ).where(Organ.key == "mayor")).one()
    notice = make_notice(db, purpose.id or 0, mayor.id or 0, [item.id or 0], f"body:{npo.id}",
                         shown=False)
    still = _allowed(db, "edu_holder", JobKind.export, ["shukketsu.days_absent"], CARERS,
                     body="npo_kodomo_shokudo")
    assert [r.code for r in still.reasons] == ["gate.no_notice"]  # not shown yet
    consent.mark_notice_shown(db, audit.SYSTEM, notice.id or 0)
    shown = _allowed(db, "edu_holder", JobKind.export, ["shukketsu.days_absent"], CARERS,
                     body="npo_kodomo_shokudo")
    assert shown.allowed, [r.code for r in shown.reasons]
    # A notice of another purpose never covers a flow of this one.
    other = purposes.get_purpose(db, ABUSE)
    assert consent.noticed_items(db, other.id or 0, {item.id or 0}, f"body:{npo.id}",
                                 shown.at) == set()
