"""API and console routes of the governance PIA operations: open, submit, status, changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from core.auth import Principal
from core.models import Role
from core.reasons import DomainError
from core.web import SessionDep, api_staff, console_staff, record_refusal, render
from governance import assessment, design, purposes
from pia import service as pia

Reader = Annotated[Principal, Depends(api_staff())]
Officer = Annotated[Principal, Depends(api_staff(Role.privacy_officer))]
ConsoleReader = Annotated[Principal, Depends(console_staff(Role.privacy_officer, Role.auditor,
                                                           Role.analyst, Role.data_holder))]
ConsoleOfficer = Annotated[Principal, Depends(console_staff(Role.privacy_officer))]

api_router = APIRouter(prefix="/api/governance/purposes", tags=["governance", "pia"])
console_router = APIRouter(prefix="/purposes")


class VersionIn(BaseModel):
    version: int = Field(ge=1)


def _status(session: Any, key: str) -> dict[str, Any]:
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


@api_router.get("/{key}/pia")
def api_pia_status(key: str, principal: Reader, session: SessionDep) -> dict[str, Any]:
    """The fourth condition's link: the purpose's PIA, whether it is usable, what changed."""
    return _status(session, key)


@api_router.post("/{key}/pia", status_code=201)
def api_open(key: str, principal: Officer, session: SessionDep) -> dict[str, Any]:
    opened = assessment.open_pia(session, principal, key)
    return {"id": opened.id, "version": opened.version, "status": opened.status,
            "design_hash": opened.design_hash}


@api_router.post("/{key}/pia/submit")
def api_submit(key: str, body: VersionIn, principal: Officer,
               session: SessionDep) -> dict[str, Any]:
    submitted = assessment.submit_pia(session, principal, key, body.version)
    return {"id": submitted.id, "version": submitted.version, "status": submitted.status,
            "design_hash": submitted.design_hash}


def _page(request: Request, session: Any, key: str, reasons: list[Any] | None = None,
          status_code: int = 200) -> Response:
    purpose = purposes.get_purpose(session, key)
    assert purpose.id is not None
    return render(request, "pia/purpose_pia.html", {
        "purpose": purpose, "status": _status(session, key), "reasons": reasons or [],
        "pias": pia.of_purpose(session, purpose.id), "states": pia.STATE_LABELS,
        "labels": assessment.CHANGE_LABELS,
    }, status_code=status_code)


@console_router.get("/{key}/pia")
def console_pia(key: str, request: Request, principal: ConsoleReader,
                session: SessionDep) -> Response:
    return _page(request, session, key)


@console_router.post("/{key}/pia/open")
def console_open(key: str, request: Request, principal: ConsoleOfficer,
                 session: SessionDep) -> Response:
    try:
        opened = assessment.open_pia(session, principal, key)
    except DomainError as error:
        session.rollback()
        record_refusal(request, error)
        return _page(request, session, key, error.reasons, error.status_code)
    return RedirectResponse(f"/pia/{opened.id}", status_code=303)


@console_router.post("/{key}/pia/submit")
async def console_submit(key: str, request: Request, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    form = await request.form()
    try:
        version = int(str(form.get("version", "0")))
    except ValueError:
        version = 0
    try:
        submitted = assessment.submit_pia(session, principal, key, version)
    except DomainError as error:
        session.rollback()
        record_refusal(request, error)
        return _page(request, session, key, error.reasons, error.status_code)
    return RedirectResponse(f"/pia/{submitted.id}", status_code=303)
