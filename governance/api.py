"""The centre's JSON API: purposes, items, routes, authorisations, their PIA steps, the gate
and jobs. Every route names who may call it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from core.auth import Principal
from core.models import Role
from core.schemas import ReasonPublic
from core.web import SessionDep, api_staff
from governance import approvals, assessment, footing, gate, jobs, purposes, views
from governance.design import DESIGN_FORMAT, design_hash, design_of, job_kinds_of
from governance.models import Authorisation, Purpose, Route
from governance.rules import JobKind, identified_roles
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    AuthorisationPublic,
    CitationPublic,
    Decision,
    DecisionPublic,
    JobPublic,
    JobRequestIn,
    JobSubmitted,
    KindUsabilityPublic,
    PurposeCreate,
    PurposeItemIn,
    PurposeItemPublic,
    PurposePiaPublic,
    PurposePublic,
    PurposeUpdate,
    RouteCreate,
    RoutePublic,
    UsabilityPublic,
)

Staff = Annotated[Principal, Depends(api_staff())]
Drafter = Annotated[Principal, Depends(api_staff(*approvals.DRAFTERS))]
Officer = Annotated[Principal, Depends(api_staff(Role.privacy_officer))]


api_router = APIRouter(prefix="/api/governance", tags=["governance"])


def _route_public(session: Any, route: Route, purpose_key: str, to_key: str,
                  from_key: str) -> RoutePublic:
    return RoutePublic(
        key=route.key, purpose=purpose_key,
        items=[i.key for i in footing.route_items(session, route)],
        from_organ=from_key, to=to_key, basis=route.basis, recurrence=route.recurrence,
        kind=route.kind, status=route.status, reasoning=route.reasoning,
        law_citation=route.law_citation,
    )


def purpose_public(session: Any, purpose: Purpose) -> PurposePublic:
    described = views.describe(session, purpose)
    return PurposePublic(
        key=purpose.key, version=purpose.version, status=purpose.status,
        title_ja=purpose.title_ja, title_en=purpose.title_en,
        purpose_text=purpose.purpose_text, necessity=purpose.necessity,
        job_kinds=[JobKind(k) for k in job_kinds_of(purpose)],
        citations=[CitationPublic(kind=c.kind, law_name=c.law_name, article=c.article,
                                  note=c.note) for c in described["citations"]],
        items=[PurposeItemPublic(item=item.key, name_ja=item.name_ja,
                                 file=file.key if file else "",
                                 holder_organ=organ.key if organ else "",
                                 necessity_reason=link.necessity_reason,
                                 relevance_to_difficulty=link.relevance_to_difficulty,
                                 identified_for=sorted(identified_roles(link.identified_for)))
               for link, item, file, organ in described["items"]],
        routes=[_route_public(session, r["route"], purpose.key, r["to_key"], r["from"].key)
                for r in described["routes"]],
        design_hash=described["design_hash"],
        missing=[r.to_dict() for r in purposes.missing(session, purpose)],
    )


def _authorisation_public(session: Any, auth: Authorisation) -> AuthorisationPublic:
    route = session.get(Route, auth.route_id)
    return AuthorisationPublic(key=auth.key, route=route.key if route else "",
                               status=auth.status, valid_from=auth.valid_from,
                               valid_until=auth.valid_until, runs_allowed=auth.runs_allowed,
                               runs_used=auth.runs_used)


@api_router.get("/purposes", response_model=list[PurposePublic])
def list_purposes(principal: Staff, session: SessionDep) -> list[PurposePublic]:
    return [purpose_public(session, p) for p in purposes.list_purposes(session)]


@api_router.post("/purposes", response_model=PurposePublic, status_code=201)
def create_purpose(body: PurposeCreate, principal: Drafter, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.create_purpose(session, principal, body))


@api_router.get("/purposes/{key}", response_model=PurposePublic)
def show_purpose(key: str, principal: Staff, session: SessionDep) -> PurposePublic:
    return purpose_public(session, purposes.get_purpose(session, key))


@api_router.patch("/purposes/{key}", response_model=PurposePublic)
def update_purpose(key: str, body: PurposeUpdate, principal: Drafter, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.update_purpose(session, principal, key, body))


@api_router.put("/purposes/{key}/items", response_model=PurposePublic)
def set_item(key: str, body: PurposeItemIn, principal: Drafter, session: SessionDep
             ) -> PurposePublic:
    purposes.set_item(session, principal, key, body)
    return purpose_public(session, purposes.get_purpose(session, key))


@api_router.delete("/purposes/{key}/items/{item}", status_code=204)
def remove_item(key: str, item: str, principal: Drafter, session: SessionDep) -> Response:
    purposes.remove_item(session, principal, key, item)
    return Response(status_code=204)


@api_router.get("/purposes/{key}/usability", response_model=UsabilityPublic)
def purpose_usability(key: str, principal: Staff, session: SessionDep) -> UsabilityPublic:
    """Whether each kind of job could run on the purpose today, by the gate's own evaluation."""
    result = gate.usability(session, purposes.get_purpose(session, key))
    return UsabilityPublic(
        usable=result.usable,
        kinds=[KindUsabilityPublic(kind=k.kind.value, usable=k.usable,
                                   reasons=[ReasonPublic(**r.to_dict()) for r in k.reasons])
               for k in result.kinds],
        reasons=[ReasonPublic(**r.to_dict()) for r in result.reasons])


