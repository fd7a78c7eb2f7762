"""Computing and applying the changes a bundle asks for.

`plan` compares a bundle with the database and says, record by record, what applying it would
create, update or leave alone (and what it will not do, and why); `apply` carries the plan out
through the services, so every write is checked and audited like any other.

Rules of apply (docs/bundle.md):

- all or nothing: every problem of the bundle is collected with its path
  (`purposes[2].items[0].item`) before anything is written;
- structural records (organs, departments, outside bodies, accounts and role grants, files and
  items) apply directly; apply never deletes, revokes, retires or unpublishes anything, and says
  so where the bundle lacks something the database has. An organ, department, outside body or
  account is deactivated only where the bundle says `active: false` (after every other change,
  refused like any other deactivation while records in force still name it);
- accounts and role grants are created only with `--as` an administrator: a bundle that would
  create an account or grant a role without one is refused whole, naming each such record's path
  (`kodomo users create` on the server stays the operator's bootstrap);
- purposes, routes and authorisations are created or updated as drafts. A bundle's
  `submitted_by` is acted on only when the `--as` principal is that login, and its `approved` only
  when the `--as` principal is that approver; the submitter can never approve (separation of
  duties), so a record goes from draft to approved in two applies;
- the route kind is derived (never typed in): the bundle's `kind` is for review, and a mismatch
  with the derivation is an error;
- a submission or approval the service refuses (an incomplete purpose, no approved PIA, the
  repeat rule…) refuses the whole apply too, with the record's path: nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Any, Literal

from pydantic import BaseModel
from sqlmodel import Session, select

from core import audit
from core import service as core_service
from core.auth import Principal, active_grants
from core.models import Role, StaffAccount
from core.reasons import DomainError, InvalidInput, Reason
from governance import footing, purposes, rules
from governance.bundle.check import checked
from governance.bundle.export import current_bundle
from governance.bundle.format import (
    Approval,
    AuthorisationRecord,
    Bundle,
    DepartmentRecord,
    FileRecord,
    ItemRecord,
    OrganRecord,
    OutsideBodyRecord,
    PurposeRecord,
    RoleRecord,
    RouteRecord,
    StaffRecord,
    dump,
)
from governance.models import PurposeStatus, RecordStatus
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    Decision,
    PurposeCreate,
    PurposeUpdate,
    RouteCreate,
)
from registry import service as registry
from registry.schemas import FileCreate, FileFields, FileUpdate, ItemCreate, ItemFields, ItemUpdate

APPLY_REASON = "バンドルの適用 / bundle apply"
# Fields of purposes, routes and authorisations that are exported for review, never compared as
# content (the workflow fields are acted on by `--as`; the kind is derived).
REVIEW_FIELDS = frozenset({"status", "version", "submitted_by", "approved", "kind"})


Action = Literal["create", "update", "unchanged", "submit", "approve", "not_done"]
Run = Callable[[Session], str | None]


@dataclass(frozen=True)
class Change:
    """One line of the plan: what happens to one record, the fields that differ, and why not."""

    action: Action
    kind: str
    key: str
    fields: tuple[str, ...] = ()
    note: str = ""
    path: str = ""
    run: Run | None = dc_field(default=None, compare=False, repr=False)

    @property
    def writes(self) -> bool:
        return self.action in ("create", "update", "submit", "approve")

    def line(self) -> str:
        text = f"{self.action} {self.kind} {self.key}"
        if self.fields:
            text += f": {', '.join(self.fields)}"
        if self.note:
            text += f" — {self.note}"
        return text


def _differs(current: BaseModel, desired: BaseModel, exclude: Iterable[str] = (),
             optional: Iterable[str] = ()) -> tuple[str, ...]:
    """Fields whose values differ; `optional` fields left out (None) of the bundle are ignored."""
    skip = set(exclude)
    have = current.model_dump(mode="json")
    want = desired.model_dump(mode="json")
    return tuple(name for name in type(desired).model_fields
                 if name not in skip and not (name in optional and want[name] is None)
                 and have.get(name) != want[name])


def _not_done(kind: str, key: str, path: str, note: str, fields: tuple[str, ...] = ()) -> Change:
    return Change("not_done", kind, key, fields, note, path)


def _ordered_departments(records: list[DepartmentRecord]) -> list[tuple[int, DepartmentRecord]]:
    """Parents before their children (the bundle's order otherwise)."""
    pending = list(enumerate(records))
    placed: set[str] = set()
    inside = {d.key for d in records}
    ordered: list[tuple[int, DepartmentRecord]] = []
    while pending:
        ready = [(i, d) for i, d in pending
                 if d.parent is None or d.parent in placed or d.parent not in inside]
        if not ready:  # a cycle: leave it to the service to refuse
            ready = pending[:1]
        for entry in ready:
            ordered.append(entry)
            placed.add(entry[1].key)
            pending.remove(entry)
    return ordered


# The workflow of each kind of record; a one-off route has none of its own (see `routes`).
_TRANSITIONS: dict[str, Mapping[str, rules.Transition]] = {
    "purpose": rules.PURPOSE_TRANSITIONS,
    "route": rules.ROUTE_TRANSITIONS,
    "authorisation": rules.AUTHORISATION_TRANSITIONS,
}


def _allows(kind: str, action: str, status: str) -> bool:
    """The service's workflow allows `action` on a record of `kind` in `status`."""
    return rules.transition_problem(_TRANSITIONS[kind], action, status) is None


def _submit(session: Session, principal: Principal, kind: str, key: str) -> None:
    if kind == "purpose":
        purposes.submit_purpose(session, principal, key)
    elif kind == "route":
        footing.submit_route(session, principal, key)
    else:
        footing.submit_authorisation(session, principal, key)


def _approve(session: Session, principal: Principal, kind: str, key: str, approval: Approval
             ) -> None:
    if kind == "purpose":
        purposes.approve_purpose(session, principal, key, Decision(comment=approval.comment))
    elif kind == "route":
        footing.approve_route(session, principal, key, Decision(comment=approval.comment))
    else:
        footing.approve_authorisation(session, principal, key, ApprovalIn(
            comment=approval.comment, delegation_note=approval.delegation_note))


class _Planner:
    def __init__(self, session: Session, bundle: Bundle, actor: audit.Actor,
                 as_principal: Principal | None, as_login: str | None) -> None:
        self.session = session
        self.bundle = bundle
        self.actor = actor
        # Accounts and role grants are written as the administrator `--as` signed in as (apply
        # refuses them without one).
        self.admin_actor = (as_principal.actor(Role.admin)
                            if as_principal is not None and as_principal.has_role(Role.admin)
                            else actor)
        self.principal = as_principal
        self.as_login = as_principal.login if as_principal else as_login
        self.current = current_bundle(session)
        self.changes: list[Change] = []
        self.workflow: list[Change] = []
        # Run after every other change, last named first: accounts before the departments
        # they belong to, departments before their parents and their organ.
        self.deactivations: list[Change] = []

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def by_key(self, records: Sequence[Any], name: str = "key") -> dict[str, Any]:
        return {getattr(r, name): r for r in records}

    # -------------------------------------------------------- structure

    def municipality(self) -> None:
        wanted = self.bundle.municipality
        have = self.current.municipality
        if wanted is None:
            return
        if have is None:
            def run(session: Session) -> None:
                core_service.create_municipality(session, self.actor, key=wanted.key,
                                                 code=wanted.code, name_ja=wanted.name_ja,
                                                 name_en=wanted.name_en)
            self.add(Change("create", "municipality", wanted.key, path="municipality", run=run))
            return
        fields = _differs(have, wanted)
        if fields:
            self.add(_not_done("municipality", wanted.key, "municipality",
                               f"this deployment serves {have.key}; kept as it is", fields))
        else:
            self.add(Change("unchanged", "municipality", wanted.key, path="municipality"))

    def activation(self, kind: str, key: str, path: str, was_active: bool, want: bool | None,
                   run_set: Callable[[Session, bool], object]) -> bool:
        """Deactivate or reactivate where the bundle's `active` says so (omitted: as it is).
        Reactivation runs in place, before what the bundle creates under the record;
        deactivation after everything else, since the bundle may move what still names it."""
        if want is None or want == was_active:
            return False

        def run(session: Session) -> None:
            run_set(session, want)
        change = Change("update", kind, key, ("active",),
                        "reactivate" if want else "deactivate", f"{path}.active", run=run)
        if want:
            self.add(change)
        else:
            self.deactivations.append(change)
        return True

    def units(self, kind: str, section: str, records: Iterable[tuple[int, Any]],
              have: Mapping[str, Any], create: Callable[[Session, Any], None],
              update: Callable[[Session, Any, tuple[str, ...]], None],
              fixed: Mapping[str, str] | None = None) -> None:
        """Organs, departments and outside bodies: a missing one is created, a changed one
        updated, and deactivated or reactivated as its `active` says. `fixed` fields cannot
        change (a note says why)."""
        fixed = fixed or {}
        for i, record in records:
            path = f"{section}[{i}]"
            existing = have.get(record.key)
            if existing is None:
                def run_create(session: Session, r: Any = record) -> None:
                    create(session, r)
                self.add(Change("create", kind, record.key, path=path, run=run_create))
                was_active = True
                said = True
            else:
                fields = _differs(existing, record, exclude={"active", *fixed})
                said = bool(fields)
                for name, why in fixed.items():
                    if getattr(existing, name) != getattr(record, name):
                        self.add(_not_done(kind, record.key, f"{path}.{name}", why, (name,)))
                        said = True
                if fields:
                    def run_update(session: Session, r: Any = record,
                                   f: tuple[str, ...] = fields) -> None:
                        update(session, r, f)
                    self.add(Change("update", kind, record.key, fields, path=path,
                                    run=run_update))
                was_active = existing.active is not False
            def set_active(session: Session, active: bool, key: str = record.key) -> None:
                found = core_service.unit_by_key(session, kind, key)
                if active:
                    core_service.reactivate_unit(session, self.actor, found)
                else:
                    core_service.deactivate_unit(session, self.actor, found)
            toggled = self.activation(kind, record.key, path, was_active, record.active,
                                      set_active)
            if not (said or toggled):
                self.add(Change("unchanged", kind, record.key, path=path))

    def organs(self) -> None:
        def create(session: Session, record: OrganRecord) -> None:
            core_service.create_organ(session, self.actor, key=record.key, kind=record.kind,
                                      name_ja=record.name_ja, name_en=record.name_en)

        def update(session: Session, record: OrganRecord, fields: tuple[str, ...]) -> None:
            core_service.update_organ(session, self.actor, record.key, kind=record.kind,
                                      name_ja=record.name_ja, name_en=record.name_en)
        self.units("organ", "organs", enumerate(self.bundle.organs),
                   self.by_key(self.current.organs), create, update)

    def departments(self) -> None:
        def create(session: Session, record: DepartmentRecord) -> None:
            core_service.create_department(session, self.actor, key=record.key,
                                           organ_key=record.organ, name_ja=record.name_ja,
                                           name_en=record.name_en, parent_key=record.parent)

        def update(session: Session, record: DepartmentRecord, fields: tuple[str, ...]) -> None:
            if "parent" in fields:
                core_service.update_department(session, self.actor, record.key,
                                               name_ja=record.name_ja, name_en=record.name_en,
                                               parent_key=record.parent)
            else:
                core_service.update_department(session, self.actor, record.key,
                                               name_ja=record.name_ja, name_en=record.name_en)
        self.units("department", "departments", _ordered_departments(self.bundle.departments),
                   self.by_key(self.current.departments), create, update,
                   {"organ": "a department never moves to another organ (grants and files name "
                             "the pair); give the new department a new key"})

    def outside_bodies(self) -> None:
        def create(session: Session, record: OutsideBodyRecord) -> None:
            core_service.create_outside_body(session, self.actor, key=record.key,
                                             kind=record.kind, name_ja=record.name_ja,
                                             name_en=record.name_en,
                                             is_public_body=record.is_public_body)

        def update(session: Session, record: OutsideBodyRecord, fields: tuple[str, ...]
                   ) -> None:
            core_service.update_outside_body(session, self.actor, record.key, kind=record.kind,
                                             name_ja=record.name_ja, name_en=record.name_en,
                                             is_public_body=record.is_public_body)
        self.units("outside_body", "outside_bodies", enumerate(self.bundle.outside_bodies),
                   self.by_key(self.current.outside_bodies), create, update)

    def staff(self) -> None:
        """Accounts and role grants: every change of either is a Change of kind "account" or
        "role_grant" made here, and goes through core's create_account, change_account and
        grant_role."""
        have: dict[str, StaffRecord] = self.by_key(self.current.staff, "login")
        for i, record in enumerate(self.bundle.staff):
            path = f"staff[{i}]"
            existing = have.get(record.login)
            if existing is None:
                def create(session: Session, r: StaffRecord = record) -> str:
                    core_service.create_account(
                        session, self.admin_actor, login=r.login, display_name=r.display_name,
                        password=secrets.token_urlsafe(32), department_key=r.department)
                    return "created with a random password nobody knows: it cannot sign in " \
                           "until an administrator sets a password"
                self.add(Change("create", "account", record.login, path=path, run=create,
                                note="random password; cannot sign in until one is set"))
                granted: list[RoleRecord] = []
                was_active = True
                fields: tuple[str, ...] = ()
            else:
                fields = _differs(existing, record, exclude={"roles", "active"})
                if fields:
                    def update(session: Session, r: StaffRecord = record,
                               f: tuple[str, ...] = fields) -> None:
                        if "department" in f:
                            core_service.change_account(session, self.actor, r.login,
                                                        display_name=r.display_name,
                                                        department_key=r.department)
                        else:
                            core_service.change_account(session, self.actor, r.login,
                                                        display_name=r.display_name)
                    self.add(Change("update", "account", record.login, fields, path=path,
                                    run=update))
                granted = existing.roles
                was_active = existing.active is not False

            def set_active(session: Session, active: bool, login: str = record.login) -> None:
                core_service.change_account(session, self.actor, login, active=active)
            toggled = self.activation("account", record.login, path, was_active, record.active,
                                      set_active)
            if existing is not None and not fields and not toggled:
                self.add(Change("unchanged", "account", record.login, path=path))
            for j, role in enumerate(record.roles):
                name = f"{record.login}:{role.role.value}@{role.organ}" + (
                    f"/{role.department}" if role.department else "")
                if role in granted:
                    self.add(Change("unchanged", "role_grant", name, path=f"{path}.roles[{j}]"))
                    continue

                def grant(session: Session, r: RoleRecord = role, login: str = record.login
                          ) -> None:
                    core_service.grant_role(session, self.admin_actor, login=login, role=r.role,
                                            organ_key=r.organ, department_key=r.department)
                self.add(Change("create", "role_grant", name, path=f"{path}.roles[{j}]",
                                run=grant))
            for role in granted:
                if role not in record.roles:
                    name = f"{record.login}:{role.role.value}@{role.organ}" + (
                        f"/{role.department}" if role.department else "")
                    self.add(_not_done("role_grant", name, f"{path}.roles",
                                       "not in the bundle; kept (apply never revokes)"))

    def files(self) -> None:
        have: dict[str, FileRecord] = self.by_key(self.current.files)
        for i, record in enumerate(self.bundle.files):
            path = f"files[{i}]"
            existing = have.get(record.key)
            touched = False
            ceased = False
            if existing is None:
                data = record.model_dump(include={"key", *FileFields.model_fields})
                if data.get("held_since") is None:
                    data.pop("held_since")

                def create(session: Session, d: dict[str, Any] = data) -> None:
                    registry.create_file(session, self.actor,
                                         FileCreate.model_validate({**d, "reason": APPLY_REASON}))
                self.add(Change("create", "file", record.key, path=path, run=create))
                touched = True
                current_items: dict[str, ItemRecord] = {}
            else:
                file = registry.get_file(self.session, record.key)
                ceased = file.ceased_at is not None
                fields = _differs(existing, record, exclude={"items", "published"},
                                  optional={"held_since"})
                current_items = self.by_key(existing.items)
                if fields and ceased:
                    self.add(_not_done("file", record.key, path, "the file has ceased and "
                                       "cannot change", fields))
                elif fields:
                    changes = {name: getattr(record, name) for name in fields}

                    def update(session: Session, c: dict[str, Any] = changes,
                               key: str = record.key) -> None:
                        registry.update_file(session, self.actor, key, FileUpdate.model_validate(
                            {**c, "reason": APPLY_REASON}))
                    self.add(Change("update", "file", record.key, fields, path=path, run=update))
                    touched = True
                else:
                    self.add(Change("unchanged", "file", record.key, path=path))
            touched = self.items(record, path, current_items, ceased) or touched
            self.publication(record, path, existing, touched)

    def items(self, record: FileRecord, path: str, have: dict[str, ItemRecord],
              ceased: bool) -> bool:
        touched = False
        for j, item in enumerate(record.items):
            item_path = f"{path}.items[{j}]"
            existing = have.get(item.key)
            if existing is None:
                data = item.model_dump(include={"key", *ItemFields.model_fields})

                def add(session: Session, d: dict[str, Any] = data, file_key: str = record.key,
                        retire: bool = item.retired) -> None:
                    registry.add_item(session, self.actor, file_key,
                                      ItemCreate.model_validate({**d, "reason": APPLY_REASON}))
                    if retire:
                        registry.retire_item(session, self.actor, str(d["key"]), APPLY_REASON)
                self.add(Change("create", "item", item.key, path=item_path, run=add,
                                note="retired" if item.retired else ""))
                touched = True
                continue
            fields = _differs(existing, item, exclude={"retired"}, optional={"position"})
            retire = item.retired and not existing.retired
            if existing.retired and not item.retired:
                self.add(_not_done("item", item.key, item_path,
                                   "retired in the database; there is no operation to reinstate "
                                   "an item", ("retired",)))
            if (fields or retire) and ceased:
                self.add(_not_done("item", item.key, item_path, "the file has ceased",
                                   fields + (("retired",) if retire else ())))
            elif fields or retire:
                changes = {name: getattr(item, name) for name in fields}

                def update(session: Session, c: dict[str, Any] = changes, key: str = item.key,
                           retire: bool = retire) -> None:
                    if c:
                        registry.update_item(session, self.actor, key, ItemUpdate.model_validate(
                            {**c, "reason": APPLY_REASON}))
                    if retire:
                        registry.retire_item(session, self.actor, key, APPLY_REASON)
                self.add(Change("update", "item", item.key,
                                fields + (("retired",) if retire else ()), path=item_path,
                                run=update))
                touched = True
            elif not (existing.retired and not item.retired):
                self.add(Change("unchanged", "item", item.key, path=item_path))
        wanted = {i.key for i in record.items}
        for key, item in have.items():
            if key not in wanted and not item.retired:
                self.add(_not_done("item", key, f"{path}.items", "in the database but not in "
                                   "the bundle; kept (apply never retires items)"))
        return touched

    def publication(self, record: FileRecord, path: str, existing: FileRecord | None,
                    touched: bool) -> None:
        if not record.published:
            if existing is not None and existing.published:
                self.add(_not_done("entry", record.key, f"{path}.published",
                                   "published in the database; kept (apply never deletes an "
                                   "entry)"))
            return
        if existing is not None:
            file = registry.get_file(self.session, record.key)
            if file.ceased_at is not None:
                return
            what = registry.pending_change(self.session, file)
            if what is not None and not touched:
                self.add(_not_done("entry", record.key, f"{path}.published",
                                   f"a recorded change is pending ({what}); edit the file, then "
                                   "publish"))
                return
            if not touched and registry.has_live_entry(file) and not registry.is_stale(file):
                self.add(Change("unchanged", "entry", record.key, path=f"{path}.published"))
                return

        def publish(session: Session, key: str = record.key) -> None:
            registry.publish(session, self.actor, key, APPLY_REASON)
        self.add(Change("update" if existing is not None else "create", "entry", record.key,
                        ("published",), "publish the ファイル簿 entry", f"{path}.published",
                        run=publish))

    # -------------------------------------------------------- records that need approval

    def step(self, kind: str, key: str, path: str, status: str, submitted_by: str | None,
             approved: Approval | None) -> None:
        """Submission and approval: each only as the very login the bundle names."""
        principal = self.principal
        if _allows(kind, "submit", status):
            if submitted_by is None:
                if approved is not None:
                    self.workflow.append(_not_done(kind, key, path, f"stays {status}: an approval "
                                                   "without submitted_by cannot be recorded"))
                return
            if self.as_login != submitted_by:
                self.workflow.append(_not_done(
                    kind, key, path, f"stays {status}: submitted_by is {submitted_by}; apply "
                    f"with --as {submitted_by} to submit it"))
                return

            def run_submit(session: Session) -> None:
                assert principal is not None
                _submit(session, principal, kind, key)
            self.workflow.append(Change("submit", kind, key, note=f"as {submitted_by}",
                                        path=path, run=run_submit))
            if approved is not None:
                self.workflow.append(_not_done(
                    kind, key, path, f"stays submitted: the approval by {approved.by} needs "
                    f"another apply with --as {approved.by} (the submitter cannot approve)"))
            return
        if approved is not None and _allows(kind, "approve", status):
            if self.as_login != approved.by:
                self.workflow.append(_not_done(
                    kind, key, path, f"stays submitted: the approval by {approved.by} is "
                    f"recorded only with --as {approved.by}"))
                return

            def run_approve(session: Session) -> None:
                assert principal is not None
                assert approved is not None
                _approve(session, principal, kind, key, approved)
            self.workflow.append(Change("approve", kind, key, note=f"by {approved.by}",
                                        path=path, run=run_approve))

    def purposes(self) -> None:
        have: dict[str, PurposeRecord] = self.by_key(self.current.purposes)
        for i, record in enumerate(self.bundle.purposes):
            path = f"purposes[{i}]"
            existing = have.get(record.key)
            status: str
            if existing is None:
                def create(session: Session, r: PurposeRecord = record) -> None:
                    purposes.create_purpose(session, self.actor, PurposeCreate.model_validate(
                        r.model_dump(include=set(PurposeCreate.model_fields))))
                    for link in r.items:
                        purposes.set_item(session, self.actor, r.key, link)
                self.add(Change("create", "purpose", record.key, path=path, run=create,
                                note="as a draft"))
                status = PurposeStatus.draft
            else:
                status = existing.status or PurposeStatus.draft
                fields = self.purpose_differs(existing, record)
                if not fields:
                    self.add(Change("unchanged", "purpose", record.key, path=path))
                elif not (_allows("purpose", "edit", status)
                          or _allows("purpose", "revise", status)):
                    self.add(_not_done("purpose", record.key, path, f"it is {status}; it cannot "
                                       "change until it is returned (or revised)", fields))
                else:
                    revise = _allows("purpose", "revise", status)

                    def update(session: Session, r: PurposeRecord = record,
                               f: tuple[str, ...] = fields, revise: bool = revise,
                               old: PurposeRecord = existing) -> None:
                        if revise:
                            purposes.revise_purpose(session, self.actor, r.key)
                        simple = set(f) - {"items"}
                        if simple:
                            purposes.update_purpose(session, self.actor, r.key,
                                               PurposeUpdate.model_validate(
                                                   r.model_dump(include=simple)))
                        if "items" in f:
                            before = {x.item: x for x in old.items}
                            for link in r.items:
                                if before.get(link.item) != link:
                                    purposes.set_item(session, self.actor, r.key, link)
                            for gone in set(before) - {x.item for x in r.items}:
                                purposes.remove_item(session, self.actor, r.key, gone)
                    note = (f"revised to version {(existing.version or 1) + 1} as a draft; it "
                            "needs approval again") if revise else ""
                    self.add(Change("update", "purpose", record.key, fields, note, path,
                                    run=update))
                    if revise:
                        status = PurposeStatus.draft
            self.step("purpose", record.key, path, status, record.submitted_by, record.approved)

    @staticmethod
    def purpose_differs(current: PurposeRecord, desired: PurposeRecord) -> tuple[str, ...]:
        def normal(record: PurposeRecord) -> PurposeRecord:
            return record.model_copy(update={
                "subjects": sorted(record.subjects,
                                   key=lambda s: (s.organ, s.department or "", s.role.value)),
                "items": sorted(record.items, key=lambda x: x.item),
                "job_kinds": sorted(set(record.job_kinds)),
            })
        return _differs(normal(current), normal(desired), REVIEW_FIELDS)

    def routes(self) -> None:
        have: dict[str, RouteRecord] = self.by_key(self.current.routes)
        self.skipped_routes: set[str] = set()
        for i, record in enumerate(self.bundle.routes):
            path = f"routes[{i}]"
            existing = have.get(record.key)
            if existing is None:
                if record.status == RecordStatus.revoked:
                    self.skipped_routes.add(record.key)
                    self.add(_not_done("route", record.key, path, "revoked in the bundle; "
                                       "not created"))
                    continue

                def create(session: Session, r: RouteRecord = record) -> None:
                    footing.create_route(session, self.actor, r.purpose, RouteCreate.model_validate(
                        r.model_dump(include=set(RouteCreate.model_fields))))
                self.add(Change("create", "route", record.key, path=path, run=create,
                                note="as a draft"))
                status: str = RecordStatus.draft
            else:
                status = existing.status or RecordStatus.draft
                fields = _differs(existing.model_copy(update={"items": sorted(existing.items)}),
                                  record.model_copy(update={"items": sorted(record.items)}),
                                  REVIEW_FIELDS)
                self.add(_not_done("route", record.key, path, "governance has no operation to "
                                   "change a route; give the new footing a new key", fields)
                         if fields else Change("unchanged", "route", record.key, path=path))
            kind = existing.kind if existing else record.kind
            if kind is not None and rules.is_one_off(kind):
                continue  # submitted and approved through its authorisation
            self.step("route", record.key, path, status, record.submitted_by, record.approved)

    def authorisations(self) -> None:
        have: dict[str, AuthorisationRecord] = self.by_key(self.current.authorisations)
        for i, record in enumerate(self.bundle.authorisations):
            path = f"authorisations[{i}]"
            existing = have.get(record.key)
            if existing is None:
                if record.status == RecordStatus.revoked or record.route in self.skipped_routes:
                    self.add(_not_done("authorisation", record.key, path,
                                       "revoked in the bundle; not created"))
                    continue

                def create(session: Session, r: AuthorisationRecord = record) -> None:
                    footing.create_authorisation(session, self.actor,
                                             AuthorisationCreate.model_validate(r.model_dump(
                                                 include=set(AuthorisationCreate.model_fields))))
                self.add(Change("create", "authorisation", record.key, path=path, run=create,
                                note="as a draft"))
                status: str = RecordStatus.draft
            else:
                status = existing.status or RecordStatus.draft
                fields = _differs(existing, record, REVIEW_FIELDS)
                if not fields:
                    self.add(Change("unchanged", "authorisation", record.key, path=path))
                elif not _allows("authorisation", "edit", status):
                    self.add(_not_done("authorisation", record.key, path, f"it is {status}; an "
                                       "authorisation changes only as a draft (give a new "
                                       "authorisation a new key)", fields))
                else:
                    def update(session: Session, r: AuthorisationRecord = record) -> None:
                        footing.update_authorisation(session, self.actor, r.key,
                                                 AuthorisationFields.model_validate(r.model_dump(
                                                     include=set(AuthorisationFields.model_fields))))
                    self.add(Change("update", "authorisation", record.key, fields, path=path,
                                    run=update))
            self.step("authorisation", record.key, path, status, record.submitted_by,
                      record.approved)

    def run(self) -> list[Change]:
        self.municipality()
        self.organs()
        self.departments()
        self.outside_bodies()
        self.staff()
        self.files()
        self.purposes()
        self.routes()
        self.authorisations()
        return self.changes + self.deactivations[::-1] + self.workflow


# Records only an administrator creates or changes through a bundle (accounts and role grants).
ADMIN_KINDS = frozenset({"account", "role_grant"})


def _is_admin(session: Session, login: str | None, principal: Principal | None) -> bool:
    """Whether `--as` is an administrator: the signed-in principal when there is one, else (a
    dry run, which never signs in) the login's active grants."""
    if principal is not None:
        return principal.has_role(Role.admin)
    if login is None:
        return False
    account = session.exec(select(StaffAccount).where(StaffAccount.login == login)).first()
    return account is not None and account.id is not None and any(
        g.role == Role.admin for g in active_grants(session, account.id))


def _require_admin_for_accounts(session: Session, changes: Sequence[Change],
                                login: str | None, principal: Principal | None) -> None:
    """Refuse the whole bundle, naming every path, when it would create an account or grant a
    role and `--as` is not an administrator."""
    needing = [c for c in changes if c.kind in ADMIN_KINDS and c.writes]
    if needing and not _is_admin(session, login, principal):
        raise InvalidInput([Reason.of("governance.bundle_needs_admin", field=c.path,
                                      what=c.kind, key=c.key) for c in needing])


def plan(session: Session, bundle: Bundle | Mapping[str, Any], as_login: str | None = None
         ) -> list[Change]:
    """What applying the bundle would do, record by record (reads only).

    `as_login` is the login `--as` would authenticate: it decides which submissions and approvals
    the bundle asks for would be carried out. InvalidInput (every problem, with its path) when
    the bundle is not valid.
    """
    loaded = checked(session, bundle)
    changes = _Planner(session, loaded, audit.SYSTEM, None, as_login).run()
    _require_admin_for_accounts(session, changes, as_login, None)
    return changes


def _at(error: DomainError, path: str) -> DomainError:
    reasons = [replace(r, field=f"{path}.{r.field}" if r.field else path) for r in error.reasons]
    return type(error)(reasons)


def apply(session: Session, actor: audit.Actor, bundle: Bundle | Mapping[str, Any],
          approver: Principal | None = None) -> list[Change]:
    """Apply the bundle in the caller's transaction: all of it, or (on any error) none of it.

    `actor` writes the records (the CLI's is the system, as for every other import); `approver`
    is the principal `--as` authenticated, who submits or approves exactly what the bundle says
    that login submits or approves. Accounts and role grants need `approver` to be an
    administrator (else InvalidInput naming every such path, before anything is written). Any
    refusal by a service — a record it will not write, a submission or approval it will not take
    — is raised with the record's path, and the caller rolls everything back. Never commits.
    """
    loaded = checked(session, bundle)
    changes = _Planner(session, loaded, actor, approver, None).run()
    _require_admin_for_accounts(session, changes, None, approver)
    done: list[Change] = []
    for change in changes:
        if change.run is None:
            done.append(change)
            continue
        where = change.path or change.key
        if change.action == "submit":
            where += ".submitted_by"
        elif change.action == "approve":
            where += ".approved"
        try:
            note = change.run(session)
        except DomainError as error:
            raise _at(error, where) from error
        session.flush()
        done.append(replace(change, note=note) if note else change)
    counts: dict[str, int] = {}
    for change in done:
        counts[change.action] = counts.get(change.action, 0) + 1
    if any(c.writes for c in done):
        digest = hashlib.sha256(json.dumps(dump(loaded), sort_keys=True, ensure_ascii=False)
                                .encode()).hexdigest()
        audit.append(session, "governance.bundle_applied",
                     actor=approver.actor() if approver else actor,
                     details={"bundle_sha256": digest, **{k: counts[k] for k in sorted(counts)}})
    return done


def summary(changes: Sequence[Change]) -> str:
    counts = {action: 0 for action in ("create", "update", "submit", "approve", "unchanged",
                                       "not_done")}
    for change in changes:
        counts[change.action] += 1
    return ", ".join(f"{counts[a]} {a.replace('_', ' ')}" for a in counts)
