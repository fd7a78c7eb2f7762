"""Words of the governance console: labels, statuses, legal route kinds and form messages."""

from __future__ import annotations

from core import messages
from governance.models import (
    AcquisitionMethod,
    Basis,
    CitationKind,
    PurposeStatus,
    RecordStatus,
    Recurrence,
    RouteKind,
    SubjectRole,
)

# The derived legal route of a flow, as a clerk reads it (LAW.md §1.2, the seed's 5章 table).
ROUTE_KIND_LABELS: dict[str, tuple[str, str]] = {
    RouteKind.within_purpose: (
        "保有ファイルの利用目的内の利用（法第61条第1項）",
        "Use within the file's registered purpose (Art. 61(1))",
    ),
    RouteKind.purpose_change: (
        "利用目的の変更（法第61条第3項）",
        "Change of purpose for recurring use (Art. 61(3))",
    ),
    RouteKind.consent: (
        "本人の同意による目的外利用・提供（法第69条第2項第1号）",
        "Out-of-purpose use or provision with consent (Art. 69(2)(i))",
    ),
    RouteKind.internal_use: (
        "目的外利用（法第69条第2項第2号）",
        "Out-of-purpose internal use (Art. 69(2)(ii))",
    ),
    RouteKind.provision: (
        "目的外提供（法第69条第2項第3号）",
        "Out-of-purpose provision to another public body (Art. 69(2)(iii))",
    ),
    RouteKind.statistics: (
        "統計・学術研究等のための提供（法第69条第2項第4号）",
        "Provision for statistics or research (Art. 69(2)(iv))",
    ),
    RouteKind.law: (
        "法令に基づく利用・提供（法第69条第1項）",
        "Use or provision required by law (Art. 69(1))",
    ),
}

BASIS_LABELS: dict[str, tuple[str, str]] = {
    Basis.within_purpose: ("保有ファイルの利用目的の範囲内", "Within the file's purpose"),
    Basis.purpose_change: ("利用目的の変更（恒常的な利用）", "Change of purpose (recurring use)"),
    Basis.one_off: (
        "臨時的な目的外利用・提供（4要件）",
        "One-off out-of-purpose use (four conditions)",
    ),
    Basis.consent: ("本人の同意", "Consent of the person"),
    Basis.statistics: ("統計・学術研究等", "Statistics or research"),
    Basis.law: ("法令に基づく", "Required by law"),
}

RECURRENCE_LABELS: dict[str, tuple[str, str]] = {
    Recurrence.one_off: ("臨時的", "one-off"),
    Recurrence.recurring: ("恒常的", "recurring"),
}

PURPOSE_STATUS_LABELS: dict[str, tuple[str, str]] = {
    PurposeStatus.draft: ("下書き", "draft"),
    PurposeStatus.submitted: ("審査中（提出済み）", "submitted"),
    PurposeStatus.approved: ("承認済み", "approved"),
    PurposeStatus.returned: ("差戻し", "returned"),
    PurposeStatus.suspended: ("停止中", "suspended"),
    PurposeStatus.retired: ("廃止", "retired"),
}

RECORD_STATUS_LABELS: dict[str, tuple[str, str]] = {
    RecordStatus.draft: ("下書き", "draft"),
    RecordStatus.submitted: ("審査中（提出済み）", "submitted"),
    RecordStatus.approved: ("承認済み", "approved"),
    RecordStatus.returned: ("差戻し", "returned"),
    RecordStatus.revoked: ("取消し", "revoked"),
}

SUBJECT_ROLE_LABELS: dict[str, tuple[str, str]] = {
    SubjectRole.overall: ("総括管理主体", "overall management"),
    SubjectRole.holding: ("保有・管理主体", "holding"),
    SubjectRole.analysis: ("分析主体", "analysis"),
    SubjectRole.use: ("活用主体", "use"),
}

ACQUISITION_LABELS: dict[str, tuple[str, str]] = {
    AcquisitionMethod.reuse: ("既に取得した情報を利用する", "reuse of data already held"),
    AcquisitionMethod.new_collection: ("新たに取得する", "new collection"),
    AcquisitionMethod.both: ("既に取得した情報の利用と新たな取得の両方", "both"),
}

CITATION_KIND_LABELS: dict[str, tuple[str, str]] = {
    CitationKind.statute: ("法律・政令・省令", "statute"),
    CitationKind.ordinance: ("条例・規則", "ordinance"),
}

ACTION_LABELS: dict[str, tuple[str, str]] = {
    "submit": ("提出", "submitted"),
    "approve": ("承認", "approved"),
    "return": ("差戻し", "returned"),
    "suspend": ("停止", "suspended"),
    "resume": ("再開", "resumed"),
    "retire": ("廃止", "retired"),
    "revise": ("改訂（新しい版）", "revised"),
    "revoke": ("取消し", "revoked"),
}

SAFEGUARD_CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "organisational": ("組織的安全管理措置", "organisational"),
    "human": ("人的安全管理措置", "human"),
    "physical": ("物理的安全管理措置", "physical"),
    "technical": ("技術的安全管理措置", "technical"),
}

# A starting checklist per category (the guideline's usual measures); officers add their own.
SAFEGUARD_CHECKLIST: dict[str, tuple[str, ...]] = {
    "organisational": (
        "総括管理主体（総務課長）を置き、取扱規程を定める",
        "年1回の自己点検と監査",
        "漏えい等の事案に対応する体制を整備する",
    ),
    "human": (
        "取扱者を指名し、年1回の研修を受講させる",
        "守秘義務の誓約",
    ),
    "physical": (
        "分析端末は施錠された執務室に設置する",
        "外部記録媒体の使用を禁止する",
    ),
    "technical": (
        "個人データは項目単位で暗号化する",
        "突合は仮名化したキーで行う",
        "アクセスは役割ごとに制限し、全操作を監査ログに記録する",
    ),
}

