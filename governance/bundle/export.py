"""Reading the database into a bundle: what `kodomo governance export` writes, and what a plan
compares a bundle with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from core import service as core_service
from core.models import (
    Department,
    Organ,
    OrganKind,
    OutsideBody,
    OutsideBodyKind,
    Role,
    StaffAccount,
)
from governance import approvals, design, footing, purposes, rules
from governance.bundle.format import (
    Approval,
    AuthorisationRecord,
    Bundle,
    DepartmentRecord,
    FileRecord,
    ItemRecord,
    MunicipalityRecord,
    OrganRecord,
    OutsideBodyRecord,
    PurposeRecord,
    RoleRecord,
    RouteRecord,
    StaffRecord,
    dump,
)
from governance.models import (
    AcquisitionMethod,
    Authorisation,
    Basis,
    Purpose,
    PurposeCitation,
    PurposeStatus,
    PurposeSubject,
    RecordStatus,
    Recurrence,
    Route,
    RouteKind,
)
from governance.rules import JobKind
from governance.schemas import (
    Citation,
    PublicNotice,
    PurposeItemIn,
    Safeguards,
    SubjectIn,
    SubjectsRule,
)
from registry import service as registry
from registry.models import ItemStatus, RegistryFile, RegistryItem


@dataclass
class Names:
    """id → key maps of everything a bundle refers to by key."""

    organs: dict[int, str]
    departments: dict[int, str]
    bodies: dict[int, str]
    logins: dict[int, str]
    purposes: dict[int, str]
    routes: dict[int, str]

    @classmethod
    def load(cls, session: Session) -> Names:
        def keys(model: Any) -> dict[int, str]:
            return {row.id: row.key for row in session.exec(select(model))}

        return cls(
            organs=keys(Organ), departments=keys(Department), bodies=keys(OutsideBody),
            logins={a.id: a.login for a in session.exec(select(StaffAccount))
                    if a.id is not None},
            purposes=keys(Purpose), routes=keys(Route),
        )

    def login(self, account_id: int | None) -> str | None:
        return self.logins.get(account_id) if account_id is not None else None

    def department(self, department_id: int | None) -> str | None:
        return self.departments.get(department_id) if department_id is not None else None


def _approval_comment(session: Session, subject_type: str, subject_id: int | None) -> str:
    if subject_id is None:
        return "-"
    steps = [s for s in approvals.approval_history(session, subject_type, subject_id)
             if s.action == "approve"]
    return (steps[-1].comment if steps else "") or "-"


def _inactive(active: bool) -> bool | None:
    """A record's `active` as exported: false when deactivated, else omitted."""
    return None if active else False


def _organ_record(organ: Organ) -> OrganRecord:
    return OrganRecord(key=organ.key, kind=OrganKind(organ.kind), name_ja=organ.name_ja,
                       name_en=organ.name_en, active=_inactive(organ.is_active))


def _department_record(department: Department, names: Names) -> DepartmentRecord:
    return DepartmentRecord(key=department.key, organ=names.organs[department.organ_id],
                            parent=names.department(department.parent_id),
                            name_ja=department.name_ja, name_en=department.name_en,
                            active=_inactive(department.is_active))


def _body_record(body: OutsideBody) -> OutsideBodyRecord:
    return OutsideBodyRecord(key=body.key, kind=OutsideBodyKind(body.kind), name_ja=body.name_ja,
                             name_en=body.name_en, is_public_body=body.is_public_body,
                             active=_inactive(body.is_active))


def _staff_record(session: Session, account: StaffAccount, names: Names) -> StaffRecord:
    assert account.id is not None
    return StaffRecord(
        login=account.login, display_name=account.display_name,
        department=names.department(account.department_id),
        roles=[RoleRecord(role=Role(g.role), organ=names.organs[g.organ_id],
                          department=names.department(g.department_id))
               for g in core_service.grants_of(session, account.id)],
        active=_inactive(account.is_active),
    )


def _item_record(item: RegistryItem) -> ItemRecord:
    data = registry.item_dict(item)
    data.pop("status")
    return ItemRecord.model_validate({**data, "retired": item.status == ItemStatus.retired})


def _file_record(session: Session, file: RegistryFile) -> FileRecord:
    data = registry.snapshot(session, file)
    data.pop("items")
    data["held_since"] = file.held_since
    return FileRecord.model_validate({
        **data, "published": registry.has_live_entry(file),
        "items": [_item_record(i) for i in registry.items_of(session, file)],
    })


