"""Routes of consent: the staff JSON API, staff console pages, and the public JWKS."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from consent import eligibility, people, receipts, rules, service
from consent.models import (
    Channel,
    ChildView,
    ConsentRecord,
    Person,
    Receipt,
    Relation,
    Restriction,
    UnsuitableMark,
)
from consent.rules import CapacityPolicy
from consent.schemas import (
    ConsentIn,
    ConsentPublic,
    EventPublic,
    GuardianPublic,
    MarkIn,
    MarkPublic,
    NoticeIn,
    NoticeItemIn,
    NoticePublic,
    NoticeRecipientIn,
    PersonCandidate,
    PersonPublic,
    PersonSearchIn,
    ReceiptPublic,
    ReconfirmationPublic,
    ReconfirmIn,
    RestrictionIn,
    RestrictionPublic,
    WithdrawIn,
)
from core import auth, messages
from core.auth import Principal
from core.clock import local_day, utcnow
from core.dates import date_reason, parse_date
from core.models import Role
from core.policies import policy as configured
from core.reasons import DomainError, InvalidInput, Reason
from core.routes import TodoItem, TodoPanel
from core.web import FormDep, SessionDep, api_staff, console_staff, public, render

STAFF_ROLES = (Role.privacy_officer, Role.support_worker)
Staff = Annotated[Principal, Depends(api_staff(*STAFF_ROLES))]
Officer = Annotated[Principal, Depends(api_staff(Role.privacy_officer))]
ConsoleStaff = Annotated[Principal, Depends(console_staff(*STAFF_ROLES))]
ConsoleOfficer = Annotated[Principal, Depends(console_staff(Role.privacy_officer))]

api_router = APIRouter(prefix="/api/consent", tags=["consent"])
console_router = APIRouter(prefix="/consent")
# The receipts' JWKS, on both faces: residents and staff verify receipts.
shared_router = APIRouter()


# ---------------------------------------------------------------- output helpers


def person_public(session: Session, person: Person) -> PersonPublic:
    today = local_day(utcnow())

    def link(person_id: str, relation: Any, proof: str, since: Any, until: Any
             ) -> GuardianPublic:
        other = session.get(Person, person_id)
        return GuardianPublic(person_id=person_id, name=other.name if other else "",
                              relation=relation, proof_ref=proof, valid_from=since,
                              valid_until=until)

    return PersonPublic(
        id=person.id, atena_no=person.atena_no, name=person.name, kana=person.kana,
        birth_date=person.birth_date, age=configured(CapacityPolicy).age(person.birth_date, today),
        sex=str(person.sex),
        guardians=[link(g.guardian_id, g.relation, g.proof_ref, g.valid_from, g.valid_until)
                   for g in people.guardianships(session, person.id)],
        children=[link(g.child_id, g.relation, g.proof_ref, g.valid_from, g.valid_until)
                  for g in people.wards(session, person.id)],
    )


def consent_public(session: Session, record: ConsentRecord) -> ConsentPublic:
    scopes = service.scopes_of(session, record.id)
    return ConsentPublic(
        **record.model_dump(include={
            "id", "schema_version", "principal_id", "given_by_id", "authority_proof",
            "child_age_at_event", "child_view_reason", "purpose_id", "notice_id",
            "legal_route", "language", "given_at", "valid_until", "withdrawn_at",
            "withdrawal_method"}),
        relation=str(record.relation), child_view=str(record.child_view),
        collection_method=str(record.collection_method), state=str(record.state),
        item_ids=sorted({s.item_id for s in scopes}),
        recipients=sorted({s.recipient for s in scopes}),
        events=[EventPublic(id=e.id or 0, type=str(e.type), at=e.at, person_id=e.person_id,
                            staff_id=e.staff_id, channel=str(e.channel),
                            evidence_ref=e.evidence_ref)
                for e in service.events_of(session, record.id)],
        receipt_ids=[r.id for r in receipts.receipts_of(session, record.id)],
    )


def notice_public(session: Session, notice_id: int) -> NoticePublic:
    notice = service.get_notice(session, notice_id)
    return NoticePublic(
        **notice.model_dump(include={"key", "version", "purpose_id", "title_ja", "title_en",
                                     "text_ja", "text_en", "withdrawal_method_ja",
                                     "validity_days", "first_shown_at"}),
        id=notice.id or 0,
        items=[NoticeItemIn(item_id=i.item_id, label_ja=i.label_ja, label_en=i.label_en,
                            optional=i.optional)
               for i in service.notice_items(session, notice_id)],
        recipients=[NoticeRecipientIn(recipient=r.recipient, label_ja=r.label_ja,
                                      label_en=r.label_en, optional=r.optional)
                    for r in service.notice_recipients(session, notice_id)],
    )


def receipt_public(receipt: Receipt) -> ReceiptPublic:
    return ReceiptPublic(id=receipt.id, record_id=receipt.record_id,
                         issued_at=receipt.issued_at, key_id=receipt.key_id, jws=receipt.jws,
                         receipt=receipts.verify(receipt.jws))


def restriction_public(r: Restriction) -> RestrictionPublic:
    return RestrictionPublic(id=r.id or 0, person_id=r.person_id, purpose_id=r.purpose_id,
                             source=str(r.source), source_ref=r.source_ref, reason=r.reason,
                             valid_from=r.valid_from, valid_until=r.valid_until,
                             lifted_at=r.lifted_at)


def mark_public(m: UnsuitableMark) -> MarkPublic:
    return MarkPublic(id=m.id or 0, person_id=m.person_id, purpose_id=m.purpose_id,
                      reason=m.reason, marked_by=m.marked_by, marked_at=m.marked_at,
                      lifted_at=m.lifted_at)


def _pdf(content: bytes, name: str) -> Response:
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


# ---------------------------------------------------------------- both faces: the JWKS


@shared_router.get("/.well-known/jwks.json", dependencies=[Depends(public())])
def jwks() -> JSONResponse:
    """The public key that verifies consent receipts (JWS, ES256)."""
    return JSONResponse(auth.receipt_jwks(), headers={"Cache-Control": "public, max-age=300"})


# ---------------------------------------------------------------- JSON API


def candidate(person: Person) -> PersonCandidate:
    return PersonCandidate(id=person.id, name=person.name, birth_date=person.birth_date,
                           age=configured(CapacityPolicy).age(person.birth_date,
                                                              local_day(utcnow())))


@api_router.post("/persons/search", response_model=list[PersonCandidate])
def api_find(body: PersonSearchIn, principal: Staff,
             session: SessionDep) -> list[PersonCandidate]:
    # POST: a name or 宛名番号 in a URL would reach access logs and browser history.
    return [candidate(p)
            for p in people.find_persons(session, principal, atena_no=body.atena_no,
                                         name=body.name, birth_date=body.birth_date)]


@api_router.get("/persons/{person_id}", response_model=PersonPublic)
def api_person(person_id: str, principal: Staff, session: SessionDep) -> PersonPublic:
    return person_public(session, people.view_person(session, principal, person_id))


@api_router.get("/persons/{person_id}/consents", response_model=list[ConsentPublic])
def api_history(person_id: str, principal: Staff, session: SessionDep) -> list[ConsentPublic]:
    return [consent_public(session, r)
            for r in service.read_history(session, principal, person_id)]


@api_router.get("/persons/{person_id}/restrictions", response_model=list[RestrictionPublic])
def api_restrictions(person_id: str, principal: Staff,
                     session: SessionDep) -> list[RestrictionPublic]:
    return [restriction_public(r)
            for r in service.read_restrictions(session, principal, person_id)]


@api_router.get("/persons/{person_id}/unsuitable", response_model=list[MarkPublic])
def api_marks(person_id: str, principal: Officer, session: SessionDep) -> list[MarkPublic]:
    return [mark_public(m) for m in service.unsuitable_marks(session, principal, person_id)]


@api_router.post("/persons/{person_id}/unsuitable", response_model=MarkPublic, status_code=201)
def api_mark(person_id: str, body: MarkIn, principal: Officer,
             session: SessionDep) -> MarkPublic:
    return mark_public(service.mark_unsuitable(session, principal, person_id, body.reason,
                                               body.purpose_id))


@api_router.post("/unsuitable/{mark_id}/lift", response_model=MarkPublic)
def api_lift_mark(mark_id: int, principal: Officer, session: SessionDep) -> MarkPublic:
    return mark_public(service.lift_unsuitable(session, principal, mark_id))


@api_router.post("/notices", response_model=NoticePublic, status_code=201)
def api_create_notice(body: NoticeIn, principal: Officer, session: SessionDep) -> NoticePublic:
    notice = service.create_notice(session, principal, body)
    return notice_public(session, notice.id or 0)


@api_router.get("/notices/{notice_id}", response_model=NoticePublic)
def api_notice(notice_id: int, principal: Staff, session: SessionDep) -> NoticePublic:
    return notice_public(session, notice_id)


@api_router.post("/notices/{notice_id}/shown", response_model=NoticePublic)
def api_notice_shown(notice_id: int, principal: Officer, session: SessionDep) -> NoticePublic:
    service.mark_notice_shown(session, principal, notice_id)
    return notice_public(session, notice_id)


@api_router.post("/records", response_model=ConsentPublic, status_code=201)
def api_record(body: ConsentIn, principal: Staff, session: SessionDep) -> ConsentPublic:
    if body.channel == Channel.online:
        raise InvalidInput(Reason.of("core.invalid_request", field="channel", where="channel",
                                     detail="staff enter paper or counter consent"))
    record, _receipt = service.record_consent(session, principal, body)
    return consent_public(session, record)


@api_router.get("/records/{record_id}", response_model=ConsentPublic)
def api_show_record(record_id: str, principal: Staff, session: SessionDep) -> ConsentPublic:
    return consent_public(session, service.read_record(session, principal, record_id))


@api_router.post("/records/{record_id}/withdraw", response_model=ConsentPublic)
def api_withdraw(record_id: str, body: WithdrawIn, principal: Staff,
                 session: SessionDep) -> ConsentPublic:
    record, _receipt = service.withdraw(session, principal, record_id, body)
    return consent_public(session, record)


@api_router.post("/records/{record_id}/reconfirm", response_model=ConsentPublic)
def api_reconfirm(record_id: str, body: ReconfirmIn, principal: Staff,
                  session: SessionDep) -> ConsentPublic:
    record, _receipt = service.reconfirm(session, principal, record_id, body.child_view,
                                         body.child_view_reason, body.channel,
                                         body.evidence_ref)
    return consent_public(session, record)


@api_router.get("/reconfirmations", response_model=list[ReconfirmationPublic])
def api_reconfirmations(principal: Staff, session: SessionDep) -> list[ReconfirmationPublic]:
    return [ReconfirmationPublic(**r.__dict__) for r in eligibility.reconfirmation_due(session)]


@api_router.get("/receipts/{receipt_id}", response_model=ReceiptPublic)
def api_receipt(receipt_id: str, principal: Staff, session: SessionDep) -> ReceiptPublic:
    return receipt_public(service.read_receipt(session, principal, receipt_id))


@api_router.get("/receipts/{receipt_id}/pdf")
def api_receipt_pdf(receipt_id: str, principal: Staff, session: SessionDep) -> Response:
    return _pdf(receipts.pdf(session, service.read_receipt(session, principal, receipt_id)),
                f"consent-receipt-{receipt_id}.pdf")


@api_router.post("/restrictions", response_model=RestrictionPublic, status_code=201)
def api_restrict(body: RestrictionIn, principal: Officer,
                 session: SessionDep) -> RestrictionPublic:
    return restriction_public(service.add_restriction(session, principal, body))


@api_router.post("/restrictions/{restriction_id}/lift", response_model=RestrictionPublic)
def api_lift(restriction_id: int, principal: Officer,
             session: SessionDep) -> RestrictionPublic:
    return restriction_public(service.lift_restriction(session, principal, restriction_id))


# ---------------------------------------------------------------- console pages


def _is_officer(principal: Principal) -> bool:
    return principal.has_role(Role.privacy_officer)


@console_router.get("")
def console_search_page(request: Request, principal: ConsoleStaff) -> Response:
    return render(request, "consent/search.html", {
        "atena_no": "", "name": "", "birth_date": "", "found": [], "reasons": [],
        "searched": False, "limit": rules.SEARCH_LIMIT, "full_record": False})


@console_router.post("")
def console_search(request: Request, principal: ConsoleStaff, session: SessionDep,
                   form: FormDep) -> Response:
    # The search form posts (CSRF-checked by console_staff): names and 宛名番号 never travel
    # in the URL, so never into access logs, Referer headers or browser history.
    atena_no = str(form.get("atena_no") or "")[:32]
    name = str(form.get("name") or "")[:100]
    birth_text = str(form.get("birth_date") or "")[:32]
    birth_date = parse_date(birth_text) if birth_text.strip() else None
    found: list[PersonCandidate] = []
    reasons: list[Reason] = []
    if birth_text.strip() and birth_date is None:
        reasons = [date_reason(birth_text, field="birth_date") or Reason.of(
            "core.invalid_request", field="birth_date", where="birth_date", detail="date")]
    elif atena_no or name or birth_text:
        try:
            found = [candidate(p) for p in people.find_persons(
                session, principal, atena_no=atena_no or None, name=name or None,
                birth_date=birth_date)]
        except DomainError as error:
            reasons = error.reasons
    return render(request, "consent/search.html", {
        "atena_no": atena_no, "name": name, "birth_date": birth_text, "found": found,
        "reasons": reasons, "searched": bool(atena_no or name or birth_text) and not reasons,
        "limit": rules.SEARCH_LIMIT,
        "full_record": people.may_read_any(principal)})


def _person_page(request: Request, session: Session, principal: Principal, person_id: str,
                 reasons: list[Reason] | None = None, status_code: int = 200,
                 values: dict[str, Any] | None = None) -> Response:
    person = people.view_person(session, principal, person_id)
    records = [consent_public(session, r)
               for r in service.read_history(session, principal, person_id)]
    notices = service.shown_notices(session)
    return render(request, "consent/person.html", {
        "person": person_public(session, person), "records": records,
        "restrictions": service.read_restrictions(session, principal, person_id),
        "marks": (service.unsuitable_marks(session, principal, person_id)
                  if _is_officer(principal) else None),
        "notices": notices, "reasons": reasons or [], "values": values or {},
        "relations": list(Relation), "views": list(ChildView),
        "channels": [Channel.paper, Channel.counter],
    }, status_code=status_code)


@console_router.get("/persons/{person_id}")
def console_person(person_id: str, request: Request, principal: ConsoleStaff,
                   session: SessionDep) -> Response:
    return _person_page(request, session, principal, person_id)


@console_router.post("/persons/{person_id}/consents")
def console_record(person_id: str, request: Request, form: FormDep, principal: ConsoleStaff,
                         session: SessionDep) -> Response:
    values = {k: str(v) for k, v in form.items()}
    try:
        data = ConsentIn(
            principal_id=person_id, given_by_id=values.get("given_by_id") or None,
            relation=Relation(values.get("relation", "self")),
            authority_proof=values.get("authority_proof", ""),
            notice_id=int(values.get("notice_id") or 0),
            item_ids=[int(str(v)) for v in form.getlist("item_ids")],
            recipients=[str(v) for v in form.getlist("recipients")],
            child_view=ChildView(values["child_view"]) if values.get("child_view") else None,
            child_view_reason=values.get("child_view_reason", ""),
            channel=Channel(values.get("channel", "paper")),
            evidence_ref=values.get("evidence_ref", ""),
            decision="refused" if values.get("decision") == "refused" else "given")
        service.record_consent(session, principal, data)
    except (ValidationError, ValueError) as error:
        reason = Reason.of("core.invalid_request", where="form", detail=str(error)[:200])
        return _person_page(request, session, principal, person_id, [reason], 422, values)
    except DomainError as error:
        session.rollback()
        return _person_page(request, session, principal, person_id, error.reasons, 422, values)
    return RedirectResponse(f"/consent/persons/{person_id}", status_code=303)


@console_router.post("/records/{record_id}/withdraw")
def console_withdraw(record_id: str, request: Request, form: FormDep, principal: ConsoleStaff,
                           session: SessionDep) -> Response:
    record = service.get_record(session, record_id)
    try:
        service.withdraw(session, principal, record_id, WithdrawIn(
            by_person_id=str(form.get("by_person_id") or "") or None,
            channel=Channel(str(form.get("channel") or "paper")),
            evidence_ref=str(form.get("evidence_ref") or "")))
    except DomainError as error:
        session.rollback()
        return _person_page(request, session, principal, record.principal_id, error.reasons,
                            422)
    return RedirectResponse(f"/consent/persons/{record.principal_id}", status_code=303)


@console_router.post("/persons/{person_id}/unsuitable")
def console_mark(person_id: str, request: Request, form: FormDep, principal: ConsoleOfficer,
                       session: SessionDep) -> Response:
    purpose = str(form.get("purpose_id") or "").strip()
    try:
        service.mark_unsuitable(session, principal, person_id, str(form.get("reason") or ""),
                                int(purpose) if purpose.isdigit() else None)
    except DomainError as error:
        session.rollback()
        return _person_page(request, session, principal, person_id, error.reasons, 422)
    return RedirectResponse(f"/consent/persons/{person_id}", status_code=303)


@console_router.get("/receipts/{receipt_id}.pdf")
def console_receipt_pdf(receipt_id: str, principal: ConsoleStaff,
                        session: SessionDep) -> Response:
    return _pdf(receipts.pdf(session, service.read_receipt(session, principal, receipt_id)),
                f"consent-receipt-{receipt_id}.pdf")



# ---------------------------------------------------------------- home page


def todo_provider(session: Session, principal: Principal) -> list[TodoPanel]:
    """Consents to re-confirm because the child crossed an age threshold (staff of consent)."""
    if not principal.has_role(*STAFF_ROLES):
        return []
    due = eligibility.reconfirmation_due(session)
    if not due:
        return []
    items = [TodoItem(*messages.both("consent.todo_reconfirm", threshold=r.threshold,
                                     age=r.age),
                      f"/consent/persons/{r.principal_id}") for r in due[:20]]
    title_ja, title_en = messages.both("consent.todo_title", count=len(due))
    return [TodoPanel(title_ja, title_en, items)]
