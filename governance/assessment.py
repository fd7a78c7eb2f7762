"""The PIA steps that need the design: open, submit, what changed since approval, the link.

These are governance operations on a purpose: governance computes the design snapshot and its
hash and hands them to `pia`, which keeps the form (DESIGN.md). `pia` never imports governance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.reasons import NotFound, Reason
from governance import approvals, design, purposes
from governance.design import canonical_json, pia_snapshot
from governance.models import Purpose
from pia import service as pia
from pia.models import Assessment


def snapshot_of(session: Session, purpose: Purpose) -> dict[str, Any]:
    return pia_snapshot(session, purpose)


def open_pia(session: Session, by: approvals.Actor, purpose_key: str,
             at: datetime | None = None) -> Assessment:
    """Open a PIA (or a re-assessment) of the purpose's current design."""
    purpose = purposes.get_purpose(session, purpose_key)
    assert purpose.id is not None
    snapshot = snapshot_of(session, purpose)
    return pia.open(session, by, purpose.id, snapshot, snapshot["design_hash"], at)


def submit_pia(session: Session, by: approvals.Actor, purpose_key: str, version: int,
               at: datetime | None = None) -> Assessment:
    """Submit the purpose's PIA in progress for approval against the current design."""
    purpose = purposes.get_purpose(session, purpose_key)
    assert purpose.id is not None
    current = _in_progress(session, purpose)
    snapshot = snapshot_of(session, purpose)
    return pia.submit(session, by, current.id or 0, version, snapshot,
                      snapshot["design_hash"], at)


def _in_progress(session: Session, purpose: Purpose) -> Assessment:
    assert purpose.id is not None
    current = pia.in_progress(session, purpose.id)
    if current is None:
        raise NotFound(Reason.of("governance.pia_none_in_progress", purpose=purpose.key))
    return current


def pia_status(session: Session, purpose: Purpose, at: datetime | None = None) -> pia.PiaStatus:
    """The purpose's PIA, approved and current for the design in force, or why not."""
    assert purpose.id is not None
    return pia.status(session, purpose.id,
                      design.design_hasher(session, purpose, in_force=True).accepted, at)


def next_design_pia_status(session: Session, purpose: Purpose,
                           at: datetime | None = None) -> pia.PiaStatus:
    """Whether the PIA of the next design (drafts included) is approved: what approving the
    pending drafts needs first."""
    assert purpose.id is not None
    return pia.status(session, purpose.id,
                      design.design_hasher(session, purpose, in_force=False).accepted, at)


@dataclass(frozen=True)
class Change:
    """One difference between the approved design and the current one."""

    path: str
    kind: str  # added | removed | changed
    before: Any = None
    after: Any = None


CHANGE_LABELS = {
    "purpose": "利用目的のキー", "version": "版", "title": "名称", "text": "利用目的",
    "citations": "法令の根拠", "necessity": "必要性", "acquisition": "取得の方法",
    "handling": "取扱い方法", "safeguards": "安全管理措置", "subjects_rule": "対象者",
    "items": "情報項目", "handling_subjects": "取扱主体", "flows": "情報の流れ（経路）",
    "job_kinds": "予定するジョブの種類",
}


def _key(value: Any) -> str:
    return value if isinstance(value, str) else canonical_json(value)


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Differences of two designs: dict keys recursively, lists as sets of members."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[Change] = []
        for key in sorted(set(before) | set(after)):
            where = f"{path}.{key}" if path else key
            if key not in before:
                found.append(Change(where, "added", None, after[key]))
            elif key not in after:
                found.append(Change(where, "removed", before[key], None))
            else:
                found.extend(diff(before[key], after[key], where))
        return found
    if isinstance(before, list) and isinstance(after, list):
        old = {_key(v): v for v in before}
        new = {_key(v): v for v in after}
        return ([Change(path, "removed", old[k], None) for k in sorted(set(old) - set(new))]
                + [Change(path, "added", None, new[k]) for k in sorted(set(new) - set(old))])
    if before != after:
        return [Change(path, "changed", before, after)]
    return []


def changes_since_approval(session: Session, purpose_key: str) -> list[Change] | None:
    """What the next design (drafts included) changes against the latest approved PIA's design:
    what a re-assessment must look at (None: no approved PIA)."""
    purpose = purposes.get_purpose(session, purpose_key)
    assert purpose.id is not None
    approved = pia.approved_snapshot(session, purpose.id)
    if approved is None:
        return None
    # The next design, in the format the PIA approved (an upgrade adds nothing to re-assess).
    current = design.design_of(session, purpose, design_format=pia.snapshot_format(approved))
    return diff(approved.get("design", {}), current)
