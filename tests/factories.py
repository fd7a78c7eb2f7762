"""Builders of test data shared by the test folders: principals, purposes and routes, complete
PIAs, register files, consent worlds, key pairs and settings switches.

A plain module (neither a test module nor a conftest): fixtures stay in the conftest.py files,
and tests and fixtures import these builders from here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlmodel import Session, col, select

from consent import eligibility as consent_eligibility
from consent import importer
from consent import people as consent_people
from consent import service as consent
from consent.models import ChildView, ConsentRecord, Notice, Person, Relation
from consent.schemas import ConsentIn, NoticeIn, NoticeItemIn, NoticeRecipientIn
from core import audit
from core.auth import Principal, principal_for
from core.clock import utcnow
from core.models import StaffAccount
from core.reasons import DomainError
from core.settings import Settings
from governance import assessment, footing, purposes, views
from governance.models import Basis, Recurrence, Route
from governance.schemas import Citation, Decision, PurposeCreate, PurposeItemIn, RouteCreate
from pia import service as pia
from pia.models import Assessment, Level, Residual, SelfRating, Stage
from pia.schemas import MeasureIn, ProcedureIn, RiskIn
from registry import service as registry
from registry.models import RegistryFile
from registry.schemas import FileCreate, ItemCreate

# ---------------------------------------------------------------- staff and refusals


def who(db: Session, login: str) -> Principal:
    """The principal of a staff account (of the demo city) as the service sees it."""
    account = db.exec(select(StaffAccount).where(StaffAccount.login == login)).one()
    return principal_for(db, account)


def codes(error: DomainError) -> list[str]:
    """The reason codes of a refusal, in order."""
    return [r.code for r in error.reasons]


# ---------------------------------------------------------------- purposes and routes


def draft_purpose(db: Session, key: str = "trial") -> None:
    """A complete draft purpose `key` (of the analyst, for the mayor), with three items; the
    public notice and safeguards of the demo's child abuse prevention purpose."""
    analyst = who(db, "analyst")
    source = views.describe(db, purposes.get_purpose(db, "child_abuse_prevention"))
    purposes.create_purpose(
        db,
        analyst,
        PurposeCreate(
            key=key,
            title_ja="試行",
            purpose_text="試行の目的",
            necessity="必要",
            handling_extraction="抽出",
            handling_matching_key="キー",
            handling_logic="ルール",
            handling_result_viewers="担当",
            handling_human_assessment="会議",
            job_kinds=["linkage", "scoring", "statistics", "export"],
            safeguards=source["purpose"].safeguards and json.loads(source["purpose"].safeguards),
            public_notice=json.loads(source["purpose"].public_notice),
            subjects_rule={"min_age": 0, "max_age": 17},
            citations=[Citation(kind="statute", law_name="児童福祉法", article="第10条")],
            subjects=[
                {"organ": "mayor", "role": role}
                for role in ("overall", "holding", "analysis", "use")
            ],
        ),
    )
    for item in ("seiho.kind", "kenshin.unattended", "shukketsu.days_absent"):
        purposes.set_item(
            db,
            analyst,
            key,
            PurposeItemIn(item=item, necessity_reason="必要", relevance_to_difficulty="関連"),
        )


def one_off_route(db: Session, purpose: str = "trial", key: str = "r1") -> Route:
    """A one-off route of the purpose: days absent (board of education) to the mayor."""
    return footing.create_route(
        db,
        who(db, "analyst"),
        purpose,
        RouteCreate(
            key=key,
            items=["shukketsu.days_absent"],
            to_organ="mayor",
            basis=Basis.one_off,
            recurrence=Recurrence.one_off,
        ),
    )


# ---------------------------------------------------------------- PIAs


def pia_risk(version: int, **change: object) -> RiskIn:
    """One rated risk with a measure, for the PIA at `version`; `change` overrides fields."""
    data: dict[str, object] = {
        "version": version, "stage": Stage.use, "title": "不正に使用されるリスク",
        "likelihood": 1, "impact": 4, "self_rating": SelfRating.sufficient,
        "residual": Residual.low, "measures": [MeasureIn(text="アクセスを役割で制限する")],
    }
    data.update(change)
    return RiskIn.model_validate(data)


