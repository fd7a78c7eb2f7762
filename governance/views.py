"""Read-only helpers of the console pages: what a page shows, gathered from the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, col, select

from core import messages
from core.auth import Principal
from core.clock import to_tokyo
from core.models import Department, Organ, OutsideBody, StaffAccount
from core.reasons import Reason
from core.service import list_departments, list_organs, list_outside_bodies
from governance import approvals, assessment, design, footing, gate, purposes, rules
from governance.messages import JOB_KIND_LABELS, ROUTE_KIND_LABELS, SAFEGUARD_CHECKLIST
from governance.models import (
    ApprovalStep,
    Authorisation,
    Purpose,
    PurposeCitation,
    PurposeStatus,
    PurposeSubject,
    PurposeVersion,
    Route,
    SubjectRole,
)
from governance.rules import SAFEGUARD_CATEGORIES, parse_json_object
from pia import service as pia
from registry import service as registry
from registry.models import ItemStatus, RegistryFile, RegistryItem

# Purpose fields shown on the purpose form; a Reason.field names one of them (or a part).
PURPOSE_FORM_FIELDS = (
    "title_ja", "title_en", "purpose_text", "citations", "necessity", "acquisition_method",
    "acquisition_note", "handling_extraction", "handling_matching_key", "handling_logic",
    "handling_logic_version", "handling_result_viewers", "handling_human_assessment",
    "safeguards", "public_notice", "subjects_rule", "subjects",
)


def q(text: str) -> str:
    return quote(text, safe="")


def fix_link(purpose: Purpose, reason: Reason) -> str | None:
    """Where the missing piece a Reason names is put right, if there is such a page."""
    base = f"/purposes/{q(purpose.key)}"
    refs = reason.refs or {}
    field = reason.field or ""
    top = field.split(".")[0]
    editable = purpose.status in rules.PURPOSE_EDITABLE
    if reason.code.startswith("registry."):
        if "file" in refs:
            return f"/registry/files/{q(str(refs['file']))}"
        return "/registry"
    if reason.code == "gate.purpose_not_in_force":
        return f"{base}#actions"
    if reason.code == "gate.authorisation_missing" and refs.get("route"):
        return f"{base}/routes/{q(str(refs['route']))}/authorisations/new"
    if reason.code in ("gate.authorisation_not_yet", "gate.authorisation_expired",
                       "gate.authorisation_exhausted"):
        return f"{base}#authorisation-{refs.get('authorisation', '')}"
    if reason.code == "gate.no_route":
        return f"{base}/routes/new?item={q(str(refs.get('item', '')))}"
    if reason.code.startswith("pia."):
        return f"{base}/pia"
    if reason.code == "gate.no_subject_for_kind":
        return f"{base}/edit#field-subjects" if editable else f"{base}#actions"
    if top == "items":
        parts = field.split(".")
        if len(parts) >= 2:
            return f"{base}#item-{parts[1]}"
        return f"{base}#items"
    if top in PURPOSE_FORM_FIELDS:
        anchor = field.replace(".", "-")
        return f"{base}/edit#field-{anchor}" if editable else f"{base}#actions"
    return None


@dataclass(frozen=True)
class ReasonView:
    reason: Reason
    href: str | None


def reason_views(purpose: Purpose, reasons: list[Reason], on_form: bool = False
                 ) -> list[ReasonView]:
    """Reasons with their links; on the purpose form itself, links to its fields stay local."""
    views = []
    edit = f"/purposes/{q(purpose.key)}/edit#"
    for reason in reasons:
        href = fix_link(purpose, reason)
        if on_form and href and href.startswith(edit):
            href = "#" + href[len(edit):]
        views.append(ReasonView(reason, href))
    return views


def errors_by_field(reasons: list[Reason]) -> dict[str, list[Reason]]:
    """Reasons grouped by field; `items.k.x` is also grouped under `items`."""
    grouped: dict[str, list[Reason]] = {}
    for reason in reasons:
        grouped.setdefault(reason.field or "", []).append(reason)
        if reason.field and "." in reason.field:
            top = reason.field.split(".")[0]
            if top == "items":
                grouped.setdefault(top, []).append(reason)
    return grouped


def account_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(StaffAccount).where(col(StaffAccount.id).in_(wanted))).all()
    return {a.id: a.display_name for a in rows if a.id is not None}


def versions(session: Session, purpose: Purpose) -> list[PurposeVersion]:
    return list(session.exec(select(PurposeVersion)
                             .where(PurposeVersion.purpose_id == purpose.id)
                             .order_by(col(PurposeVersion.version))).all())


def purpose_rows(session: Session) -> list[dict[str, Any]]:
    rows = []
    for purpose in purposes.list_purposes(session):
        usable = gate.usability(session, purpose)
        rows.append({
            "purpose": purpose,
            "usable": usable.usable,
            "usability": usable,
            "reasons": len(usable.reasons),
            "item_count": len(design.purpose_items(session, purpose)),
            "route_count": len(footing.routes_of(session, purpose)),
        })
    return rows


def register_items(session: Session) -> list[tuple[RegistryFile, Organ | None, list[RegistryItem]]]:
    """The register's live items by file, for choosing a purpose's items."""
    organs = {o.id: o for o in list_organs(session)}
    found = []
    for file in registry.list_files(session):
        items = [i for i in registry.items_of(session, file) if i.status != ItemStatus.retired]
        if items and file.ceased_at is None:
            found.append((file, organs.get(file.organ_id), items))
    return found


def choices(session: Session) -> dict[str, Any]:
    """Organs, departments and outside bodies for the forms' selects."""
    # Deactivated ones cannot be chosen anew (records that name them keep them).
    organs = list_organs(session, active_only=True)
    departments = list_departments(session, active_only=True)
    bodies = sorted(list_outside_bodies(session, active_only=True), key=lambda b: b.key)
    units: list[tuple[str, str]] = []
    for organ in organs:
        units.append((organ.key, organ.name_ja))
        for department in departments:
            if department.organ_id == organ.id:
                units.append((f"{organ.key}/{department.key}",
                              f"{organ.name_ja}　{department.name_ja}"))
    return {"organs": organs, "departments": departments, "bodies": bodies, "units": units}


