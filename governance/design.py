"""A purpose version's design as canonical JSON, its SHA-256 (the design hash), the PIA snapshot."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from core.models import Department, Organ, OutsideBody
from governance.models import (
    Flow,
    Purpose,
    PurposeCitation,
    PurposeItem,
    PurposeSubject,
    RecordStatus,
    Route,
)
from governance.rules import DEFAULT_IDENTIFIED_FOR, identified_roles, parse_json_object
from registry.models import RegistryFile, RegistryItem

# The design's format. Each PIA stores the format of the design it approved and is compared
# with the design in that format, so an upgrade that adds to the design never makes an
# approved PIA stale. 1: the design before job kinds; 2: with the job kinds a purpose permits.
DESIGN_FORMAT = 2
DESIGN_FORMATS = (1, 2)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def design_hash(design: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(design).encode("utf-8")).hexdigest()


def _keys(session: Session, model: type, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows: Any = session.exec(select(model).where(col(model.id).in_(ids)))  # type: ignore[attr-defined]
    return {row.id: row.key for row in rows}


def purpose_items(session: Session, purpose: Purpose
                  ) -> list[tuple[PurposeItem, RegistryItem]]:
    """The purpose's items with their register items, in key order."""
    rows = session.exec(
        select(PurposeItem, RegistryItem)
        .join(RegistryItem, col(RegistryItem.id) == PurposeItem.item_id)
        .where(PurposeItem.purpose_id == purpose.id)
        .order_by(col(RegistryItem.key))
    ).all()
    return [(link, item) for link, item in rows]


@dataclass(frozen=True)
class PurposeParts:
    """A purpose's records, read once and shared by completeness, the design and the gate."""

    citations: list[PurposeCitation]
    subjects: list[PurposeSubject]
    items: list[tuple[PurposeItem, RegistryItem]]
    routes: list[Route]  # every route, revoked ones included
    flows: list[Flow]  # the flows of the routes that are not revoked

    @property
    def live_routes(self) -> list[Route]:
        return [r for r in self.routes if r.status != RecordStatus.revoked]

    @property
    def approved_routes(self) -> list[Route]:
        return [r for r in self.routes if r.status == RecordStatus.approved]

    @property
    def pending_routes(self) -> list[Route]:
        """Drafts, submitted and returned routes: part of the next design, not in force."""
        return [r for r in self.routes
                if r.status not in (RecordStatus.approved, RecordStatus.revoked)]


def read_parts(session: Session, purpose: Purpose) -> PurposeParts:
    assert purpose.id is not None
    routes = list(session.exec(select(Route).where(Route.purpose_id == purpose.id)
                               .order_by(col(Route.key))).all())
    live = [r.id for r in routes if r.status != RecordStatus.revoked and r.id is not None]
    return PurposeParts(
        citations=list(session.exec(
            select(PurposeCitation).where(PurposeCitation.purpose_id == purpose.id)).all()),
        subjects=list(session.exec(
            select(PurposeSubject).where(PurposeSubject.purpose_id == purpose.id)).all()),
        items=purpose_items(session, purpose),
        routes=routes,
        flows=(list(session.exec(select(Flow).where(col(Flow.route_id).in_(live))).all())
               if live else []),
    )


def job_kinds_of(purpose: Purpose) -> list[str]:
    """The job kinds the purpose's handling method permits, sorted (canonical JSON list)."""
    value = json.loads(purpose.job_kinds or "[]")
    return sorted({str(v) for v in value}) if isinstance(value, list) else []


def design_of(session: Session, purpose: Purpose,
              parts: PurposeParts | None = None, *, in_force: bool = False,
              design_format: int = DESIGN_FORMAT) -> dict[str, Any]:
    """What a PIA assesses: never authorisation ids, windows, run counters or register facts.

    `in_force`: the design the gate judges, with the approved routes only; otherwise the next
    design, with every route not revoked (drafts included), which a PIA re-assesses.
    `design_format`: the format to write it in (a PIA is compared in the format it approved).
    A caller that has read the purpose's parts already passes them; the design is the same.
    """
    if design_format not in DESIGN_FORMATS:
        raise ValueError(f"unknown design format {design_format}")
    parts = parts or read_parts(session, purpose)
    citations, subjects = parts.citations, parts.subjects
    routes = parts.approved_routes if in_force else parts.live_routes
    carried = {r.id for r in routes}
    flows = [f for f in parts.flows if f.route_id in carried]
    purpose_items = [link for link, _item in parts.items]
    known = {item.id: item.key for _link, item in parts.items if item.id is not None}
    item_ids = {p.item_id for p in purpose_items} | {f.item_id for f in flows}
    item_keys = {**known, **_keys(session, RegistryItem, item_ids - set(known))}
    organ_keys = _keys(
        session,
        Organ,
        {s.organ_id for s in subjects}
        | {r.from_organ_id for r in routes}
        | {r.to_organ_id for r in routes if r.to_organ_id is not None},
    )
    department_keys = _keys(
        session, Department, {s.department_id for s in subjects if s.department_id is not None}
    )
    body_keys = _keys(
        session, OutsideBody, {r.to_body_id for r in routes if r.to_body_id is not None}
    )
    routes_by_id = {r.id: r for r in routes}

    def recipient(route: Route) -> str:
        if route.to_organ_id is not None:
            return f"organ:{organ_keys[route.to_organ_id]}"
        assert route.to_body_id is not None
        return f"body:{body_keys[route.to_body_id]}"

    design: dict[str, Any] = {
        "purpose": purpose.key,
        "version": purpose.version,
        "title": purpose.title_ja,
        "text": purpose.purpose_text,
        "citations": sorted(
            ({"kind": c.kind, "law": c.law_name, "article": c.article} for c in citations),
            key=canonical_json,
        ),
        "necessity": purpose.necessity,
        "acquisition": purpose.acquisition_method,
        "handling": {
            "extraction": purpose.handling_extraction,
            "matching_key": purpose.handling_matching_key,
            "logic": purpose.handling_logic,
            "logic_version": purpose.handling_logic_version,
            "result_viewers": purpose.handling_result_viewers,
            "human_assessment": purpose.handling_human_assessment,
        },
        "safeguards": parse_json_object(purpose.safeguards),
        "subjects_rule": parse_json_object(purpose.subjects_rule),
        "items": sorted(item_keys[p.item_id] for p in purpose_items),
        **_identified_for(purpose_items, item_keys),
        "handling_subjects": sorted(
            (
                {
                    "organ": organ_keys[s.organ_id],
                    "department": department_keys.get(s.department_id or -1),
                    "role": s.role,
                }
                for s in subjects
            ),
            key=canonical_json,
        ),
        "flows": sorted(
            (
                {
                    "item": item_keys[f.item_id],
                    "from": organ_keys[routes_by_id[f.route_id].from_organ_id],
                    "to": recipient(routes_by_id[f.route_id]),
                    "route": routes_by_id[f.route_id].kind,
                }
                for f in flows
            ),
            key=canonical_json,
        ),
    }
    if design_format >= 2:
        design["job_kinds"] = job_kinds_of(purpose)
    return design


