"""The demo city's purposes: child-abuse prevention, young-carer outreach, and an incomplete one."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from core.auth import Principal, principal_for
from core.clock import utcnow
from core.models import StaffAccount
from governance import assessment_demo, footing, purposes
from governance.models import Basis, CitationKind, Purpose, Recurrence, SubjectRole
from governance.rules import JobKind
from governance.schemas import (
    AccessLimitIn,
    ApprovalIn,
    AuthorisationCreate,
    Citation,
    Decision,
    PublicNotice,
    PurposeCreate,
    PurposeItemIn,
    RouteCreate,
    Safeguards,
    SubjectIn,
    SubjectsRule,
)

SAFEGUARDS = Safeguards(
    organisational=["総括管理主体（総務課長）を置き、取扱規程を定める", "年1回の自己点検と監査"],
    human=["取扱者を指名し、年1回の研修を受講させる", "守秘義務の誓約"],
    physical=["分析端末は施錠された執務室に設置する", "外部記録媒体の使用を禁止する"],
    technical=[
        "個人データは項目単位で暗号化する",
        "突合は仮名化したキーで行う",
        "アクセスは役割ごとに制限し、全操作を監査ログに記録する",
    ],
)
NOTICE = PublicNotice(
    web_page="https://www.city.wakabadai.example/kodomo-data",
    register_entry="個人情報ファイル簿（市長・教育委員会）に記載",
    explanation_to_families="乳幼児健診・就学時健診の案内に説明文を同封",
    contact_point="こども家庭部こども家庭課（電話 000-000-0000）",
)


def _principal(session: Session, login: str) -> Principal:
    account = session.exec(select(StaffAccount).where(StaffAccount.login == login)).one()
    return principal_for(session, account)


def _abuse_prevention(session: Session, drafter: Principal, officer: Principal) -> Purpose:
    key = "child_abuse_prevention"
    purposes.create_purpose(
        session,
        drafter,
        PurposeCreate(
            key=key,
            title_ja="児童虐待の未然防止・早期発見",
            title_en="Prevention and early detection of child abuse",
            purpose_text=(
                "福祉・保健・教育の各部署が保有する情報を突合し、虐待のおそれがあるなど支援を要する"
                "こどもと家庭を早期に把握して、こども家庭センターによるアセスメントと支援につなげる。"
            ),
            necessity=(
                "各部署の情報は単独では兆候として現れにくく、複数の情報を組み合わせることで初めて"
                "支援の必要性に気付ける。連携しない場合は、通告や相談を待つことになり支援が遅れる。"
            ),
            handling_extraction="各保有課が対象年齢のこどもに関する指定項目のみを月1回抽出する",
            handling_matching_key="団体内統合宛名番号の鍵付きハッシュ（仮名化キー）",
            handling_logic="複数の兆候（健診未受診・長期欠席・生活保護受給等）の組合せによる判定ルール",
            job_kinds=[JobKind.linkage, JobKind.scoring, JobKind.statistics, JobKind.export],
            handling_logic_version="rules-2026.1",
            handling_result_viewers="こども家庭課の支援担当者（活用主体）のみ",
            handling_human_assessment="判定結果は候補の提示にとどめ、ケース会議で職員が個別に判断する",
            safeguards=SAFEGUARDS,
            public_notice=NOTICE,
            subjects_rule=SubjectsRule(min_age=0, max_age=17),
            citations=[
                Citation(kind=CitationKind.statute, law_name="児童福祉法", article="第10条第1項"),
                Citation(
                    kind=CitationKind.statute,
                    law_name="児童虐待の防止等に関する法律",
                    article="第4条第1項",
                ),
            ],
            subjects=[
                SubjectIn(organ="mayor", department="general_affairs", role=SubjectRole.overall),
                SubjectIn(organ="mayor", department="welfare", role=SubjectRole.holding),
                SubjectIn(organ="mayor", department="maternal_health", role=SubjectRole.holding),
                SubjectIn(
                    organ="board_of_education",
                    department="school_affairs",
                    role=SubjectRole.holding,
                ),
                SubjectIn(organ="mayor", department="digital", role=SubjectRole.analysis),
                SubjectIn(organ="mayor", department="child_family", role=SubjectRole.use),
            ],
        ),
    )
    items = [
        ("juki.atena_no", "突合のための識別子", "同一のこどもの情報を結び付けるために必要"),
        ("juki.birth_date", "対象年齢の判定", "年齢に応じた支援の判断に必要"),
        ("seiho.kind", "経済的困窮の把握", "経済的困窮は虐待のリスク要因とされる"),
        ("kenshin.unattended", "健診未受診の把握", "未受診は養育上の困難の兆候となりうる"),
        ("kenshin.follow_up", "要経過観察の把握", "発達や養育の課題の早期発見に必要"),
        ("shukketsu.days_absent", "長期欠席の把握", "欠席の増加は家庭の困難の兆候となりうる"),
        ("gakurei.aid", "就学援助の把握", "経済的困窮の把握に必要"),
    ]
    # The support workers (活用主体) receive identified only what their assessment needs; the
    # special-care health result (要経過観察) stays with its holder (LAW.md §10.5).
    held_only = {"kenshin.follow_up"}
    for item, necessity, relevance in items:
        opened = [SubjectRole.holding] if item in held_only else [SubjectRole.holding,
                                                                  SubjectRole.use]
        purposes.set_item(
            session,
            drafter,
            key,
            PurposeItemIn(item=item, necessity_reason=necessity, relevance_to_difficulty=relevance,
                          identified_for=opened),
        )
    purposes.submit_purpose(session, drafter, key)
    purposes.approve_purpose(
        session, officer, key, Decision(comment="個人情報保護審議会への報告を経て承認する。")
    )

    start = utcnow()
    four_conditions = {
        "is_temporary": True,
        "temporary_reasoning": (
            "今年度の試行として1回に限り実施し、継続する場合は利用目的を変更する"
        ),
        "valid_from": start,
        "valid_until": start + timedelta(days=150),
        "runs_allowed": 2,
        "within_necessary_extent": True,
        "necessity_reasoning": "利用目的で必要性を示した項目に限り、対象年齢のこどもに限定する",
        "substantial_reason": True,
        "substantial_reasoning": "虐待の未然防止はこどもの生命・身体の保護に直結する",
        "no_undue_infringement": True,
        "infringement_reasoning": "仮名化して突合し、結果は支援担当者のみが閲覧する。PIAで評価する",
        "restricting_laws_checked": True,
        "restricting_laws_note": "生活保護法・学校保健安全法に提供を制限する規定がないことを確認",
        # 69(4): the analysts of デジタル推進課 and the support workers of こども家庭課 only
        "access_limited_to": AccessLimitIn(departments=["digital", "child_family"]),
    }
    footing.create_route(
        session,
        drafter,
        key,
        RouteCreate(
            key="abuse.mayor_internal",
            items=[
                "juki.atena_no",
                "juki.birth_date",
                "seiho.kind",
                "kenshin.unattended",
                "kenshin.follow_up",
            ],
            to_organ="mayor",
            basis=Basis.one_off,
            recurrence=Recurrence.one_off,
        ),
    )
    footing.create_authorisation(
        session,
        drafter,
        AuthorisationCreate(
            key="abuse.mayor_internal.2026",
            route="abuse.mayor_internal",
            recipient_task_citation="児童福祉法第10条第1項（市町村の業務）",
            **four_conditions,
        ),
    )
    footing.submit_authorisation(session, drafter, "abuse.mayor_internal.2026")

    footing.create_route(
        session,
        drafter,
        key,
        RouteCreate(
            key="abuse.boe_provision",
            items=["shukketsu.days_absent", "gakurei.aid"],
            to_organ="mayor",
            basis=Basis.one_off,
            recurrence=Recurrence.one_off,
        ),
    )
    footing.create_authorisation(
        session,
        drafter,
        AuthorisationCreate(
            key="abuse.boe_provision.2026",
            route="abuse.boe_provision",
            recipient_task_citation="児童福祉法第10条第1項（市長の所掌事務）",
            **four_conditions,
            recipient_measures="提供を受けた情報は本目的以外に利用せず、事業終了後に消去すること",
        ),
    )
    footing.submit_authorisation(session, drafter, "abuse.boe_provision.2026")
    # The PIA of the finished design is approved before any authorisation (fourth condition).
    assessment_demo.approve_abuse_prevention(session, officer, _principal(session, "privacy2"))
    footing.approve_authorisation(
        session,
        officer,
        "abuse.mayor_internal.2026",
        ApprovalIn(
            comment="4要件を満たすことを確認した。",
            delegation_note="若葉台市事務決裁規程 別表第2により総務課長が専決",
        ),
    )
    footing.approve_authorisation(
        session,
        officer,
        "abuse.boe_provision.2026",
        ApprovalIn(
            comment="教育委員会の保有情報の提供について4要件を確認した。",
            delegation_note="若葉台市教育委員会事務決裁規程により教育部長が専決（補助執行）",
        ),
    )
    return purposes.get_purpose(session, key)


def _young_carers(session: Session, drafter: Principal, officer: Principal) -> Purpose:
    key = "young_carers_outreach"
    purposes.create_purpose(
        session,
        drafter,
        PurposeCreate(
            key=key,
            title_ja="ヤングケアラーの早期把握（同意に基づくアウトリーチ）",
            title_en="Early identification of young carers (consent-based outreach)",
            purpose_text=(
                "家族の世話を担っている可能性のあるこどもを把握し、本人と保護者の同意を得たうえで"
                "相談窓口と支援につなげる。今年度限りの取組とする。"
            ),
            necessity="学校の出欠情報と世帯の状況を合わせて見ることで、声を上げにくいこどもに気付ける。",
            handling_extraction="同意を得たこどもについてのみ、学務課が出欠情報を抽出する",
            handling_matching_key="団体内統合宛名番号の鍵付きハッシュ",
            handling_logic="遅刻・欠席の傾向と世帯構成による確認リスト（スコアリングは行わない）",
            job_kinds=[JobKind.linkage, JobKind.statistics, JobKind.export],
            handling_logic_version="checklist-2026.1",
            handling_result_viewers="こども家庭課のヤングケアラー・コーディネーター",
            handling_human_assessment="コーディネーターが本人との面談で支援の要否を判断する",
            safeguards=SAFEGUARDS,
            public_notice=NOTICE,
            subjects_rule=SubjectsRule(min_age=9, max_age=17),
            citations=[
                Citation(
                    kind=CitationKind.statute,
                    law_name="こども・若者育成支援推進法",
                    article="第15条第1項",
                )
            ],
            subjects=[
                SubjectIn(organ="mayor", department="general_affairs", role=SubjectRole.overall),
                SubjectIn(
                    organ="board_of_education",
                    department="school_affairs",
                    role=SubjectRole.holding,
                ),
                SubjectIn(organ="mayor", department="digital", role=SubjectRole.analysis),
                SubjectIn(organ="mayor", department="child_family", role=SubjectRole.use),
            ],
        ),
    )
    for item, necessity, relevance in [
        ("shukketsu.days_absent", "欠席の傾向の把握", "家族の世話による欠席の兆候"),
        ("shukketsu.late_early", "遅刻・早退の傾向の把握", "家族の世話による遅刻・早退の兆候"),
    ]:
        purposes.set_item(
            session,
            drafter,
            key,
            PurposeItemIn(item=item, necessity_reason=necessity, relevance_to_difficulty=relevance),
        )
    purposes.submit_purpose(session, drafter, key)
    purposes.approve_purpose(
        session, officer, key, Decision(comment="同意に基づく取組として承認する。")
    )
    footing.create_route(
        session,
        drafter,
        key,
        RouteCreate(
            key="carers.consent",
            items=["shukketsu.days_absent", "shukketsu.late_early"],
            to_organ="mayor",
            basis=Basis.consent,
            recurrence=Recurrence.one_off,
        ),
    )
    # Submitted, not approved: approving a route needs the PIA of the design with it approved
    # first, and this purpose's PIA is still a draft. The route is the pending next design.
    footing.submit_route(session, drafter, "carers.consent")
    assessment_demo.draft_young_carers(session, officer)
    return purposes.get_purpose(session, key)


def _incomplete(session: Session, drafter: Principal) -> Purpose:
    key = "all_children_scoring"
    purposes.create_purpose(
        session,
        drafter,
        PurposeCreate(
            key=key,
            title_ja="全児童のリスクスコア算出（検討中）",
            title_en="Risk score for every child (under consideration)",
            purpose_text="全てのこどもについて、保有する全ての情報からリスクスコアを算出する。",
            handling_logic="機械学習モデル（未定）",
            job_kinds=[JobKind.scoring],
            subjects_rule=SubjectsRule(min_age=0, max_age=17),
        ),
    )
    purposes.set_item(session, drafter, key, PurposeItemIn(item="seiho.case_notes"))
    return purposes.get_purpose(session, key)


def load(session: Session) -> list[str]:
    """Create the demo purposes once (idempotent)."""
    if session.exec(select(Purpose)).first() is not None:
        return ["利用目的: 既に登録済み / purposes already loaded"]
    drafter = _principal(session, "analyst")
    officer = _principal(session, "privacy")
    done = [
        _abuse_prevention(session, drafter, officer),
        _young_carers(session, drafter, officer),
        _incomplete(session, drafter),
    ]
    return [f"利用目的 / purpose: {p.key} ({p.status})" for p in done]