def purpose_values(session: Session, purpose: Purpose) -> dict[str, Any]:
    """The purpose as the form's values (the same shape the form posts)."""
    described = describe(session, purpose)
    safeguards = parse_json_object(purpose.safeguards)
    rule = parse_json_object(purpose.subjects_rule)
    values: dict[str, Any] = {
        name: getattr(purpose, name) for name in (
            "key", "title_ja", "title_en", "purpose_text", "necessity", "acquisition_note",
            "handling_extraction", "handling_matching_key", "handling_logic",
            "handling_logic_version", "handling_result_viewers", "handling_human_assessment")
    }
    values["acquisition_method"] = str(purpose.acquisition_method)
    values["job_kinds"] = design.job_kinds_of(purpose)
    values["public_notice"] = {k: str(v) for k, v in
                               parse_json_object(purpose.public_notice).items()}
    values["min_age"] = "" if rule.get("min_age") is None else str(rule["min_age"])
    values["max_age"] = "" if rule.get("max_age") is None else str(rule["max_age"])
    values["safeguards"] = {}
    values["safeguards_other"] = {}
    for category in SAFEGUARD_CATEGORIES:
        listed = safeguards.get(category)
        chosen = [str(x) for x in listed] if isinstance(listed, list) else []
        standard = SAFEGUARD_CHECKLIST[category]
        values["safeguards"][category] = [x for x in chosen if x in standard]
        values["safeguards_other"][category] = "\n".join(x for x in chosen if x not in standard)
    values["citations"] = [
        {"kind": str(c.kind), "law_name": c.law_name, "article": c.article, "note": c.note}
        for c in described["citations"]
    ]
    values["subjects"] = [
        {"unit": organ.key + (f"/{department.key}" if department else ""),
         "role": str(subject.role)}
        for subject, organ, department in described["subjects"] if organ is not None
    ]
    return values