class DesignHashes:
    """A purpose's design hash in each format, computed once per format asked for.

    `accepted(format)` is what pia.status compares a PIA of that format with. Format 1 hashes
    were taken over every route not revoked, drafts included; such a PIA covers the design in
    force when it matches either the design in force or the whole design of that time.
    """

    def __init__(self, session: Session, purpose: Purpose, parts: PurposeParts | None,
                 in_force: bool) -> None:
        self._session, self._purpose, self._in_force = session, purpose, in_force
        self._parts = parts or read_parts(session, purpose)
        self._found: dict[tuple[int, bool], str] = {}

    def _hash(self, design_format: int, in_force: bool) -> str:
        key = (design_format, in_force)
        if key not in self._found:
            self._found[key] = design_hash(design_of(
                self._session, self._purpose, self._parts, in_force=in_force,
                design_format=design_format))
        return self._found[key]

    def of(self, design_format: int = DESIGN_FORMAT) -> str:
        return self._hash(design_format, self._in_force)

    def accepted(self, design_format: int) -> frozenset[str]:
        if design_format not in DESIGN_FORMATS:
            return frozenset()  # a format this service does not know never matches
        found = {self.of(design_format)}
        if design_format == 1 and self._in_force:
            found.add(self._hash(1, in_force=False))
        return frozenset(found)


def design_hasher(session: Session, purpose: Purpose, parts: PurposeParts | None = None, *,
                  in_force: bool) -> DesignHashes:
    """The hashes of the design in force (approved routes) or of the next design (drafts
    included), in every format."""
    return DesignHashes(session, purpose, parts, in_force)


def _identified_for(links: list[PurposeItem], item_keys: dict[int, str]
                    ) -> dict[str, dict[str, list[str]]]:
    """Who receives each item identified (LAW.md §10.5), part of the design. Only items opened
    beyond the default (their holder alone) are named, and the key is left out when there are
    none, so a design from before the field existed hashes as it did (no approved PIA goes
    stale on upgrade)."""
    opened = {item_keys[link.item_id]: sorted(str(r) for r in identified_roles(
        link.identified_for)) for link in links
        if identified_roles(link.identified_for) != DEFAULT_IDENTIFIED_FOR}
    return {"identified_for": opened} if opened else {}


def pia_snapshot(session: Session, purpose: Purpose) -> dict[str, Any]:
    """The design with its hash, plus register facts as context for the PIA's prefill."""
    design = design_of(session, purpose)
    items = session.exec(
        select(RegistryItem, RegistryFile)
        .join(RegistryFile, col(RegistryFile.id) == RegistryItem.file_id)
        .where(col(RegistryItem.key).in_(design["items"]))
    ).all()
    context = {
        "items": [
            {
                "key": item.key,
                "name_ja": item.name_ja,
                "category": item.category,
                "special_care": [s for s in item.special_care.split(",") if s],
                "ordinance_special_care": item.ordinance_special_care,
                "retention_class": item.retention_class,
                "file": file.key,
                "file_name": file.name,
                "persons_count": file.persons_count,
            }
            for item, file in sorted(items, key=lambda pair: pair[0].key)
        ]
    }
    return {"design": design, "design_hash": design_hash(design), "design_format": DESIGN_FORMAT,
            "context": context}


def current_design_hash(session: Session, purpose: Purpose) -> str:
    """The hash of the next design (drafts included): what a PIA of the purpose assesses."""
    return design_hash(design_of(session, purpose))


def in_force_design_hash(session: Session, purpose: Purpose) -> str:
    """The hash of the design in force (approved routes only): what the gate judges."""
    return design_hash(design_of(session, purpose, in_force=True))
