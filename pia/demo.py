"""The demo city's PIA content: a full assessment for child-abuse prevention, a draft for
young-carer outreach. Governance opens and submits them (it holds the design); these
functions fill in the form through the ordinary service, so the demo obeys every guard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session

from core.auth import Principal
from core.clock import utcnow
from pia import rules, service
from pia.models import Assessment, Residual, SelfRating, Stage
from pia.schemas import CommentIn, MeasureIn, ProcedureIn, RiskIn

SECTIONS: dict[str, dict[str, str]] = {
    "basic": {
        "systems": "住民記録システム、福祉総合システム、健康管理システム、校務支援システム、"
                   "こどもデータ連携基盤（分析環境）",
    },
    "overview": {
        "outsourcing": "委託なし（分析環境の保守のみ委託し、個人データには触れさせない）",
    },
    "other": {
        "audit": "総括管理主体による年1回の自己点検と、内部監査担当による監査を実施する",
        "training": "取扱者全員に年1回の研修を行い、受講を取扱いの条件とする",
    },
    "contacts": {
        "disclosure": "総務部総務課 情報公開・個人情報保護係（市役所本庁舎2階）",
        "inquiry": "こども家庭部こども家庭課（電話 000-000-0000）",
    },
}


def _measures(snapshot: dict[str, Any], *indexes: int, extra: str = "") -> list[MeasureIn]:
    safeguards = service.safeguards_of(snapshot)
    chosen = [MeasureIn(safeguard_category=c, safeguard_text=t)
              for i, (c, t) in enumerate(safeguards) if i in indexes]
    if extra:
        chosen.append(MeasureIn(text=extra))
    return chosen


def _risks(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    special = rules.special_care_items(snapshot)
    return [
        dict(stage=Stage.acquisition, title="目的外の入手が行われるリスク",
             description="指定項目以外の情報や対象年齢外の者の情報が抽出される",
             likelihood=2, impact=3, self_rating=SelfRating.sufficient, residual=Residual.low,
             measures=_measures(snapshot, 0,
                                extra="抽出条件を保有課と総括管理主体が二重に確認する")),
        dict(stage=Stage.use, title="権限のない者によって不正に使用されるリスク",
             description="分析環境や判定結果に権限のない職員がアクセスする",
             likelihood=2, impact=4, self_rating=SelfRating.focus, residual=Residual.low,
             measures=_measures(snapshot, 6, 7, 9)),
        dict(stage=Stage.use, title="要配慮個人情報（健診結果等）が必要以上に閲覧されるリスク",
             description="乳幼児健診の結果など要配慮個人情報が判定に必要な範囲を超えて表示される",
             likelihood=2, impact=4, self_rating=SelfRating.focus, residual=Residual.medium,
             items=special,
             measures=_measures(snapshot, 8, extra="要配慮個人情報は判定結果の画面に表示しない")),
        dict(stage=Stage.use, title="判定結果により誤った支援判断がされるリスク",
             description="判定ルールの誤りや偏りにより、支援の要否が誤って判断される",
             likelihood=3, impact=3, self_rating=SelfRating.issues, residual=Residual.medium,
             measures=[MeasureIn(text="判定結果は候補の提示にとどめ、ケース会議で個別に判断する"),
                       MeasureIn(text="判定ルールの精度と偏りを四半期ごとに検証する")]),
        dict(stage=Stage.provision, title="教育委員会からの提供の際に漏えいするリスク",
             likelihood=1, impact=4, self_rating=SelfRating.sufficient, residual=Residual.low,
             measures=_measures(snapshot, 5, 7)),
        dict(stage=Stage.storage, title="保存期間の経過後も消去されないリスク",
             likelihood=2, impact=2, self_rating=SelfRating.sufficient, residual=Residual.low,
             measures=[MeasureIn(text="分析用データは事業終了後30日以内に消去し、消去記録を残す")]),
    ]


def _fill(session: Session, author: Principal, pia: Assessment) -> Assessment:
    snapshot = service.loads(pia.snapshot)
    assert pia.id is not None
    pia = service.save_threshold(session, author, pia.id, pia.version,
                                 service.suggested_threshold(snapshot) | {"handlers": 40})
    for section, values in SECTIONS.items():
        pia = service.save_section(session, author, pia.id or 0, pia.version, section, values)
    return pia


def complete_abuse_prevention(session: Session, author: Principal,
                              pia: Assessment) -> Assessment:
    """Fill in the full assessment (threshold, Ⅰ–Ⅵ, six risks, public comment, third party)."""
    pia = _fill(session, author, pia)
    assert pia.id is not None
    for risk in _risks(service.loads(pia.snapshot)):
        service.add_risk(session, author, pia.id, RiskIn(version=pia.version, **risk))
        session.refresh(pia)
    now = utcnow()
    return service.save_procedure(session, author, pia.id, ProcedureIn(
        version=pia.version,
        comment_start=now - timedelta(days=80),
        comment_end=now - timedelta(days=45),
        third_party_body="若葉台市個人情報保護審議会",
        third_party_members="会長 学識経験者（情報法）、委員 弁護士、委員 医師、委員 社会福祉士",
        third_party_opinion=(
            "判定結果を候補の提示にとどめ職員が個別に判断する運用、及び要配慮個人情報の表示制限を"
            "条件として、評価書の内容は適当である。判定ルールの検証結果を毎年報告されたい。"
        ),
        conclusion="残存リスクは受容可能な水準であり、評価書に記載した措置を講じて実施する。",
    ))


def record_comment(session: Session, author: Principal, pia: Assessment) -> Assessment:
    assert pia.id is not None
    service.add_comment(session, author, pia.id, CommentIn(
        version=pia.version, received_at=utcnow() - timedelta(days=60),
        comment="判定結果が本人や家族に不利益に使われないか心配です。",
        response="判定結果は支援につなげるためだけに使い、不利益な取扱いには使いません。"
                 "評価書Ⅲ（使用）に措置を記載しました。"))
    session.refresh(pia)
    return pia


def draft_young_carers(session: Session, author: Principal, pia: Assessment) -> Assessment:
    """A draft: threshold and some sections done, one risk not yet rated."""
    pia = _fill(session, author, pia)
    assert pia.id is not None
    service.add_risk(session, author, pia.id, RiskIn(
        version=pia.version, stage=Stage.use,
        title="本人の同意の範囲を超えて出欠情報が使用されるリスク",
        measures=[MeasureIn(text="同意の記録がある者に限り抽出する")]))
    session.refresh(pia)
    return pia