def _history(session: Session, subject_type: str, subject_id: int | None) -> list[ApprovalStep]:
    if subject_id is None:
        return []
    return approvals.approval_history(session, subject_type, subject_id)


def detail(session: Session, purpose: Purpose, principal: Principal) -> dict[str, Any]:
    """Everything the purpose page shows, with the steps the signed-in person may take."""
    described = describe(session, purpose)
    usable = gate.usability(session, purpose)
    history: list[tuple[str, str, ApprovalStep]] = [
        ("purpose", purpose.key, step) for step in _history(session, "purpose", purpose.id)]
    flows = []
    for entry in described["routes"]:
        route = entry["route"]
        history += [("route", route.key, s) for s in _history(session, "route", route.id)]
        auth: Authorisation
        for auth in entry["authorisations"]:
            history += [("authorisation", auth.key, s)
                        for s in _history(session, "authorisation", auth.id)]
        for item in entry["items"]:
            flows.append({"item": item, "route": route, "from": entry["from"],
                          "to": entry["to"]})
    history.sort(key=lambda row: (row[2].at, row[2].id or 0))
    names = account_names(session, {s.actor_id for _, _, s in history}
                          | {purpose.created_by, purpose.submitted_by, purpose.approved_by})
    past = versions(session, purpose)
    return {
        **described,
        "usability": usable,
        "usability_views": reason_views(purpose, usable.reasons),
        "flows": flows,
        "history": history,
        "names": names,
        "versions": past,
        **pending_design(session, purpose),
        "actions": approvals.allowed_actions(session, principal, purpose),
        "route_actions": {e["route"].key: approvals.allowed_actions(session, principal, e["route"])
                          for e in described["routes"]},
        "authorisation_actions": {a.key: approvals.allowed_actions(session, principal, a)
                                  for e in described["routes"] for a in e["authorisations"]},
        "access_limits": {a.key: access_limit_text(a) for e in described["routes"]
                          for a in e["authorisations"]},
        "identified": {link.id: sorted(rules.identified_roles(link.identified_for), key=str)
                       for link, *_ in described["items"]},
        "subject_labels": {role.value: (messages.text(f"gate.subject.{role.value}"),
                                        messages.text(f"gate.subject.{role.value}", "en"))
                           for role in (SubjectRole.holding, SubjectRole.use)},
        "one_off_kinds": sorted(kind.value for kind in rules.ONE_OFF_KINDS),
        "is_approved": purpose.status == PurposeStatus.approved,
        "register": register_items(session),
    }


def access_limit_text(auth: Any) -> tuple[str, str]:
    """An authorisation's Art. 69(4) limit as a clerk reads it, Japanese and English."""
    limit = rules.AccessLimit.from_json(auth.access_limits)
    if limit.empty:
        return "限定なし", "not limited"
    parts = [("機関", "organs", sorted(limit.organs)), ("部署", "departments",
                                                     sorted(limit.departments)),
             ("役割", "roles", sorted(limit.roles))]
    ja = "／".join(f"{name}：{'、'.join(keys)}" for name, _en, keys in parts if keys)
    en = "; ".join(f"{en}: {', '.join(keys)}" for _ja, en, keys in parts if keys)
    return ja, en


def date_value(moment: Any) -> str:
    return to_tokyo(moment).date().isoformat() if moment else ""