PUBLIC_NOTICE_LABELS: dict[str, tuple[str, str]] = {
    "web_page": ("ウェブサイトでの公表（URL）", "web page"),
    "register_entry": ("個人情報ファイル簿への記載", "file register entry"),
    "explanation_to_families": ("こども・家庭への説明の方法", "explanation to families"),
    "contact_point": ("問合せ窓口", "contact point"),
}

# Form field labels; the keys are the names Reason.field uses.
FIELD_LABELS: dict[str, str] = {
    "key": "キー",
    "title_ja": "名称",
    "title_en": "名称（英語）",
    "purpose_text": "利用目的",
    "citations": "事務の根拠となる法令・条例（法第61条第1項）",
    "necessity": "必要性（連携が必要な理由）",
    "acquisition_method": "取得の方法",
    "acquisition_note": "取得時の利用目的の明示（法第62条）",
    "handling_extraction": "抽出方法",
    "handling_matching_key": "突合キー",
    "handling_logic": "分析・判定ロジック",
    "handling_logic_version": "ロジックの版",
    "handling_result_viewers": "結果を閲覧する者",
    "handling_human_assessment": "人によるアセスメント",
    "safeguards": "安全管理措置",
    "public_notice": "住民周知",
    "subjects_rule": "対象者（年齢の範囲）",
    "subjects": "取り扱う主体",
    "items": "情報項目",
    "item": "情報項目",
    "necessity_reason": "必要性（法第61条第2項）",
    "relevance_to_difficulty": "こども・家庭の困難との関連",
    "to_organ": "提供先（機関）",
    "to_body": "提供先（外部機関）",
    "recipient": "提供先",
    "basis": "根拠",
    "recurrence": "利用の頻度",
    "reasoning": "判断の理由",
    "changed_purpose_text": "変更後の利用目的",
    "law_citation": "根拠となる法令の条項",
    "comment": "コメント",
    "delegation_note": "専決（委任）の内容",
    "is_temporary": "臨時的であること",
    "temporary_reasoning": "臨時的であることの理由",
    "valid_from": "利用期間（開始日）",
    "valid_until": "利用期間（終了日）",
    "runs_allowed": "実行回数の上限",
    "within_necessary_extent": "必要な限度であること",
    "necessity_reasoning": "必要な限度であることの理由",
    "substantial_reason": "相当の理由があること",
    "substantial_reasoning": "相当の理由",
    "recipient_task_citation": "提供先の所掌事務の根拠条項",
    "no_undue_infringement": "権利利益を不当に侵害するおそれがないこと",
    "infringement_reasoning": "権利利益を不当に侵害するおそれがないことの理由",
    "restricting_laws_checked": "提供を制限する他の法令がないことの確認（法第69条第3項）",
    "restricting_laws_note": "確認した法令",
    "access_limited_to": "利用する者の限定（法第69条第4項）",
    "recipient_measures": "提供先に求める措置（法第70条）",
}

messages.register(
    {
        "governance.nav": ("利用目的", "Purposes"),
        "governance.ui.purposes": ("利用目的の一覧", "Purposes"),
        "governance.ui.new_purpose": ("利用目的の作成", "New purpose"),
        "governance.ui.edit_purpose": ("利用目的の編集", "Edit purpose"),
        "governance.ui.usable": ("利用できる", "usable"),
        "governance.ui.not_usable": ("利用できない", "not usable"),
        "governance.ui.not_usable_because": ("利用できない理由", "Not usable because…"),
        "governance.ui.usable_now": (
            "この利用目的は現在、利用できます。",
            "This purpose can be used now.",
        ),
        "governance.ui.fix": ("修正する", "fix"),
        "governance.ui.saved": ("保存しました。", "Saved."),
        "governance.ui.route_created": (
            "経路「{key}」を作成しました。法的な区分：{kind}",
            "Route {key} created. Its legal route: {kind_en}",
        ),
        "governance.ui.done": ("「{action}」を記録しました。", "Recorded: {action_en}."),
        "governance.ui.invalid_field": (
            "「{label}」の値が正しくありません（{detail}）。",
            "The value of {name!r} is not valid ({detail}).",
        ),
        "governance.ui.required": (
            "「{label}」を入力してください。",
            "{name!r} is required.",
        ),
        "governance.ui.not_a_date": (
            "「{label}」は日付として読めません（例：2026-04-01、令和8年4月1日）。",
            "{name!r} is not a date (e.g. 2026-04-01, 令和8年4月1日).",
        ),
        "governance.ui.not_a_number": (
            "「{label}」は整数で入力してください。",
            "{name!r} must be a whole number.",
        ),
        "governance.ui.not_in_purpose": (
            "{kind}「{key}」はこの利用目的のものではありません。",
            "{kind_en} {key!r} does not belong to this purpose.",
        ),
        "governance.ui.choose_one_recipient": (
            "提供先は機関か外部機関のどちらか1つを選んでください。",
            "Choose exactly one recipient: an organ or an outside body.",
        ),
    }
)


def label(table: dict[str, tuple[str, str]], value: object, lang: int = 0) -> str:
    """The Japanese (lang=0) or English (lang=1) label of an enum value; the value if unknown."""
    key = str(getattr(value, "value", value))
    pair = table.get(key)
    return pair[lang] if pair else key
