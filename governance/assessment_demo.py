"""The demo purposes' PIAs, opened and submitted by governance (which holds the design).

Called by governance/demo.py after each purpose's routes exist and before any authorisation
is approved: an authorisation is approved only while the purpose's PIA is approved and current.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from core.auth import Principal
from core.clock import utcnow
from governance import assessment
from pia import demo as pia_demo
from pia import service as pia


def approve_abuse_prevention(session: Session, author: Principal, approver: Principal) -> None:
    """An approved full PIA, approved against the purpose's current design hash."""
    now = utcnow()
    opened = assessment.open_pia(session, author, "child_abuse_prevention",
                                 at=now - timedelta(days=120))
    filled = pia_demo.complete_abuse_prevention(session, author, opened)
    submitted = assessment.submit_pia(session, author, "child_abuse_prevention",
                                      filled.version, at=now - timedelta(days=90))
    assert submitted.id is not None
    step = pia.start_public_comment(session, author, submitted.id, submitted.version,
                                    at=now - timedelta(days=80))
    step = pia_demo.record_comment(session, author, step)
    step = pia.to_third_party(session, author, submitted.id, step.version,
                              at=now - timedelta(days=40))
    pia.approve(session, approver, submitted.id, step.version, accept_residual_risk=True,
                comment="第三者点検の意見を踏まえ、残存リスクを受容して承認する。")


def draft_young_carers(session: Session, author: Principal) -> None:
    opened = assessment.open_pia(session, author, "young_carers_outreach")
    pia_demo.draft_young_carers(session, author, opened)