def describe(session: Session, purpose: Purpose) -> dict[str, Any]:
    """A purpose with its parts, for the API and the console."""
    organs = {o.id: o for o in session.exec(select(Organ))}
    bodies = {b.id: b for b in session.exec(select(OutsideBody))}
    departments = {d.id: d for d in session.exec(select(Department))}
    files = {f.id: f for f in session.exec(select(RegistryFile))}
    citations = session.exec(
        select(PurposeCitation).where(PurposeCitation.purpose_id == purpose.id)
    ).all()
    subjects = session.exec(
        select(PurposeSubject).where(PurposeSubject.purpose_id == purpose.id)
    ).all()

    def recipient(route: Route) -> str:
        if route.to_organ_id is not None:
            return organs[route.to_organ_id].key
        assert route.to_body_id is not None
        return bodies[route.to_body_id].key

    routes = footing.routes_of(session, purpose)
    return {
        "purpose": purpose,
        "citations": list(citations),
        "subjects": [
            (s, organs.get(s.organ_id), departments.get(s.department_id or -1)) for s in subjects
        ],
        "items": [
            (link, item, files.get(item.file_id), organs.get(files[item.file_id].organ_id))
            for link, item in design.purpose_items(session, purpose)
        ],
        "routes": [
            {
                "route": r,
                "items": footing.route_items(session, r),
                "from": organs[r.from_organ_id],
                "to": organs.get(r.to_organ_id or -1) or bodies.get(r.to_body_id or -1),
                "to_key": recipient(r),
                "authorisations": footing.authorisations_of(session, r),
            }
            for r in routes
        ],
        "safeguards": rules.parse_json_object(purpose.safeguards),
        "public_notice": rules.parse_json_object(purpose.public_notice),
        "subjects_rule": rules.parse_json_object(purpose.subjects_rule),
        "design_hash": design.in_force_design_hash(session, purpose),
        "next_design_hash": design.current_design_hash(session, purpose),
    }


def change_text(change: assessment.Change) -> str:
    """One design change as a person reads it (a flow as item: holder → recipient, route)."""
    value = change.after if change.after is not None else change.before
    if isinstance(value, dict) and {"item", "from", "to", "route"} <= set(value):
        kind = ROUTE_KIND_LABELS.get(str(value["route"]), (str(value["route"]),))[0]
        to = str(value["to"]).split(":", 1)[-1]
        return f"{value['item']}: {value['from']} → {to}（{kind}）"
    if change.path == "job_kinds" and isinstance(value, str):
        return JOB_KIND_LABELS.get(value, (value,))[0]
    if isinstance(value, dict):
        return "、".join(f"{k}: {v}" for k, v in sorted(value.items()) if v not in (None, ""))
    return str(value)


def pending_design(session: Session, purpose: Purpose) -> dict[str, Any]:
    """The next design (the drafts) against the design in force, and what the PIA must
    re-assess before the drafts can be approved."""
    in_force = design.design_of(session, purpose, in_force=True)
    following = design.design_of(session, purpose)
    pending = assessment.diff(in_force, following)
    reassess = assessment.changes_since_approval(session, purpose.key) or []
    assert purpose.id is not None
    return {
        "pending_changes": [(change, change_text(change)) for change in pending],
        "reassess": reassess if pending else [],
        "next_pia_ready": (not pending
                           or assessment.next_design_pia_status(session, purpose).usable),
        "change_labels": assessment.CHANGE_LABELS,
    }


def pia_status(session: Session, key: str) -> dict[str, Any]:
    """The purpose's PIA: usable or not, the assessment relied on and the changes since."""
    purpose = purposes.get_purpose(session, key)
    found = assessment.pia_status(session, purpose)
    changes = assessment.changes_since_approval(session, key)
    assert purpose.id is not None
    current = pia.in_progress(session, purpose.id)
    return {
        "purpose": purpose.key,
        "usable": found.usable,
        "pia_id": found.pia_id,
        "version": found.version,
        "reasons": [r.to_dict() for r in found.reasons],
        "design_hash": design.current_design_hash(session, purpose),
        "in_progress": None if current is None else {"id": current.id,
                                                     "version": current.version,
                                                     "status": current.status},
        "changes": None if changes is None else [
            {"path": c.path, "kind": c.kind, "before": c.before, "after": c.after}
            for c in changes
        ],
    }

