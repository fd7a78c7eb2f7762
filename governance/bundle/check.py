"""Checking a bundle against itself and the database before anything is written: references,
keys, and the service's own rules (governance.rules) with the bundle's field paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session, col, select

from core import service as core_service
from core.models import Department, OutsideBody
from core.reasons import InvalidInput, Reason
from governance import design, purposes, rules
from governance.bundle.export import Names
from governance.bundle.format import Approval, Bundle, RouteRecord, load_bundle
from governance.models import Route, RouteKind
from registry.models import RegistryFile, RegistryItem

_WHAT = {
    "organ": "機関",
    "department": "部署",
    "outside body": "外部機関",
    "staff account": "職員アカウント",
    "register file": "個人情報ファイル",
    "register item": "記録項目",
    "purpose": "利用目的",
    "route": "経路",
}


def _bad(code: str, path: str, **params: Any) -> Reason:
    return Reason.of(code, field=path, **params)


def _unknown(path: str, what: str, key: str | None) -> Reason:
    return _bad("governance.bundle_unknown", path, what=_WHAT[what], what_en=what, key=key)


@dataclass
class _Known:
    """What exists after the bundle would be applied: the database plus the bundle."""

    organs: set[str]
    departments: dict[str, str]  # department → organ
    bodies: dict[str, bool]  # body → is_public_body
    logins: set[str]
    items: dict[str, tuple[str, str]]  # item → (file, organ)
    purpose_items: dict[str, set[str]]  # purpose → items
    route_kinds: dict[str, RouteKind | None]
    has_municipality: bool


def _known(session: Session, bundle: Bundle) -> _Known:
    names = Names.load(session)
    organs = set(names.organs.values()) | {o.key for o in bundle.organs}
    departments = {d.key: names.organs[d.organ_id] for d in session.exec(select(Department))}
    departments.update({d.key: d.organ for d in bundle.departments})
    bodies = {b.key: b.is_public_body for b in session.exec(select(OutsideBody))}
    bodies.update({b.key: b.is_public_body for b in bundle.outside_bodies})
    logins = set(names.logins.values()) | {s.login for s in bundle.staff}
    files = {f.id: (f.key, names.organs[f.organ_id]) for f in session.exec(select(RegistryFile))}
    items = {i.key: files[i.file_id] for i in session.exec(select(RegistryItem))}
    for file in bundle.files:
        for item in file.items:
            items[item.key] = (file.key, file.organ)
    purpose_items: dict[str, set[str]] = {}
    for purpose in purposes.list_purposes(session):
        purpose_items[purpose.key] = {i.key for _, i in design.purpose_items(session, purpose)}
    for record in bundle.purposes:
        purpose_items[record.key] = {i.item for i in record.items}
    route_kinds: dict[str, RouteKind | None] = {
        r.key: RouteKind(r.kind) for r in session.exec(select(Route))}
    return _Known(organs, departments, bodies, logins, items, purpose_items, route_kinds,
                  core_service.get_municipality(session) is not None)


def _duplicates(keys: Sequence[str], path: str, name: str) -> list[Reason]:
    seen: set[str] = set()
    found = []
    for index, key in enumerate(keys):
        if key in seen:
            found.append(_bad("governance.bundle_duplicate", f"{path}[{index}].{name}", key=key))
        seen.add(key)
    return found


def _at(reason: Reason, field: str) -> Reason:
    """A rule's Reason, with the bundle's path for the field it concerns."""
    return replace(reason, field=field)


def _derive(record: RouteRecord, from_organ: str, known: _Known) -> RouteKind | Reason:
    """rules.derive_route on the bundle's keys (organs numbered, bodies as the bundle has them);
    a Reason's field is the route record's path below the route."""
    ids = {key: number for number, key in enumerate(sorted(known.organs | {from_organ}), 1)}
    if record.to_organ is not None:
        recipient = rules.Recipient(organ_id=ids.get(record.to_organ, -1))
    else:
        assert record.to_body is not None
        recipient = rules.Recipient(None, record.to_body, record.to_body, record.to_body,
                                    known.bodies.get(record.to_body, False))
    derived = rules.derive_route(record.basis, record.recurrence, ids[from_organ], recipient)
    if isinstance(derived, Reason) and derived.field == "recipient":
        return replace(derived, field="to_organ" if record.to_organ is not None else "to_body")
    return derived


def _check_workflow(path: str, submitted_by: str | None, approved: Approval | None,
                    known: _Known, *, delegation: bool = False) -> list[Reason]:
    problems = []
    if submitted_by is not None and submitted_by not in known.logins:
        problems.append(_unknown(f"{path}.submitted_by", "staff account", submitted_by))
    if approved is not None:
        if approved.by not in known.logins:
            problems.append(_unknown(f"{path}.approved.by", "staff account", approved.by))
        self_approval = rules.separation_problem(submitted_by, approved.by)
        if self_approval is not None:
            problems.append(_at(self_approval, f"{path}.approved.by"))
        no_delegation = rules.delegation_problem(approved.delegation_note) if delegation \
            else None
        if no_delegation is not None:
            problems.append(_at(no_delegation, f"{path}.approved.delegation_note"))
    return problems


def validate(session: Session, bundle: Bundle) -> list[Reason]:
    """Every problem of the bundle against the database, each with its path; [] when valid."""
    known = _known(session, bundle)
    problems: list[Reason] = []
    problems += _duplicates([o.key for o in bundle.organs], "organs", "key")
    problems += _duplicates([d.key for d in bundle.departments], "departments", "key")
    problems += _duplicates([b.key for b in bundle.outside_bodies], "outside_bodies", "key")
    problems += _duplicates([s.login for s in bundle.staff], "staff", "login")
    problems += _duplicates([f.key for f in bundle.files], "files", "key")
    problems += _duplicates([p.key for p in bundle.purposes], "purposes", "key")
    problems += _duplicates([r.key for r in bundle.routes], "routes", "key")
    problems += _duplicates([a.key for a in bundle.authorisations], "authorisations", "key")
    if not known.has_municipality and bundle.municipality is None and bundle.organs:
        problems.append(_bad("governance.bundle_no_municipality", "municipality"))

    def department_in(path: str, department: str | None, organ: str | None) -> None:
        if department is None:
            return
        if department not in known.departments:
            problems.append(_unknown(path, "department", department))
        elif organ is not None and organ in known.organs and known.departments[department] != organ:
            problems.append(Reason.of("core.department_outside_organ", department=department,
                                      organ=organ, field=path))

    def organ_known(path: str, organ: str) -> bool:
        if organ not in known.organs:
            problems.append(_unknown(path, "organ", organ))
            return False
        return True

    for i, department in enumerate(bundle.departments):
        organ_known(f"departments[{i}].organ", department.organ)
        department_in(f"departments[{i}].parent", department.parent, department.organ)
    for i, staff in enumerate(bundle.staff):
        department_in(f"staff[{i}].department", staff.department, None)
        for j, role in enumerate(staff.roles):
            organ_known(f"staff[{i}].roles[{j}].organ", role.organ)
            department_in(f"staff[{i}].roles[{j}].department", role.department, role.organ)
    db_item_files = {i.key: f.key for i, f in session.exec(
        select(RegistryItem, RegistryFile).join(RegistryFile,
                                                col(RegistryFile.id) == RegistryItem.file_id))}
    for i, file in enumerate(bundle.files):
        organ_known(f"files[{i}].organ", file.organ)
        department_in(f"files[{i}].department", file.department, file.organ)
        for j, item in enumerate(file.items):
            owner = db_item_files.get(item.key)
            if owner is not None and owner != file.key:
                problems.append(_bad("governance.bundle_item_of_other_file",
                                     f"files[{i}].items[{j}].key", key=item.key, file=owner))
    seen_items: set[str] = set()
    for i, file in enumerate(bundle.files):
        for j, item in enumerate(file.items):
            if item.key in seen_items:
                problems.append(_bad("governance.bundle_duplicate", f"files[{i}].items[{j}].key",
                                     key=item.key))
            seen_items.add(item.key)
    for i, purpose in enumerate(bundle.purposes):
        path = f"purposes[{i}]"
        for j, subject in enumerate(purpose.subjects):
            if organ_known(f"{path}.subjects[{j}].organ", subject.organ):
                department_in(f"{path}.subjects[{j}].department", subject.department,
                              subject.organ)
        problems += _duplicates([x.item for x in purpose.items], f"{path}.items", "item")
        for j, link in enumerate(purpose.items):
            if link.item not in known.items:
                problems.append(_unknown(f"{path}.items[{j}].item", "register item", link.item))
        problems += _check_workflow(path, purpose.submitted_by, purpose.approved, known)
    for i, route in enumerate(bundle.routes):
        path = f"routes[{i}]"
        if route.purpose not in known.purpose_items:
            problems.append(_unknown(f"{path}.purpose", "purpose", route.purpose))
        for j, repeated in rules.repeated_item_problems(route.items).items():
            problems.append(_at(repeated, f"{path}.items[{j}]"))
        for j, key in enumerate(route.items):
            if key not in known.items:
                problems.append(_unknown(f"{path}.items[{j}]", "register item", key))
            elif route.purpose in known.purpose_items:
                outside = rules.item_in_purpose_problem(key, route.purpose,
                                                        known.purpose_items[route.purpose])
                if outside is not None:
                    problems.append(_at(outside, f"{path}.items[{j}]"))
        holders = [known.items[k][1] for k in route.items if k in known.items]
        several = rules.one_holder_problem(holders)
        if several is not None:
            problems.append(_at(several, f"{path}.items"))
        recipients = rules.one_recipient_problem(route.to_organ, route.to_body)
        if recipients is not None:
            problems.append(_at(recipients, f"{path}.to_organ"))
        elif route.to_organ is not None:
            organ_known(f"{path}.to_organ", route.to_organ)
        elif route.to_body not in known.bodies:
            problems.append(_unknown(f"{path}.to_body", "outside body", route.to_body))
        if holders and several is None and recipients is None:
            derived = _derive(route, holders[0], known)
            if isinstance(derived, Reason):
                problems.append(_at(derived, f"{path}.{derived.field or 'basis'}"))
            else:
                known.route_kinds[route.key] = derived
                if route.kind is not None and route.kind != derived:
                    problems.append(_bad("governance.bundle_kind_mismatch", f"{path}.kind",
                                         derived=derived.value, given=route.kind.value))
                if route.submitted_by or route.approved:
                    one_off = rules.own_approval_problem(derived)
                    if one_off is not None:
                        where = "approved" if route.approved else "submitted_by"
                        problems.append(_at(one_off, f"{path}.{where}"))
        problems += _check_workflow(path, route.submitted_by, route.approved, known)
    for i, auth in enumerate(bundle.authorisations):
        path = f"authorisations[{i}]"
        if auth.route not in known.route_kinds:
            problems.append(_unknown(f"{path}.route", "route", auth.route))
        else:
            kind = known.route_kinds[auth.route]
            not_one_off = rules.authorised_route_problem(kind) if kind is not None else None
            if not_one_off is not None:
                problems.append(_at(not_one_off, f"{path}.route"))
        problems += _check_workflow(path, auth.submitted_by, auth.approved, known,
                                    delegation=True)
    return problems


def checked(session: Session, bundle: Bundle | Mapping[str, Any]) -> Bundle:
    """The bundle, loaded and valid against the database; InvalidInput with every problem."""
    loaded = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    problems = validate(session, loaded)
    if problems:
        raise InvalidInput(problems)
    return loaded
