"""Gate benchmark: decision latency without the population, and the population at job start.

    .venv/bin/python bench/gate.py [--residents 1000000] [--events 300000]
                                   [--restrictions 5000] [--explains 500]
                                   [--backend sqlite|postgres|both]

Set-up (timed and printed, not the figure), on a fresh migrated database per backend (SQLite in
a temporary directory; PostgreSQL created next to the test database and dropped afterwards):

- the demo city (organs, accounts, the 8 register files, the demo purposes and people), then
  through the services, as an officer would: register items up to 150 (files re-published where
  publication is required), purposes up to 30 (complete, submitted, approved), routes up to 500
  (one-off 69(2)(ii)/(iii) routes with four-condition authorisations, consent routes,
  within-purpose, 法令 and statistics routes), an approved PIA of each purpose's current design
  (inserted in the state `pia.service.status` accepts: approved, design hash of
  `design_of(...)`, residual risk accepted, review not due), then the authorisations approved;
- bulk-loaded (executemany on SQLite, COPY on PostgreSQL, never per-row ORM): --residents people
  of whom a fifth are children aged 0–17 and the rest adults (guardians and others), guardianship
  links (80 % two 親権者, 18 % one, 2 % a 未成年後見人), consent records with --events consent
  events for the consent flows of the population purpose (children under 16 by their guardians,
  16–17 by themselves; some withdrawn, some with the child's objection), --restrictions
  restrictions (most for the population purpose);
- ANALYZE on both backends, and VACUUM and CHECKPOINT on PostgreSQL, as autovacuum / a
  maintenance job / the checkpointer would have done by then.

The figures:

- `gate.explain` latency p50/p95 over --explains calls with random purposes, items (1–6,
  sometimes one not justified for the purpose), principals and job kinds; each call in a fresh
  session, as a request would be. explain is exactly check minus the audit append; `gate.check`
  p50/p95 is also given, each in its own transaction including the audit append and commit.
  Target: p95 ≤ 20 ms.
- `jobs.start` for a linkage job on the purpose whose subjects are the children aged 0–17 and
  whose job has consent flows: the gate again, then the population from
  `consent.eligibility.eligible` written with INSERT … SELECT (on PostgreSQL staged through a
  temporary table so that the query runs in parallel), its count and hash. Target: ≤ 2 s.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# bench.audit imports bench.sandbox first: a throwaway demo environment (data directory, keyring).
from alembic import command  # noqa: E402
from sqlalchemy import func  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from bench.audit import (  # noqa: E402
    backend_info,
    drop_database,
    machine,
    new_database,
    settle,
)
from bench.eligibility import Loader, load_consents  # noqa: E402
from consent import rules as consent_rules  # noqa: E402
from consent import service as consent  # noqa: E402
from consent.models import Person  # noqa: E402
from consent.schemas import NoticeIn, NoticeItemIn, NoticeRecipientIn  # noqa: E402
from core import audit  # noqa: E402
from core.ages import age_on, latest_birth_for_age  # noqa: E402
from core.auth import Principal, principal_for  # noqa: E402
from core.cli import alembic_config  # noqa: E402
from core.clock import local_day, utcnow  # noqa: E402
from core.db import make_engine, unit_of_work  # noqa: E402
from core.models import Organ, OutsideBody, StaffAccount  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.startup import prepare  # noqa: E402
from governance import design, footing, gate, jobs, purposes  # noqa: E402
from governance.demo import NOTICE, SAFEGUARDS  # noqa: E402
from governance.design import (  # noqa: E402
    DESIGN_FORMAT,
    canonical_json,
    design_hash,
    design_hasher,
    design_of,
    pia_snapshot,
)
from governance.models import (  # noqa: E402
    Basis,
    CitationKind,
    Purpose,
    PurposeStatus,
    RecordStatus,
    Recurrence,
    Route,
    SubjectRole,
)
from governance.schemas import (  # noqa: E402
    ApprovalIn,
    AuthorisationCreate,
    Citation,
    Decision,
    PurposeCreate,
    PurposeItemIn,
    RouteCreate,
    SubjectIn,
    SubjectsRule,
)
from pia import service as pia  # noqa: E402
from pia.models import Assessment, Level, State  # noqa: E402
from registry import service as registry  # noqa: E402
from registry.models import RegistryFile, RegistryItem  # noqa: E402
from registry.schemas import ItemCreate  # noqa: E402

LATENCY_TARGET_MS = 20.0
POPULATION_TARGET_S = 2.0
ITEMS, PURPOSES, ROUTES = 150, 30, 500
POPULATION_PURPOSE = "bench.p01"
PRINCIPALS = {  # login: weight in the random requests
    "analyst": 6, "support": 2, "holder": 1, "edu_holder": 1, "privacy": 1,
}
KINDS_BY_LOGIN = {
    "analyst": [gate.JobKind.linkage, gate.JobKind.scoring, gate.JobKind.statistics],
    "support": [gate.JobKind.export],
    "holder": [gate.JobKind.export],
    "edu_holder": [gate.JobKind.export],
    "privacy": list(gate.JobKind),
}
OK = Decision(comment="ベンチマークのため承認")


def _who(session: Session, login: str) -> Principal:
    account = session.exec(select(StaffAccount).where(StaffAccount.login == login)).one()
    return principal_for(session, account)


# ---------------------------------------------------------------- small records (services)


@dataclass
class World:
    mayor_id: int
    purposes: dict[str, list[str]] = field(default_factory=dict)  # key: item keys
    job_items: list[str] = field(default_factory=list)
    consent_flows: list[tuple[int, str]] = field(default_factory=list)
    notice_id: int = 0
    population_purpose_id: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _add_items(session: Session) -> None:
    """Register items up to ITEMS across the 8 files; re-publish what must be published."""
    files = list(session.exec(select(RegistryFile).order_by(col(RegistryFile.id))).all())
    have = len(session.exec(select(RegistryItem)).all())
    n = 0
    while have < ITEMS:
        file = files[n % len(files)]
        n += 1
        registry.add_item(session, audit.SYSTEM, file, ItemCreate(
            key=f"{file.key}.bench{n:03d}", name_ja=f"ベンチ項目{n}", name_en=f"Bench item {n}",
            category="other", retention_class="R0", retention_months=60,
            reason="ベンチマーク用の記録項目"))
        have += 1
    for file in files:
        if registry.publication_required(file):
            registry.publish(session, audit.SYSTEM, file, "記録項目の追加を公表（ベンチ）")


def _purpose(session: Session, drafter: Principal, officer: Principal, key: str, n: int,
             items: list[str]) -> None:
    purposes.create_purpose(session, drafter, PurposeCreate(
        key=key, title_ja=f"ベンチ利用目的{n}", title_en=f"Bench purpose {n}",
        purpose_text="複数部署の情報を突合し、支援を要するこどもと家庭を早期に把握して支援につなげる。",
        necessity="単独の部署の情報では支援の必要性に気付けないため、連携が必要である。",
        handling_extraction="各保有課が対象年齢のこどもの指定項目のみを抽出する",
        handling_matching_key="団体内統合宛名番号の鍵付きハッシュ",
        handling_logic="複数の兆候の組合せによる判定ルール", handling_logic_version=f"bench-{n}",
        job_kinds=list(gate.JobKind),
        handling_result_viewers="こども家庭課の支援担当者のみ",
        handling_human_assessment="判定結果は候補の提示にとどめ、職員が個別に判断する",
        safeguards=SAFEGUARDS, public_notice=NOTICE,
        subjects_rule=SubjectsRule(min_age=0, max_age=17),
        citations=[Citation(kind=CitationKind.statute, law_name="児童福祉法",
                            article="第10条第1項")],
        subjects=[
            SubjectIn(organ="mayor", department="general_affairs", role=SubjectRole.overall),
            SubjectIn(organ="mayor", department="welfare", role=SubjectRole.holding),
            SubjectIn(organ="mayor", department="child_family", role=SubjectRole.holding),
            SubjectIn(organ="board_of_education", department="school_affairs",
                      role=SubjectRole.holding),
            SubjectIn(organ="mayor", department="digital", role=SubjectRole.analysis),
            SubjectIn(organ="mayor", department="child_family", role=SubjectRole.use),
        ]))
    for item in items:
        purposes.set_item(session, drafter, key, PurposeItemIn(
            item=item, necessity_reason="支援の必要性の把握に必要",
            relevance_to_difficulty="困難の兆候となりうる"))
    purposes.submit_purpose(session, drafter, key)
    purposes.approve_purpose(session, officer, key, OK)


def _four_conditions(start: datetime, n: int) -> dict[str, Any]:
    return {
        "is_temporary": True,
        "temporary_reasoning": "今年度の試行として実施し、継続する場合は利用目的を変更する",
        "valid_from": start - timedelta(days=1), "valid_until": start + timedelta(days=150),
        "runs_allowed": 3,
        "within_necessary_extent": True,
        "necessity_reasoning": "利用目的で必要性を示した項目に限る",
        "substantial_reason": True, "substantial_reasoning": "こどもの生命・身体の保護に直結する",
        "recipient_task_citation": "児童福祉法第10条第1項",
        "no_undue_infringement": True, "infringement_reasoning": "仮名化して突合する",
        "restricting_laws_checked": True, "restricting_laws_note": f"確認済み（{n}）",
        "access_limited_to": {"organs": ["mayor", "board_of_education"]},  # 69(4)
        "recipient_measures": "目的外に利用せず、事業終了後に消去すること",  # Art. 70
    }


def build_small(session: Session, rng: random.Random) -> World:
    drafter = _who(session, "analyst")
    officer = _who(session, "privacy")
    officer2 = _who(session, "privacy2")
    mayor = session.exec(select(Organ).where(Organ.key == "mayor")).one()
    pref = session.exec(select(OutsideBody).where(OutsideBody.key == "pref_child_guidance")).one()
    assert mayor.id is not None and pref.id is not None
    world = World(mayor_id=mayor.id)
    _add_items(session)
    rows = session.exec(select(RegistryItem, RegistryFile)
                        .join(RegistryFile, col(RegistryFile.id) == RegistryItem.file_id)
                        .order_by(col(RegistryItem.key))).all()
    by_organ: dict[int, list[str]] = {}
    for item, file in rows:
        by_organ.setdefault(file.organ_id, []).append(item.key)
    boe_id = next(o for o in by_organ if o != mayor.id)
    mayor_items, boe_items = by_organ[mayor.id], by_organ[boe_id]

    existing = len(session.exec(select(Purpose)).all())
    existing_routes = len(session.exec(select(Route)).all())
    new_purposes = PURPOSES - existing
    new_routes = ROUTES - existing_routes
    start = utcnow()
    auths: list[str] = []
    routes_to_approve: list[str] = []
    per_purpose = [new_routes // new_purposes + (1 if i < new_routes % new_purposes else 0)
                   for i in range(new_purposes)]
    for n in range(1, new_purposes + 1):
        key = f"bench.p{n:02d}"
        mine_m = rng.sample(mayor_items, 16)
        mine_b = rng.sample(boe_items, 10)
        _purpose(session, drafter, officer, key, n, mine_m + mine_b)
        world.purposes[key] = mine_m + mine_b
        # The first four board items go on consent routes only (the job's consent flows).
        consent_b, rest_b = mine_b[:4], mine_b[4:]
        specs: list[tuple[str, list[str], dict[str, Any]]] = [
            ("a.internal", mine_m[0:3], {"to_organ": "mayor", "basis": Basis.one_off}),
            ("a.provision", rest_b[0:2], {"to_organ": "mayor", "basis": Basis.one_off}),
            ("a.pref", mine_m[3:5], {"to_body": "pref_child_guidance", "basis": Basis.one_off}),
            ("c.boe1", consent_b[0:2], {"to_organ": "mayor", "basis": Basis.consent}),
            ("c.boe2", consent_b[2:4], {"to_organ": "mayor", "basis": Basis.consent}),
            ("c.boe3", rest_b[2:4], {"to_organ": "mayor", "basis": Basis.consent}),
            ("c.mayor", mine_m[5:7], {"to_organ": "mayor", "basis": Basis.consent}),
            ("c.pref", mine_m[7:9], {"to_body": "pref_child_guidance", "basis": Basis.consent}),
            ("l.pref", mine_m[9:11], {"to_body": "pref_child_guidance", "basis": Basis.law,
                                      "law_citation": "児童福祉法第25条"}),
            ("s.mayor", mine_m[11:13], {"to_organ": "mayor", "basis": Basis.statistics,
                                        "law_citation": "統計法第2条",
                                        "reasoning": "統計の作成のみに用い、個人は識別しない"}),
            ("w.boe", rest_b[4:6], {"to_organ": "board_of_education",
                                    "basis": Basis.within_purpose,
                                    "reasoning": "学齢簿の利用目的の範囲内"}),
        ]
        w = 0
        while len(specs) < per_purpose[n - 1]:
            w += 1
            chosen = rng.sample(mine_m, rng.randint(2, 4))
            specs.append((f"w.mayor{w:02d}", chosen, {
                "to_organ": "mayor", "basis": Basis.within_purpose,
                "reasoning": "ファイルの利用目的の範囲内である"}))
        for suffix, route_items, fields in specs:
            route_key = f"{key}.{suffix}"
            recurrence = (Recurrence.one_off if fields["basis"] == Basis.one_off
                          else Recurrence.recurring)
            footing.create_route(session, drafter, key, RouteCreate(
                key=route_key, items=route_items, recurrence=recurrence, **fields))
            if fields["basis"] == Basis.one_off:
                auth_key = f"{route_key}.2026"
                footing.create_authorisation(session, drafter, AuthorisationCreate(
                    key=auth_key, route=route_key, **_four_conditions(start, n)))
                footing.submit_authorisation(session, drafter, auth_key)
                auths.append(auth_key)
            else:
                footing.submit_route(session, drafter, route_key)
                routes_to_approve.append(route_key)
        if key == POPULATION_PURPOSE:
            within = next(s[1] for s in specs if s[0] == "w.mayor01")
            world.job_items = consent_b[0:2] + within[0:2]
    session.flush()
    world.counts["register items"] = len(rows)
    world.counts["purposes"] = len(session.exec(select(Purpose)).all())
    world.counts["routes"] = len(session.exec(select(Route)).all())

    # An approved PIA of each approved purpose's next design (its submitted routes included),
    # as pia.status accepts it; approving a route needs it first.
    now = utcnow()
    pias = 0
    for purpose in session.exec(select(Purpose).where(
            Purpose.status == PurposeStatus.approved.value)).all():
        assert purpose.id is not None
        current = design_hash(design_of(session, purpose))
        hashes = design_hasher(session, purpose, in_force=False)
        if pia.status(session, purpose.id, hashes.accepted, now).usable:
            continue
        session.add(Assessment(
            purpose_id=purpose.id, status=State.approved, version=1,
            snapshot=canonical_json(pia_snapshot(session, purpose)), design_hash=current,
            design_format=DESIGN_FORMAT,
            purpose_key=purpose.key, purpose_title=purpose.title_ja, level=Level.basic,
            threshold="{}", form="{}", author_id=drafter.account_id,
            submitted_by=drafter.account_id, submitted_at=now, residual_accepted=True,
            residual_accepted_by=officer2.account_id, approved_by=officer2.account_id,
            approved_at=now, next_review_due=now + timedelta(days=365),
            conclusion="受容可能（ベンチ）"))
        pias += 1
    session.flush()
    world.counts["PIAs inserted"] = pias
    for route_key in routes_to_approve:
        footing.approve_route(session, officer, route_key, OK)
    for auth_key in auths:
        footing.approve_authorisation(session, officer, auth_key, ApprovalIn(
            comment="4要件を確認した", delegation_note="事務決裁規程により専決"))
    world.counts["authorisations"] = len(auths)
    world.counts["approved routes"] = len(session.exec(select(Route).where(
        Route.status == RecordStatus.approved.value)).all())

    population = purposes.get_purpose(session, POPULATION_PURPOSE)
    assert population.id is not None
    world.population_purpose_id = population.id
    recipient = consent_rules.organ_recipient(mayor.id)
    item_ids = {i.key: i.id for i in session.exec(select(RegistryItem)).all()}
    consent_items = world.job_items[:2]
    world.consent_flows = [(item_ids[k] or 0, recipient) for k in consent_items]
    notice = consent.create_notice(session, audit.SYSTEM, NoticeIn(
        key="bench.consent", purpose_id=population.id, controller_organ_id=mayor.id,
        title_ja="ベンチ用の同意説明文", text_ja="出欠の情報を支援のご案内に使います。",
        withdrawal_method_ja="窓口で撤回できます。",
        items=[NoticeItemIn(item_id=item_ids[k] or 0, label_ja=k) for k in consent_items],
        recipients=[NoticeRecipientIn(recipient=recipient, label_ja="市長部局")]))
    consent.mark_notice_shown(session, audit.SYSTEM, notice.id or 0, at=now - timedelta(days=400))
    world.notice_id = notice.id or 0
    world.purposes.update({
        p.key: [i.key for _link, i in design.purpose_items(session, p)]
        for p in session.exec(select(Purpose)).all() if p.key not in world.purposes})
    return world


# ---------------------------------------------------------------- big tables (bulk)


def fill(engine: Engine, world: World, residents: int, events: int,
         restrictions: int) -> dict[str, int]:
    rng = random.Random(20261127)
    loader = Loader(engine)
    at = utcnow()
    now = loader.time(at)
    today = local_day(at)
    with Session(engine) as session:
        already = session.exec(select(func.count()).select_from(Person)).one()
        purpose_ids = [p.id for p in session.exec(select(Purpose)).all() if p.id is not None]
        cut = latest_birth_for_age(today, 18)
        young = session.exec(select(func.count()).select_from(Person)
                             .where(col(Person.birth_date) > cut)).one()
    total = max(residents - already, 10)
    children = max(residents // 5 - young, 1)
    adults = total - children
    child_ids = [secrets.token_hex(16) for _ in range(children)]
    adult_ids = [secrets.token_hex(16) for _ in range(adults)]
    births: dict[str, date] = {}
    span = (today - latest_birth_for_age(today, 18)).days - 1

    def people() -> Iterable[Sequence[Any]]:
        for n, pid in enumerate(child_ids):
            birth = today - timedelta(days=rng.randint(0, span))
            births[pid] = birth
            yield (pid, "bench", f"bench.c{n}", "bench", "bench.n", "bench", "bench.k",
                   birth, "unknown", None, None, now, now)
        for n, pid in enumerate(adult_ids):
            birth = date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 66))
            yield (pid, "bench", f"bench.a{n}", "bench", "bench.n", "bench", "bench.k",
                   birth, "unknown", None, None, now, now)

    counts: dict[str, int] = {}
    counts["residents (bulk)"] = loader.load("consent_person", (
        "id", "atena_no", "atena_hash", "name", "name_hash", "kana", "kana_hash",
        "birth_date", "sex", "household_no", "household_hash", "created_at", "updated_at"),
        people())
    counts["children 0–17 (bulk)"] = children
    guardians: dict[str, list[tuple[str, str]]] = {}
    cursor = 0

    def links() -> Iterable[Sequence[Any]]:
        nonlocal cursor
        for pid in child_ids:
            roll = rng.random()
            kinds = (["minor_guardian"] if roll < 0.02 else ["parent"] if roll < 0.20
                     else ["parent", "parent"])
            chosen: list[tuple[str, str]] = []
            for kind in kinds:
                guardian = adult_ids[cursor % len(adult_ids)]
                cursor += 1
                chosen.append((guardian, kind))
                yield (pid, guardian, kind, "bench proof", births[pid], None, now)
            guardians[pid] = chosen

    counts["guardianship links"] = loader.load("consent_guardianship", (
        "child_id", "guardian_id", "relation", "proof_ref", "valid_from", "valid_until",
        "created_at"), links())

    records: list[Sequence[Any]] = []
    scopes: list[Sequence[Any]] = []
    event_rows: list[Sequence[Any]] = []
    order = list(child_ids)
    rng.shuffle(order)
    made = 0
    for pid in order:
        if made >= events:
            break
        age = age_on(births[pid], today)
        if age >= 16:
            givers = [(pid, "self")]
        else:
            givers = guardians[pid] if rng.random() < 0.85 else guardians[pid][:1]
        for giver, relation in givers:
            if made >= events:
                break
            rid = secrets.token_hex(16)
            given = at - timedelta(days=20, minutes=rng.randint(0, 60 * 24 * 300))
            withdrawn = given + timedelta(days=10) if rng.random() < 0.12 else None
            view = "objection" if rng.random() < 0.02 else "assent"
            records.append((rid, "bench", pid, giver, relation, "", age, age, view, "",
                            world.mayor_id, world.population_purpose_id, world.notice_id,
                            "69-2-1", "ja", "paper", "R3", "窓口", "",
                            "withdrawn" if withdrawn else "given", loader.time(given),
                            loader.time(given + timedelta(days=365)), loader.time(withdrawn),
                            None, now))
            for item, recipient in world.consent_flows:
                scopes.append((rid, item, recipient, False))
            event_rows.append((rid, "given", loader.time(given), giver, None, "paper", ""))
            made += 1
            if withdrawn is not None and made < events:
                event_rows.append((rid, "withdrawn", loader.time(withdrawn), giver, None,
                                   "paper", ""))
                made += 1
    counts.update(load_consents(loader, records, scopes, event_rows))

    def restriction_rows() -> Iterable[Sequence[Any]]:
        for pid in rng.sample(child_ids, min(restrictions, len(child_ids))):
            purpose_id = (world.population_purpose_id if rng.random() < 0.8
                          else rng.choice(purpose_ids))
            yield (pid, purpose_id, "suspension_request", "", "bench",
                   loader.time(at - timedelta(days=rng.randint(1, 60))), None, None, now,
                   None, None)

    counts["restrictions"] = loader.load("consent_restriction", (
        "person_id", "purpose_id", "source", "source_ref", "reason", "valid_from",
        "valid_until", "created_by", "created_at", "lifted_at", "lifted_by"),
        restriction_rows())
    loader.close()
    settle(engine)
    return counts


# ---------------------------------------------------------------- the figures


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _requests(engine: Engine, world: World, count: int, seed: int) -> list[gate.JobRequest]:
    rng = random.Random(seed)
    all_items = [k for keys in world.purposes.values() for k in keys]
    with Session(engine) as session:
        principals = {login: _who(session, login) for login in PRINCIPALS}
    logins = [login for login, weight in PRINCIPALS.items() for _ in range(weight)]
    requests = []
    for _ in range(count):
        purpose = rng.choice(sorted(world.purposes))
        mine = world.purposes[purpose]
        items = rng.sample(mine, min(len(mine), rng.randint(1, 6)))
        if rng.random() < 0.05:
            items.append(rng.choice(all_items))
        login = rng.choice(logins)
        requests.append(gate.JobRequest(
            kind=rng.choice(KINDS_BY_LOGIN[login]), purpose=purpose,
            items=list(dict.fromkeys(items)), principal=principals[login]))
    return requests


def bench_explain(engine: Engine, world: World, count: int) -> tuple[list[float], int]:
    for request in _requests(engine, world, 20, 1):  # warm-up: caches, pool, statements
        with Session(engine) as session:
            gate.explain(session, request)
    timings: list[float] = []
    allowed = 0
    for request in _requests(engine, world, count, 2):
        with Session(engine) as session:
            started = time.perf_counter()
            decision = gate.explain(session, request)
            timings.append(time.perf_counter() - started)
        allowed += decision.allowed
    return timings, allowed


def bench_check(engine: Engine, world: World, count: int) -> list[float]:
    timings: list[float] = []
    for request in _requests(engine, world, count, 3):
        started = time.perf_counter()
        with unit_of_work(engine) as session:
            gate.check(session, request)
        timings.append(time.perf_counter() - started)
    return timings


def bench_start(engine: Engine, world: World, repeat: int) -> tuple[list[float], int]:
    timings: list[float] = []
    population = 0
    for _ in range(repeat):
        with unit_of_work(engine) as session:
            decision, job = jobs.submit(session, gate.JobRequest(
                kind=gate.JobKind.linkage, purpose=POPULATION_PURPOSE, items=world.job_items,
                principal=_who(session, "analyst")))
            if job is None:
                reasons = "; ".join(f"{r.code}: {r.message_en}" for r in decision.reasons)
                raise SystemExit(f"the population job was refused: {reasons}")
            job_id = job.id
        assert job_id is not None
        started = time.perf_counter()
        decision = jobs.start(engine, job_id)
        timings.append(time.perf_counter() - started)
        if not decision.allowed:
            raise SystemExit(f"the population job was refused at start: {decision.reasons}")
        assert len(decision.consent_flows) == 2, decision.flows
        with Session(engine) as session:
            population = jobs.get_job(session, job_id).population_count or 0
    return timings, population


def run(backend: str, residents: int, events: int, restrictions: int,
        explains: int) -> dict[str, Any]:
    url = new_database(backend)
    try:
        started = time.perf_counter()
        command.upgrade(alembic_config(url), "head")
        engine = make_engine(url)
        import main

        with unit_of_work(engine) as session:
            for demo_loader in main.DEMO_LOADERS:
                demo_loader(session)
        with unit_of_work(engine) as session:
            world = build_small(session, random.Random(20261126))
        small_s = time.perf_counter() - started
        loaded = time.perf_counter()
        counts = fill(engine, world, residents, events, restrictions)
        load_s = time.perf_counter() - loaded
        with Session(engine) as session:
            counts["residents (total)"] = session.exec(
                select(func.count()).select_from(Person)).one()
        explain_s, allowed = bench_explain(engine, world, explains)
        check_s = bench_check(engine, world, explains)
        start_s, population = bench_start(engine, world, 3)
        info = backend_info(engine)
        engine.dispose()
        return {"backend": backend, "info": info, "counts": {**world.counts, **counts},
                "small_s": small_s, "load_s": load_s, "explain": explain_s,
                "allowed": allowed, "check": check_s, "start": start_s,
                "population": population}
    finally:
        drop_database(backend, url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--restrictions", type=int, default=5_000)
    parser.add_argument("--explains", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args(argv)
    prepare(get_settings())
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        print(f"[{backend}] building the city: {args.residents:,} residents, "
              f"{args.events:,} consent events, {args.restrictions:,} restrictions, "
              f"{ITEMS} items, {PURPOSES} purposes, {ROUTES} routes …", flush=True)
        result = run(backend, args.residents, args.events, args.restrictions, args.explains)
        results.append(result)
        print(f"[{backend}] set-up: services {result['small_s']:.1f} s, bulk load "
              f"{result['load_s']:.1f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in result["counts"].items()), flush=True)

    def ms(values: list[float], share: float) -> str:
        return f"{_percentile(values, share) * 1000:.1f}"

    print()
    print(f"machine: {machine()}")
    print(f"gate: {args.explains} random requests (purposes, 1–6 items, principals, kinds), "
          f"a fresh session each; target p95 ≤ {LATENCY_TARGET_MS:.0f} ms")
    print(f"population: jobs.start of a linkage job on {POPULATION_PURPOSE} (children 0–17, "
          f"2 consent flows), 3 jobs; target ≤ {POPULATION_TARGET_S:.1f} s")
    print()
    print(f"{'':44}" + "".join(f"{r['backend']:>16}" for r in results))
    rows = [
        ("gate.explain p50 [ms]", lambda r: ms(r["explain"], 0.50)),
        ("gate.explain p95 [ms]", lambda r: ms(r["explain"], 0.95)),
        ("gate.explain max [ms]", lambda r: ms(r["explain"], 1.0)),
        ("  allowed decisions", lambda r: f"{r['allowed']}/{len(r['explain'])}"),
        ("gate.check + audit append, commit p50 [ms]", lambda r: ms(r["check"], 0.50)),
        ("gate.check + audit append, commit p95 [ms]", lambda r: ms(r["check"], 0.95)),
        ("jobs.start best [s]", lambda r: f"{min(r['start']):.3f}"),
        ("jobs.start median [s]", lambda r: f"{statistics.median(r['start']):.3f}"),
        ("  population", lambda r: f"{r['population']:,}"),
        ("children 0–17 in the register", lambda r: f"{r['counts']['children 0–17 (bulk)']:,}"),
    ]
    for label, value in rows:
        print(f"{label:44}" + "".join(f"{value(r):>16}" for r in results))
    for r in results:
        print(f"{r['backend']}: {r['info']}")
    ok = all(_percentile(r["explain"], 0.95) * 1000 <= LATENCY_TARGET_MS
             and statistics.median(r["start"]) <= POPULATION_TARGET_S for r in results)
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