def complete_pia(db: Session, purpose_key: str, author: str = "privacy") -> Assessment:
    """Open a PIA of the purpose's current design and fill in everything its level needs."""
    by = who(db, author)
    purpose = purposes.get_purpose(db, purpose_key)
    # Carry on with a draft in progress (as the demo leaves one), else open a new PIA.
    opened = pia.in_progress(db, purpose.id or 0) or assessment.open_pia(db, by, purpose_key)
    assert opened.id is not None
    for old_risk, _measures in pia.risks_of(db, opened):  # the draft's own, possibly unrated
        pia.delete_risk(db, by, opened.id, old_risk.id or 0, opened.version)
        db.refresh(opened)
    snapshot = pia.loads(opened.snapshot)
    current = pia.save_threshold(db, by, opened.id, opened.version,
                                 pia.suggested_threshold(snapshot))
    for section, (_, fields) in pia.FORM_SECTIONS.items():
        current = pia.save_section(db, by, opened.id, current.version, section,
                                   {name: f"{label}の記入" for name, label in fields})
    keys = [i["key"] for i in snapshot["context"]["items"]]
    pia.add_risk(db, by, opened.id, pia_risk(current.version, items=keys))
    db.refresh(current)
    now = utcnow()
    return pia.save_procedure(db, by, opened.id, ProcedureIn(
        version=current.version, comment_start=now - timedelta(days=40),
        comment_end=now - timedelta(days=5), third_party_body="個人情報保護審議会",
        third_party_opinion="適当である", conclusion="受容可能"))


def approve_pia(db: Session, purpose_key: str, author: str = "privacy",
                approver: str = "privacy2") -> Assessment:
    """A PIA approved against the purpose's current design (the whole workflow)."""
    filled = complete_pia(db, purpose_key, author)
    by = who(db, author)
    current = assessment.submit_pia(db, by, purpose_key, filled.version)
    assert current.id is not None
    if current.level == Level.full:
        current = pia.start_public_comment(db, by, current.id, current.version)
        current = pia.to_third_party(db, by, current.id or 0, current.version)
    assert current.id is not None
    return pia.approve(db, who(db, approver), current.id, current.version,
                       accept_residual_risk=True, comment="承認")


def carers_in_force(db: Session) -> Assessment:
    """The demo's young-carers purpose in force: the PIA of its design with the submitted
    consent route approved, then the route (approving a route needs that PIA first)."""
    approved = approve_pia(db, "young_carers_outreach")
    footing.approve_route(db, who(db, "privacy"), "carers.consent",
                          Decision(comment="同意がある者に限り提供する"))
    return approved


# ---------------------------------------------------------------- the register


def complete_file(session: Session, key: str, persons: int = 1500, *,
                  at: datetime | None = None, items: int = 2, **fields: Any) -> RegistryFile:
    """A file with every statutory item filled in, and `items` data items."""
    data: dict[str, Any] = dict(
        key=key, name=f"テストファイル{key}", organ="mayor", department="child_family",
        purpose=f"{key}の利用目的", record_scope=f"{key}の記録範囲",
        collection_method=f"{key}の収集方法", regular_recipients="なし",
        request_office_name="若葉台市総務課", request_office_address="若葉台市一丁目1番1号",
        special_procedure=False, file_type="computer", persons_count=persons,
    )
    data.update(fields)
    file = registry.create_file(session, audit.SYSTEM, FileCreate.model_validate(data), at=at)
    for number in range(1, items + 1):
        registry.add_item(session, audit.SYSTEM, file, ItemCreate(
            key=f"{key}.item{number}", name_ja=f"{key}項目{number}"), at=at)
    return file


# ---------------------------------------------------------------- consent

SHOWN = datetime(2026, 4, 1, tzinfo=UTC)
AT = datetime(2026, 6, 1, 3, tzinfo=UTC)  # 12:00 in Tokyo