@api_router.post("/purposes/{key}/submit", response_model=PurposePublic)
def submit_purpose(key: str, principal: Drafter, session: SessionDep) -> PurposePublic:
    return purpose_public(session, purposes.submit_purpose(session, principal, key))


@api_router.post("/purposes/{key}/approve", response_model=PurposePublic)
def approve_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                    ) -> PurposePublic:
    return purpose_public(session, purposes.approve_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/return", response_model=PurposePublic)
def return_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.return_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/suspend", response_model=PurposePublic)
def suspend_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                    ) -> PurposePublic:
    return purpose_public(session, purposes.suspend_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/resume", response_model=PurposePublic)
def resume_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.resume_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/retire", response_model=PurposePublic)
def retire_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.retire_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/revise", response_model=PurposePublic)
def revise_purpose(key: str, principal: Drafter, session: SessionDep) -> PurposePublic:
    return purpose_public(session, purposes.revise_purpose(session, principal, key))


@api_router.post("/purposes/{key}/routes", response_model=RoutePublic, status_code=201)
def create_route(key: str, body: RouteCreate, principal: Drafter, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, footing.create_route(session, principal, key, body))


def _route_action(session: Any, route: Route) -> RoutePublic:
    purpose = purposes.get_purpose_by_id(session, route.purpose_id)
    described = next(r for r in views.describe(session, purpose)["routes"]
                     if r["route"].id == route.id)
    return _route_public(session, route, purpose.key, described["to_key"],
                         described["from"].key)


@api_router.post("/routes/{key}/submit", response_model=RoutePublic)
def submit_route(key: str, principal: Drafter, session: SessionDep) -> RoutePublic:
    return _route_action(session, footing.submit_route(session, principal, key))


@api_router.post("/routes/{key}/approve", response_model=RoutePublic)
def approve_route(key: str, body: Decision, principal: Officer, session: SessionDep
                  ) -> RoutePublic:
    return _route_action(session, footing.approve_route(session, principal, key, body))


@api_router.post("/routes/{key}/return", response_model=RoutePublic)
def return_route(key: str, body: Decision, principal: Officer, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, footing.return_route(session, principal, key, body))


@api_router.post("/routes/{key}/revoke", response_model=RoutePublic)
def revoke_route(key: str, body: Decision, principal: Officer, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, footing.revoke_route(session, principal, key, body))


@api_router.post("/authorisations", response_model=AuthorisationPublic, status_code=201)
def create_authorisation(body: AuthorisationCreate, principal: Drafter, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(session, footing.create_authorisation(session, principal, body))


@api_router.put("/authorisations/{key}", response_model=AuthorisationPublic)
def update_authorisation(key: str, body: AuthorisationFields, principal: Drafter,
                         session: SessionDep) -> AuthorisationPublic:
    return _authorisation_public(
        session, footing.update_authorisation(session, principal, key, body))


@api_router.post("/authorisations/{key}/submit", response_model=AuthorisationPublic)
def submit_authorisation(key: str, principal: Drafter, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(session, footing.submit_authorisation(session, principal, key))


@api_router.post("/authorisations/{key}/approve", response_model=AuthorisationPublic)
def approve_authorisation(key: str, body: ApprovalIn, principal: Officer, session: SessionDep
                          ) -> AuthorisationPublic:
    return _authorisation_public(
        session, footing.approve_authorisation(session, principal, key, body))


@api_router.post("/authorisations/{key}/return", response_model=AuthorisationPublic)
def return_authorisation(key: str, body: Decision, principal: Officer, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(
        session, footing.return_authorisation(session, principal, key, body))


@api_router.get("/purposes/{key}/design")
def purpose_design(key: str, principal: Staff, session: SessionDep) -> dict[str, Any]:
    """The design in force (approved routes) and the next design (drafts included)."""
    purpose = purposes.get_purpose(session, key)
    in_force = design_of(session, purpose, in_force=True)
    following = design_of(session, purpose)
    return {"design": in_force, "design_hash": design_hash(in_force),
            "next_design": following, "next_design_hash": design_hash(following),
            "pending": design_hash(following) != design_hash(in_force),
            "design_format": DESIGN_FORMAT}


gate_api_router = APIRouter(prefix="/api", tags=["gate"])


def _job_request(body: JobRequestIn, principal: Principal, *, explain: bool) -> gate.JobRequest:
    return gate.JobRequest(kind=gate.JobKind(body.kind), purpose=body.purpose, items=body.items,
                           principal=principal, recipient_organ=body.to_organ,
                           recipient_body=body.to_body, at=body.at if explain else None,
                           params=body.params)


@gate_api_router.post("/gate/explain", response_model=DecisionPublic)
def gate_explain(body: JobRequestIn, principal: Staff, session: SessionDep) -> DecisionPublic:
    """The decision a job would get; not recorded, because it is not a decision."""
    decision = gate.explain(session, _job_request(body, principal, explain=True))
    return DecisionPublic.model_validate(decision.to_dict())


@gate_api_router.post("/jobs", status_code=201, response_model=JobSubmitted, responses={
    403: {"description": "Refused by the gate: every reason, and the recorded decision"}})
def submit_job(body: JobRequestIn, principal: Staff, session: SessionDep) -> Response:
    decision, job = jobs.submit(session, _job_request(body, principal, explain=False))
    if job is None:
        # Answer instead of raising, so the recorded refusal is committed with the request.
        return JSONResponse({"error": {"code": "gate.refused",
                                       "reasons": [r.to_dict() for r in decision.reasons]},
                             "decision": decision.to_dict()}, status_code=403)
    return JSONResponse({"job": jsonable_encoder(jobs.describe(job)),
                         "decision": decision.to_dict()}, status_code=201)


@gate_api_router.get("/jobs", response_model=list[JobPublic])
def list_jobs(principal: Staff, session: SessionDep) -> list[JobPublic]:
    return [JobPublic.model_validate(jobs.describe(j)) for j in jobs.list_jobs(session)]


@gate_api_router.get("/jobs/{job_id}", response_model=JobPublic)
def show_job(job_id: int, principal: Staff, session: SessionDep) -> JobPublic:
    return JobPublic.model_validate(jobs.describe(jobs.get_job(session, job_id)))


@gate_api_router.post("/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: int, principal: Staff, session: SessionDep) -> JobPublic:
    return JobPublic.model_validate(jobs.describe(jobs.cancel(session, principal, job_id)))


@gate_api_router.post("/jobs/{job_id}/retry", response_model=JobPublic, responses={
    403: {"description": "Not the requester or a privacy officer; or refused by the gate "
                         "(every reason, and the recorded decision)"}})
def retry_job(job_id: int, principal: Staff, session: SessionDep) -> Response:
    """Queue a failed job to run again under its start decision (the requester or a privacy
    officer); the gate must find nothing job-level changed; no one-off run is used again."""
    job, decision, problems = jobs.retry(session, principal, job_id)
    if problems:
        # Answer instead of raising, so the recorded refusal is committed with the request.
        return JSONResponse({"error": {"code": "jobs.retry_refused",
                                       "reasons": [r.to_dict() for r in problems]},
                             "decision": decision.to_dict() if decision else None},
                            status_code=403)
    return JSONResponse(jsonable_encoder(JobPublic.model_validate(jobs.describe(job))))


pia_api_router = APIRouter(prefix="/api/governance/purposes", tags=["governance", "pia"])


class VersionIn(BaseModel):
    version: int = Field(ge=1)




@pia_api_router.get("/{key}/pia", response_model=PurposePiaPublic)
def api_pia_status(key: str, principal: Staff, session: SessionDep) -> PurposePiaPublic:
    """The fourth condition's link: the purpose's PIA, whether it is usable, what changed."""
    return PurposePiaPublic.model_validate(views.pia_status(session, key))


@pia_api_router.post("/{key}/pia", status_code=201)
def api_pia_open(key: str, principal: Officer, session: SessionDep) -> dict[str, Any]:
    opened = assessment.open_pia(session, principal, key)
    return {"id": opened.id, "version": opened.version, "status": opened.status,
            "design_hash": opened.design_hash}


@pia_api_router.post("/{key}/pia/submit")
def api_pia_submit(key: str, body: VersionIn, principal: Officer,
               session: SessionDep) -> dict[str, Any]:
    submitted = assessment.submit_pia(session, principal, key, body.version)
    return {"id": submitted.id, "version": submitted.version, "status": submitted.status,
            "design_hash": submitted.design_hash}