def _purpose_record(session: Session, purpose: Purpose, names: Names) -> PurposeRecord:
    citations = session.exec(select(PurposeCitation).where(
        PurposeCitation.purpose_id == purpose.id).order_by(col(PurposeCitation.id))).all()
    subjects = session.exec(select(PurposeSubject).where(
        PurposeSubject.purpose_id == purpose.id).order_by(col(PurposeSubject.id))).all()
    rule = rules.parse_json_object(purpose.subjects_rule)
    status = PurposeStatus(purpose.status)
    approved = None
    if status in (PurposeStatus.approved, PurposeStatus.suspended, PurposeStatus.retired) \
            and purpose.approved_by is not None:
        approved = Approval(by=names.login(purpose.approved_by) or "?",
                            comment=_approval_comment(session, "purpose", purpose.id))
    return PurposeRecord(
        key=purpose.key, status=status, version=purpose.version,
        title_ja=purpose.title_ja, title_en=purpose.title_en,
        purpose_text=purpose.purpose_text, necessity=purpose.necessity,
        acquisition_method=AcquisitionMethod(purpose.acquisition_method),
        acquisition_note=purpose.acquisition_note,
        handling_extraction=purpose.handling_extraction,
        handling_matching_key=purpose.handling_matching_key,
        handling_logic=purpose.handling_logic,
        handling_logic_version=purpose.handling_logic_version,
        handling_result_viewers=purpose.handling_result_viewers,
        handling_human_assessment=purpose.handling_human_assessment,
        job_kinds=[JobKind(k) for k in design.job_kinds_of(purpose)],
        safeguards=Safeguards.model_validate(rules.parse_json_object(purpose.safeguards)),
        public_notice=PublicNotice.model_validate(rules.parse_json_object(purpose.public_notice)),
        subjects_rule=SubjectsRule.model_validate(rule) if rule else None,
        citations=[Citation(kind=c.kind, law_name=c.law_name, article=c.article, note=c.note)
                   for c in citations],
        subjects=[SubjectIn(organ=names.organs[s.organ_id],
                            department=names.department(s.department_id), role=s.role)
                  for s in subjects],
        items=[PurposeItemIn(item=item.key, necessity_reason=link.necessity_reason,
                             relevance_to_difficulty=link.relevance_to_difficulty,
                             identified_for=sorted(rules.identified_roles(link.identified_for)))
               for link, item in design.purpose_items(session, purpose)],
        submitted_by=names.login(purpose.submitted_by),
        approved=approved,
    )


def _route_record(session: Session, route: Route, names: Names) -> RouteRecord:
    kind = RouteKind(route.kind)
    status = RecordStatus(route.status)
    own_workflow = not rules.is_one_off(kind)
    approved = None
    if own_workflow and status == RecordStatus.approved and route.approved_by is not None:
        approved = Approval(by=names.login(route.approved_by) or "?",
                            comment=_approval_comment(session, "route", route.id))
    return RouteRecord(
        key=route.key, purpose=names.purposes[route.purpose_id], status=status,
        items=[i.key for i in footing.route_items(session, route)],
        to_organ=names.organs.get(route.to_organ_id) if route.to_organ_id else None,
        to_body=names.bodies.get(route.to_body_id) if route.to_body_id else None,
        basis=Basis(route.basis), recurrence=Recurrence(route.recurrence), kind=kind,
        reasoning=route.reasoning, changed_purpose_text=route.changed_purpose_text,
        law_citation=route.law_citation,
        submitted_by=names.login(route.submitted_by) if own_workflow else None,
        approved=approved,
    )


def _authorisation_record(session: Session, auth: Authorisation, names: Names
                          ) -> AuthorisationRecord:
    status = RecordStatus(auth.status)
    approved = None
    if status == RecordStatus.approved and auth.approved_by is not None:
        approved = Approval(by=names.login(auth.approved_by) or "?",
                            comment=_approval_comment(session, "authorisation", auth.id),
                            delegation_note=auth.delegation_note)
    fields = footing.authorisation_fields(auth)
    return AuthorisationRecord(
        key=auth.key, route=names.routes[auth.route_id], status=status, **fields,
        submitted_by=names.login(auth.submitted_by), approved=approved,
    )


def current_bundle(session: Session) -> Bundle:
    """What the database holds, as a bundle."""
    names = Names.load(session)
    municipality = core_service.get_municipality(session)
    return Bundle(
        kodomo_bundle=1,
        municipality=MunicipalityRecord(key=municipality.key, code=municipality.code,
                                        name_ja=municipality.name_ja,
                                        name_en=municipality.name_en)
        if municipality else None,
        organs=[_organ_record(o) for o in core_service.list_organs(session)],
        departments=[_department_record(d, names) for d in core_service.list_departments(session)],
        outside_bodies=[_body_record(b) for b in core_service.list_outside_bodies(session)],
        staff=[_staff_record(session, a, names) for a in session.exec(
            select(StaffAccount).order_by(col(StaffAccount.id)))],
        files=[_file_record(session, f) for f in registry.list_files(session)],
        purposes=[_purpose_record(session, p, names) for p in purposes.list_purposes(session)],
        routes=[_route_record(session, r, names) for r in session.exec(
            select(Route).order_by(col(Route.key)))],
        authorisations=[_authorisation_record(session, a, names) for a in session.exec(
            select(Authorisation).order_by(col(Authorisation.key)))],
    )


def export_bundle(session: Session) -> dict[str, Any]:
    """Everything the bundle covers, as plain data (YAML with to_yaml)."""
    return dump(current_bundle(session))