@dataclass
class World:
    """A purpose, its organ, two items to one recipient and a notice shown at SHOWN; builds
    people and their consent, and asks who is eligible (the consent tests' `world` fixture)."""

    session: Session
    purpose_id: int
    organ_id: int
    items: list[int]
    recipient: str
    notice: Notice

    @property
    def flows(self) -> list[tuple[int, str]]:
        return [(i, self.recipient) for i in self.items]

    def people(self, *rows: dict[str, str]) -> dict[str, str]:
        """Import rows (atena_no, birth_date, parents, minor_guardian); returns atena -> id."""
        header = list(importer.COLUMNS)
        lines = [",".join(header)]
        for row in rows:
            values = {"family_name": "試験", "given_name": row["atena_no"][-4:],
                      "family_kana": "シケン", "given_kana": "タロウ", "sex": "9",
                      "parent_proof": "戸籍謄本" if row.get("parent1_atena_no") else "",
                      "minor_guardian_proof": "審判書" if row.get("minor_guardian_atena_no")
                      else "", **row}
            lines.append(",".join(values.get(h, "") for h in header))
        importer.import_bytes(self.session, audit.SYSTEM, "\n".join(lines).encode(),
                              at=SHOWN)
        found = {a: consent_people.person_by_atena(self.session, a) for a in (r["atena_no"]
                                                                         for r in rows)}
        return {a: p.id for a, p in found.items() if p is not None}

    def family(self, child_birth: str, parents: int = 2, guardian: bool = False
               ) -> tuple[str, list[str]]:
        """A child with `parents` 親権者 (or one 未成年後見人); returns (child id, guardian ids)."""
        tag = secrets.token_hex(4).upper()
        adults = [{"atena_no": f"T{tag}A{n}", "birth_date": "1980-01-01"}
                  for n in range(1, (1 if guardian else parents) + 1)]
        child: dict[str, str] = {"atena_no": f"T{tag}C", "birth_date": child_birth}
        if guardian:
            child["minor_guardian_atena_no"] = adults[0]["atena_no"]
        else:
            for n, adult in enumerate(adults, start=1):
                child[f"parent{n}_atena_no"] = adult["atena_no"]
        ids = self.people(*adults, child)
        return ids[child["atena_no"]], [ids[a["atena_no"]] for a in adults]

    def give(self, child: str, giver: str | None = None, *, relation: Relation | None = None,
             at: datetime = SHOWN, view: ChildView | None = ChildView.assent,
             items: list[int] | None = None, recipients: list[str] | None = None,
             notice: Notice | None = None) -> ConsentRecord:
        record, _receipt = consent.record_consent(self.session, audit.SYSTEM, ConsentIn(
            principal_id=child, given_by_id=giver,
            relation=relation or (Relation.parent if giver else Relation.self_),
            notice_id=(notice or self.notice).id or 0, item_ids=items or self.items,
            recipients=recipients or [self.recipient], child_view=view, at=at))
        return record

    def eligible(self, ids: list[str], at: datetime = AT,
                 flows: list[tuple[int, str]] | None = None, **kwargs: object) -> set[str]:
        query = consent_eligibility.eligible(self.session, self.purpose_id,
                                 self.flows if flows is None else flows,
                                 consent_eligibility.literal_population(ids), at, **kwargs)  # type: ignore[arg-type]
        return set(self.session.exec(query).all())  # type: ignore[call-overload]

    def why(self, person: str, at: datetime = AT, **kwargs: object) -> list[str]:
        found = consent_eligibility.why_excluded(self.session, person, self.purpose_id,
                                                 self.flows, at, **kwargs)  # type: ignore[arg-type]
        return [r.code for r in found]


def make_notice(session: Session, purpose_id: int, organ_id: int, items: list[int],
                recipient: str, *, optional: int | None = None, shown: bool = True) -> Notice:
    """A consent notice of the purpose for `items` to `recipient`, shown at SHOWN unless not."""
    notice = consent.create_notice(session, audit.SYSTEM, NoticeIn(
        key=f"test.{secrets.token_hex(3)}", purpose_id=purpose_id,
        controller_organ_id=organ_id, title_ja="試験の同意", text_ja="試験の説明",
        withdrawal_method_ja="窓口で撤回できます",
        items=[NoticeItemIn(item_id=i, label_ja=f"項目{i}", optional=i == optional)
               for i in items],
        recipients=[NoticeRecipientIn(recipient=recipient, label_ja="若葉台市長")]))
    if shown:
        consent.mark_notice_shown(session, audit.SYSTEM, notice.id or 0, at=SHOWN)
    return notice


# ---------------------------------------------------------------- settings and key pairs

UseEnv = Callable[..., Settings]
"""The `use_env` fixture: set (or, with None, unset) KODOMO_* variables, reload the settings."""


@dataclass(frozen=True)
class KeyPair:
    algorithm: str
    private_pem: bytes
    public_pem: bytes
    private_file: Path
    public_file: Path

    def env(self) -> dict[str, str | None]:
        return {
            "KODOMO_JWT_ALGORITHM": self.algorithm,
            "KODOMO_JWT_PRIVATE_KEY_FILE": str(self.private_file),
            "KODOMO_JWT_PUBLIC_KEY_FILE": str(self.public_file),
        }


def write_key_pair(
    directory: Path, algorithm: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> KeyPair:
    """Write the key's PEM files (PKCS8 private, SubjectPublicKeyInfo public) into `directory`."""
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_file = directory / f"jwt-{algorithm.lower()}-private.pem"
    public_file = directory / f"jwt-{algorithm.lower()}-public.pem"
    private_file.write_bytes(private_pem)
    public_file.write_bytes(public_pem)
    return KeyPair(algorithm, private_pem, public_pem, private_file, public_file)


def assign_cases(db: Session, login: str) -> None:
    """Stand in for the support ledger: cases of three people are assigned to `login`.

    The hook list is global: callers reset it (monkeypatch `consent.people._case_assignments`).
    """
    ids = list(db.exec(select(Person.id).order_by(col(Person.id)).limit(3)).all()) or ["p-x"]

    def source(session: Session, principal: Principal) -> set[str]:
        return set(ids) if principal.login == login else set()
    consent_people.register_case_assignments(source)
