"""JSON API of the centre: purposes, items, routes, four-condition authorisations, approvals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from core.auth import Principal
from core.models import Role
from core.web import SessionDep, api_staff
from governance import service
from governance.design import design_hash, design_of
from governance.models import Authorisation, Purpose, Route
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    AuthorisationPublic,
    CitationPublic,
    Decision,
    PurposeCreate,
    PurposeItemIn,
    PurposeItemPublic,
    PurposePublic,
    PurposeUpdate,
    RouteCreate,
    RoutePublic,
)

Staff = Annotated[Principal, Depends(api_staff())]
Drafter = Annotated[Principal, Depends(api_staff(*service.DRAFTERS))]
Officer = Annotated[Principal, Depends(api_staff(Role.privacy_officer))]

api_router = APIRouter(prefix="/api/governance", tags=["governance"])


def _route_public(session: Any, route: Route, purpose_key: str, to_key: str,
                  from_key: str) -> RoutePublic:
    return RoutePublic(
        key=route.key, purpose=purpose_key,
        items=[i.key for i in service.route_items(session, route)],
        from_organ=from_key, to=to_key, basis=route.basis, recurrence=route.recurrence,
        kind=route.kind, status=route.status, reasoning=route.reasoning,
        law_citation=route.law_citation,
    )


def purpose_public(session: Any, purpose: Purpose) -> PurposePublic:
    described = service.describe(session, purpose)
    return PurposePublic(
        key=purpose.key, version=purpose.version, status=purpose.status,
        title_ja=purpose.title_ja, title_en=purpose.title_en,
        purpose_text=purpose.purpose_text, necessity=purpose.necessity,
        citations=[CitationPublic(kind=c.kind, law_name=c.law_name, article=c.article,
                                  note=c.note) for c in described["citations"]],
        items=[PurposeItemPublic(item=item.key, name_ja=item.name_ja,
                                 file=file.key if file else "",
                                 holder_organ=organ.key if organ else "",
                                 necessity_reason=link.necessity_reason,
                                 relevance_to_difficulty=link.relevance_to_difficulty)
               for link, item, file, organ in described["items"]],
        routes=[_route_public(session, r["route"], purpose.key, r["to_key"], r["from"].key)
                for r in described["routes"]],
        design_hash=described["design_hash"],
        missing=[r.to_dict() for r in service.missing(session, purpose)],
    )


def _authorisation_public(session: Any, auth: Authorisation) -> AuthorisationPublic:
    route = session.get(Route, auth.route_id)
    return AuthorisationPublic(key=auth.key, route=route.key if route else "",
                               status=auth.status, valid_from=auth.valid_from,
                               valid_until=auth.valid_until, runs_allowed=auth.runs_allowed,
                               runs_used=auth.runs_used)


@api_router.get("/purposes", response_model=list[PurposePublic])
def list_purposes(principal: Staff, session: SessionDep) -> list[PurposePublic]:
    return [purpose_public(session, p) for p in service.list_purposes(session)]


@api_router.post("/purposes", response_model=PurposePublic, status_code=201)
def create_purpose(body: PurposeCreate, principal: Drafter, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, service.create_purpose(session, principal, body))


@api_router.get("/purposes/{key}", response_model=PurposePublic)
def show_purpose(key: str, principal: Staff, session: SessionDep) -> PurposePublic:
    return purpose_public(session, service.get_purpose(session, key))


@api_router.patch("/purposes/{key}", response_model=PurposePublic)
def update_purpose(key: str, body: PurposeUpdate, principal: Drafter, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, service.update_purpose(session, principal, key, body))


@api_router.put("/purposes/{key}/items", response_model=PurposePublic)
def set_item(key: str, body: PurposeItemIn, principal: Drafter, session: SessionDep
             ) -> PurposePublic:
    service.set_item(session, principal, key, body)
    return purpose_public(session, service.get_purpose(session, key))


@api_router.delete("/purposes/{key}/items/{item}", status_code=204)
def remove_item(key: str, item: str, principal: Drafter, session: SessionDep) -> Response:
    service.remove_item(session, principal, key, item)
    return Response(status_code=204)


@api_router.get("/purposes/{key}/usability")
def purpose_usability(key: str, principal: Staff, session: SessionDep) -> dict[str, Any]:
    result = service.usability(session, service.get_purpose(session, key))
    return {"usable": result.usable, "reasons": [r.to_dict() for r in result.reasons]}


@api_router.post("/purposes/{key}/submit", response_model=PurposePublic)
def submit_purpose(key: str, principal: Drafter, session: SessionDep) -> PurposePublic:
    return purpose_public(session, service.submit_purpose(session, principal, key))


@api_router.post("/purposes/{key}/approve", response_model=PurposePublic)
def approve_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                    ) -> PurposePublic:
    return purpose_public(session, service.approve_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/return", response_model=PurposePublic)
def return_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, service.return_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/suspend", response_model=PurposePublic)
def suspend_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                    ) -> PurposePublic:
    return purpose_public(session, service.suspend_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/resume", response_model=PurposePublic)
def resume_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, service.resume_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/retire", response_model=PurposePublic)
def retire_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, service.retire_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/revise", response_model=PurposePublic)
def revise_purpose(key: str, principal: Drafter, session: SessionDep) -> PurposePublic:
    return purpose_public(session, service.revise_purpose(session, principal, key))


@api_router.post("/purposes/{key}/routes", response_model=RoutePublic, status_code=201)
def create_route(key: str, body: RouteCreate, principal: Drafter, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, service.create_route(session, principal, key, body))


def _route_action(session: Any, route: Route) -> RoutePublic:
    purpose = service.get_purpose_by_id(session, route.purpose_id)
    described = next(r for r in service.describe(session, purpose)["routes"]
                     if r["route"].id == route.id)
    return _route_public(session, route, purpose.key, described["to_key"],
                         described["from"].key)


@api_router.post("/routes/{key}/submit", response_model=RoutePublic)
def submit_route(key: str, principal: Drafter, session: SessionDep) -> RoutePublic:
    return _route_action(session, service.submit_route(session, principal, key))


@api_router.post("/routes/{key}/approve", response_model=RoutePublic)
def approve_route(key: str, body: Decision, principal: Officer, session: SessionDep
                  ) -> RoutePublic:
    return _route_action(session, service.approve_route(session, principal, key, body))


@api_router.post("/routes/{key}/return", response_model=RoutePublic)
def return_route(key: str, body: Decision, principal: Officer, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, service.return_route(session, principal, key, body))


@api_router.post("/routes/{key}/revoke", response_model=RoutePublic)
def revoke_route(key: str, body: Decision, principal: Officer, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, service.revoke_route(session, principal, key, body))


@api_router.post("/authorisations", response_model=AuthorisationPublic, status_code=201)
def create_authorisation(body: AuthorisationCreate, principal: Drafter, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(session, service.create_authorisation(session, principal, body))


@api_router.put("/authorisations/{key}", response_model=AuthorisationPublic)
def update_authorisation(key: str, body: AuthorisationFields, principal: Drafter,
                         session: SessionDep) -> AuthorisationPublic:
    return _authorisation_public(
        session, service.update_authorisation(session, principal, key, body))


@api_router.post("/authorisations/{key}/submit", response_model=AuthorisationPublic)
def submit_authorisation(key: str, principal: Drafter, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(session, service.submit_authorisation(session, principal, key))


@api_router.post("/authorisations/{key}/approve", response_model=AuthorisationPublic)
def approve_authorisation(key: str, body: ApprovalIn, principal: Officer, session: SessionDep
                          ) -> AuthorisationPublic:
    return _authorisation_public(
        session, service.approve_authorisation(session, principal, key, body))


@api_router.post("/authorisations/{key}/return", response_model=AuthorisationPublic)
def return_authorisation(key: str, body: Decision, principal: Officer, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(
        session, service.return_authorisation(session, principal, key, body))


@api_router.get("/purposes/{key}/design")
def purpose_design(key: str, principal: Staff, session: SessionDep) -> dict[str, Any]:
    design = design_of(session, service.get_purpose(session, key))
    return {"design": design, "design_hash": design_hash(design)}
