"""Every message code of the centre, Japanese and English, and the words of its console."""

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

# The job kinds a purpose's handling method may permit (rules.JobKind values), for its form.
JOB_KIND_LABELS: dict[str, tuple[str, str]] = {
    "linkage": ("名寄せ（突合）", "linkage"),
    "scoring": ("スコアリング・判定（個人の自動的な評価。ルールによるアラートを含む）",
                "scoring (any automated assessment of individuals, rule alerts included)"),
    "statistics": ("統計作成", "statistics"),
    "export": ("識別可能なデータの提供（支援担当・保有機関へ）", "identified export"),
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
    "job_kinds": "予定するジョブの種類",
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
    "restricting_laws_checked": "利用・提供を制限する他の法令の確認（法第69条第3項）",
    "restricting_laws_note": "確認した法令",
    "access_limited_to": "利用する者の限定（法第69条第4項）",
    "access_limit_note": "文章のまま残っている限定（構造化して消してください）",
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
        "governance.ui.jobs_allowed": ("今日実行できるジョブ", "Jobs allowed today"),
        "gate.ui.no_subject_recipient": ("取扱主体（未登録）", "a handling subject (none yet)"),
        "governance.ui.usable_now": (
            "この利用目的は現在、利用できます。",
            "This purpose can be used now.",
        ),
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


# Operations on purposes, routes and authorisations.
messages.register(
    {
        "governance.unknown_purpose": (
            "利用目的「{key}」が見つかりません。",
            "Purpose {key!r} not found.",
        ),
        "governance.unknown_route": ("経路「{key}」が見つかりません。", "Route {key!r} not found."),
        "governance.unknown_authorisation": (
            "目的外利用・提供の承認「{key}」が見つかりません。",
            "Authorisation {key!r} not found.",
        ),
        "governance.unknown_item": (
            "記録項目「{key}」は個人情報ファイル簿に登録されていません。",
            "Item {key!r} is not in the file register.",
        ),
        "governance.unknown_body": (
            "外部機関「{key}」が見つかりません。",
            "Outside body {key!r} not found.",
        ),
        "governance.key_taken": ("キー「{key}」は既に使われています。", "Key {key!r} is in use."),
        "governance.not_editable": (
            "状態が「{status}」の利用目的は編集できません。承認済みのものは改訂（新しい版）を作成してください。",
            "A purpose in status {status} cannot be edited; revise an approved one as a new "
            "version.",
        ),
        "governance.bad_transition": (
            "状態「{status}」からは「{action}」できません。",
            "Cannot {action} from status {status}.",
        ),
        "governance.not_a_drafter": (
            "利用目的の作成・編集には、総括管理主体・保有管理主体・分析主体のいずれかの役割が必要です。",
            "Drafting a purpose needs the privacy officer, data holder or analyst role.",
        ),
        "governance.not_author_organ": (
            "この下書き（利用目的とその経路・授権）を編集・提出できるのは、作成者と同じ機関の"
            "作成担当者と総括管理主体です。",
            "Only drafters of the author's organ and privacy officers may edit or submit this "
            "draft (a purpose, its routes and authorisations).",
        ),
        "governance.not_privacy_officer": (
            "承認・差戻しは総括管理主体（個人情報保護責任者）が行います。",
            "Approvals and returns are made by a privacy officer.",
        ),
        "governance.not_officer_of_holder": (
            "保有機関「{organ}」の長に代わって承認できる総括管理主体の役割がありません。",
            "You hold no privacy-officer role for {organ}, the organ holding the file.",
        ),
        "governance.self_approval": (
            "提出者本人は承認できません（職務の分離）。",
            "The submitter cannot approve (separation of duties).",
        ),
        "governance.restricting_laws_unanswered": (
            "提供・利用を制限する他の法令の確認（法第69条第3項）が済んでいません。確認したことと、"
            "確認した法令の名前を記録してください。",
            "Art. 69(3) is unanswered: record that the laws restricting this use or provision "
            "were checked, and name them.",
        ),
        "governance.recipient_measures_missing": (
            "提供先に求める措置（法第70条：利用目的・方法の制限、漏えいの防止など）を記録して"
            "ください。",
            "Record the measures asked of the recipient (Art. 70: limits on purpose or method, "
            "prevention of leakage, and so on).",
        ),
        "governance.access_limit_unstructured": (
            "利用する者の限定（法第69条第4項）が文章のまま残っています（「{note}」）。機関・部署・"
            "役割で指定し直し、文章を消してから承認してください。",
            "The Art. 69(4) access limit is still free text ({note!r}): give it as organs, "
            "departments and roles, clear the text, then approve.",
        ),
        "governance.unknown_access_key": (
            "利用する者の限定に、登録されていない機関・部署「{key}」があります。",
            "The access limit names {key!r}, which is not a registered organ or department.",
        ),
        "governance.missing_delegation": (
            "専決（委任）の内容を記録してください。",
            "Record the delegation (専決) under which you approve.",
        ),
        "governance.item_not_in_purpose": (
            "記録項目「{item}」は利用目的「{purpose}」の情報項目にありません。",
            "Item {item} is not one of the items of purpose {purpose}.",
        ),
        "governance.items_from_several_organs": (
            "1つの経路には同じ機関が保有する項目だけを含めてください（{organs}）。",
            "One route may carry items of one holding organ only ({organs}).",
        ),
        "governance.one_recipient": (
            "提供先は機関か外部機関のどちらか1つを指定してください。",
            "Name exactly one recipient: an organ or an outside body.",
        ),
        "governance.route_needs_authorisation": (
            "臨時的な目的外利用・提供の経路は、4要件の承認によって承認されます。",
            "A one-off route is approved through its four-condition authorisation.",
        ),
        "governance.route_not_one_off": (
            "4要件の承認は、臨時的な目的外利用（第2号）・提供（第3号）の経路にだけ作成できます。",
            "A four-condition authorisation belongs only to a one-off (ii)/(iii) route.",
        ),
        "governance.duplicate_item": (
            "記録項目「{item}」が重複しています。",
            "Item {item} is listed twice.",
        ),
    }
)


# The gate.
messages.register(
    {
        "gate.role_not_permitted": (
            "この役割では「{kind}」のジョブを実行できません（必要な役割: {roles}）。",
            "Your roles may not run a {kind} job (needed: {roles_en}).",
        ),
        "gate.not_a_handling_subject": (
            "あなたの所属する機関・部署は、この利用目的の「{subject}」として登録されていません。",
            "Your organ or department is not a handling subject ({subject_en}) of this purpose.",
        ),
        "gate.unknown_purpose": (
            "利用目的「{key}」は登録されていません。",
            "Purpose {key!r} is not registered.",
        ),
        "gate.purpose_not_in_force": (
            "利用目的「{key}」は承認された状態ではありません（現在: {status}）。",
            "Purpose {key!r} is not in force (status: {status}).",
        ),
        "gate.no_items": ("データ項目が指定されていません。", "No data item is named."),
        "gate.duplicate_item": (
            "データ項目「{item}」が重複して指定されています。",
            "Item {item!r} is named twice.",
        ),
        "gate.unknown_item": (
            "データ項目「{item}」は個人情報ファイル簿に登録されていません。",
            "Item {item!r} is not in the file register.",
        ),
        "gate.item_not_in_purpose": (
            "データ項目「{item}」は利用目的「{purpose}」で必要性が示された項目ではありません。",
            "Item {item!r} is not a justified item of purpose {purpose!r}.",
        ),
        "gate.no_route": (
            "データ項目「{item}」を「{recipient}」へ流す承認済みの経路がありません。",
            "Item {item!r} has no approved route to {recipient_en}.",
        ),
        "gate.item_not_held": (
            "データ項目「{item}」はあなたの機関が保有する個人情報ファイルの項目ではありません。"
            "保有・管理主体は自機関が保有する項目だけを提供できます。",
            "Item {item!r} is not held by your organ: a data holder exports only the items its "
            "own organ holds.",
        ),
        "gate.item_not_open_to_role": (
            "利用目的「{purpose}」は、データ項目「{item}」を「{subject}」に識別可能な形で"
            "提供することを認めていません。",
            "Purpose {purpose!r} does not open item {item!r} identified to the {subject_en} "
            "subject.",
        ),
        "gate.person_not_assigned": (
            "あなたに割り当てられた支援ケースのこどもがいません。活用主体は、割り当てられたケースの"
            "こどもについてだけ識別可能なデータを受け取れます。",
            "No support case is assigned to you: a support worker receives identified data only "
            "for the children of the cases assigned to them.",
        ),
        "gate.access_limited": (
            "承認「{key}」は利用する者を限定しています（法第69条第4項：{limit}）。あなたはその"
            "範囲に含まれません。",
            "Authorisation {key!r} limits who may use the data (Art. 69(4): {limit_en}); you "
            "are not within it.",
        ),
        "gate.authorisation_missing": (
            "経路「{route}」に承認済みの目的外利用・提供の承認がありません。",
            "Route {route!r} has no approved out-of-purpose authorisation.",
        ),
        "gate.authorisation_not_yet": (
            "経路「{route}」の承認（{key}）は {date} から有効です。",
            "The authorisation {key!r} of route {route!r} is valid from {date}.",
        ),
        "gate.authorisation_expired": (
            "経路「{route}」の承認（{key}）は {date} に期限切れとなりました。",
            "The authorisation {key!r} of route {route!r} expired on {date}.",
        ),
        "gate.authorisation_exhausted": (
            "経路「{route}」の承認（{key}）の実行回数（{runs}回）を使い切っています。",
            "The authorisation {key!r} of route {route!r} has used all its {runs} runs.",
        ),
        "gate.statistics_only": (
            "経路「{route}」（統計・学術研究のための提供）は統計ジョブにのみ使えます。",
            "Route {route!r} (provision for statistics or research) serves statistics jobs only.",
        ),
        "gate.no_subject_for_kind": (
            "「{kind}」のジョブを実行する取扱主体（{subject}）がこの利用目的に登録されていません。",
            "No handling subject ({subject_en}) of this purpose may run a {kind_en} job.",
        ),
        "gate.unknown_recipient": (
            "提供先「{key}」が見つかりません。",
            "Recipient {key!r} not found.",
        ),
        "gate.kind_not_in_purpose": (
            "利用目的「{purpose}」の取扱い方法は「{kind}」のジョブを予定していません"
            "（予定しているもの: {permitted}）。",
            "The handling method of purpose {purpose!r} does not permit {kind_en} jobs "
            "(it permits: {permitted_en}).",
        ),
        "gate.no_notice": (
            "データ項目「{item}」を「{recipient}」へ流すことを示した同意の説明文が、まだ示されて"
            "いません（同意による経路には、その項目と提供先を示した説明文が必要です）。",
            "No notice shown to the people names item {item!r} going to {recipient_en}; a "
            "consent route needs a shown notice of the item and the recipient.",
        ),
        "governance.missing_job_kinds": (
            "取扱い方法で予定するジョブの種類（名寄せ・スコアリング・統計作成・提供）を一つ以上"
            "選んでください。",
            "Choose at least one job kind the handling method permits (linkage, scoring, "
            "statistics, export).",
        ),
    }
)


messages.register(
    {
        "gate.ui.title": ("ジョブの可否（今日の時点）", "What jobs may run today"),
        "gate.ui.lead": (
            "利用目的ごとに、あなたが各種のジョブを実行できるか、できない場合は何が足りないかを示します。",
            "For each purpose: whether you could run each kind of job today and, if not, what "
            "is missing.",
        ),
        "gate.ui.kind": ("ジョブの種類", "Job kind"),
        "gate.ui.verdict": ("判定", "Verdict"),
        "gate.ui.missing": ("根拠・不足しているもの", "Basis, or what is missing"),
        "gate.ui.allowed": ("実行可", "Allowed"),
        "gate.ui.refused": ("実行不可", "Refused"),
        "gate.nav": ("ジョブの可否", "Job gate"),
        "gate.kind.linkage": ("名寄せ", "linkage"),
        "gate.kind.scoring": ("リスク判定・スコアリング", "scoring"),
        "gate.kind.export": ("識別可能なデータの提供", "identified export"),
        "gate.kind.statistics": ("統計作成", "statistics"),
        "gate.subject.overall": ("総括管理主体", "overall management"),
        "gate.subject.holding": ("保有・管理主体", "holding"),
        "gate.subject.analysis": ("分析主体", "analysis"),
        "gate.subject.use": ("活用主体", "use"),
    }
)


# Completeness, route derivation and the four conditions.
messages.register(
    {
        "governance.missing_title": ("名称が入力されていません。", "The title is missing."),
        "governance.missing_purpose_text": (
            "利用目的の本文が入力されていません。",
            "The purpose text is missing.",
        ),
        "governance.missing_citation": (
            "事務の根拠となる法令・条例の条項が1つも引用されていません（法第61条第1項）。",
            "No statute or ordinance article establishing the task is cited (Art. 61(1)).",
        ),
        "governance.missing_necessity": (
            "必要性（連携が必要な理由）が入力されていません。",
            "The necessity (why linkage is needed) is missing.",
        ),
        "governance.missing_acquisition_note": (
            "新たに取得する場合は、取得時の利用目的の明示（法第62条）を記載してください。",
            "For new collection, describe how the purpose is stated before capture (Art. 62).",
        ),
        "governance.missing_handling": (
            "取扱い方法の「{part}」が入力されていません。",
            "The handling method's {part_en} is missing.",
        ),
        "governance.missing_safeguard": (
            "安全管理措置（{category}）が1つも選択されていません。",
            "No {category_en} safeguard is checked.",
        ),
        "governance.missing_public_notice": (
            "住民周知の方法が1つも記載されていません。",
            "No public notice (住民周知) is described.",
        ),
        "governance.missing_subjects_rule": (
            "対象者（誰についての利用目的か）が定められていません。",
            "The subjects (who the purpose is about) are not defined.",
        ),
        "governance.bad_subjects_rule": (
            "対象者の年齢範囲が正しくありません（{detail}）。",
            "The subjects' age range is not valid ({detail}).",
        ),
        "governance.missing_subject_role": (
            "取り扱う主体に「{role}」がありません。",
            "No handling subject has the role {role_en}.",
        ),
        "governance.missing_items": (
            "情報項目が1つも選ばれていません。",
            "No data item is selected.",
        ),
        "governance.item_missing_necessity": (
            "情報項目「{item}」の必要性が入力されていません（法第61条第2項）。",
            "Item {item} has no necessity reason (Art. 61(2)).",
        ),
        "governance.item_missing_relevance": (
            "情報項目「{item}」と、こども・家庭の困難との関連が入力されていません。",
            "Item {item} has no relevance to the difficulties of the child or family.",
        ),
        "governance.recurring_one_off": (
            "恒常的な利用は臨時的な目的外利用・提供（法第69条第2項）では認められません。"
            "利用目的の変更（法第61条第3項）として登録してください。",
            "Recurring use cannot go through one-off out-of-purpose use (Art. 69(2)); "
            "register it as a change of purpose (Art. 61(3)).",
        ),
        "governance.change_needs_recurring": (
            "利用目的の変更は恒常的な利用のためのものです。臨時的な利用には法第69条第2項の"
            "経路を使ってください。",
            "A change of purpose is for recurring use; use an Art. 69(2) route for one-off use.",
        ),
        "governance.provision_to_private_body": (
            "「{body}」は行政機関等ではないため、法第69条第2項第3号の提供はできません。"
            "本人同意（第1号）、統計・学術研究（第4号）または法令に基づく提供を検討してください。",
            "{body_en} is not a public body, so Art. 69(2)(iii) provision is not possible; "
            "consider consent (i), statistics or research (iv), or a legal obligation.",
        ),
        "governance.within_purpose_other_body": (
            "ファイルの利用目的内の利用は、ファイルを保有する機関の内部でのみ認められます。",
            "Use within the file's purpose is possible only inside the organ holding the file.",
        ),
        "governance.missing_reasoning": (
            "{what}の理由が記載されていません。",
            "The reasoning for {what_en} is missing.",
        ),
        "governance.missing_law_citation": (
            "根拠となる法令の条項が記載されていません。",
            "The article of law relied on is missing.",
        ),
        "governance.condition_not_met": (
            "{condition}が満たされていません（はい、と理由の記載が必要です）。",
            "The condition {condition_en} is not met (it needs yes and written reasoning).",
        ),
        "governance.period_unbounded": (
            "臨時的な利用には開始日と終了日が必要です。",
            "One-off use needs a start and an end date.",
        ),
        "governance.period_too_long": (
            "臨時的な利用の期間が長すぎます（{days}日、上限{max_days}日）。恒常的な利用であれば"
            "利用目的の変更として登録してください。",
            "The one-off period is too long ({days} days; at most {max_days}). If the use "
            "recurs, register a change of purpose.",
        ),
        "governance.period_reversed": (
            "終了日が開始日より前です。",
            "The end date is before the start date.",
        ),
        "governance.runs_out_of_range": (
            "実行回数は1回以上{max_runs}回以下にしてください。",
            "The number of runs must be between 1 and {max_runs}.",
        ),
        "governance.item_beyond_purpose": (
            "情報項目「{item}」は利用目的で必要性が示された項目ではありません（必要な限度を超えます）。",
            "Item {item} is not among the purpose's justified items (beyond the necessary extent).",
        ),
        "governance.missing_recipient_citation": (
            "提供先（利用する機関）の所掌事務の根拠条項が記載されていません。",
            "The article establishing the recipient's task is missing.",
        ),
        "governance.repeated_one_off": (
            "同じ利用目的・提供元・提供先の臨時的な利用が{months}か月以内に既に承認されています"
            "（{other}）。繰り返す利用は利用目的の変更（法第61条第3項）として登録してください。",
            "A one-off use with the same purpose, source and recipient was already authorised "
            "within {months} months ({other}). Recurring use must be a change of purpose "
            "(Art. 61(3)).",
        ),
    }
)


# Jobs.
messages.register(
    {
        "jobs.unknown_job": ("ジョブ {id} が見つかりません。", "Job {id} not found."),
        "jobs.bad_state": (
            "状態が「{state}」のジョブは{action}できません。",
            "A job in state {state} cannot be {action_en}.",
        ),
        "jobs.no_handler": (
            "ジョブの種類「{kind}」を実行する処理が登録されていません。",
            "No handler is registered for jobs of kind {kind}.",
        ),
        "jobs.run_taken": (
            "承認「{key}」の最後の実行回数は、別のジョブが先に使いました。",
            "Another job took the last run of authorisation {key}.",
        ),
        "jobs.not_requester": (
            "このジョブを操作できるのは依頼者か総括管理主体だけです。",
            "Only the requester or a privacy officer may act on this job.",
        ),
        "jobs.ui.title": ("ジョブ", "Jobs"),
        "jobs.ui.purpose": ("利用目的", "Purpose"),
        "jobs.ui.state": ("状態", "State"),
        "jobs.ui.population": ("対象者数", "Population"),
        "jobs.ui.decisions": ("判定ID（提出／開始）", "Decisions (submit / start)"),
        "jobs.ui.times": ("日時", "Times"),
        "jobs.ui.none": ("ジョブはまだありません。", "No jobs yet."),
        "jobs.nav": ("ジョブ", "Jobs"),
        "jobs.state.submitted": ("提出済み", "submitted"),
        "jobs.state.started": ("実行中", "started"),
        "jobs.state.finished": ("完了", "finished"),
        "jobs.state.failed": ("失敗", "failed"),
        "jobs.state.refused": ("開始時に不許可", "refused at start"),
        "jobs.state.cancelled": ("取消", "cancelled"),
        "jobs.failed": ("ジョブの実行に失敗しました（{error}）。", "The job failed ({error})."),
        "jobs.retry_refused": ("再実行は認められませんでした。", "The retry was refused."),
        "jobs.state.claimed": ("実行待ち（ワーカー確保）", "claimed by a worker"),
        "jobs.state.retrying": ("再実行待ち", "queued to retry"),
        "jobs.params_not_expected": (
            "ジョブの種類「{kind}」はパラメータを受け付けません。",
            "Jobs of kind {kind} take no parameters.",
        ),
        "jobs.bad_param": (
            "パラメータ「{name}」が正しくありません（{problem}）。",
            "Parameter {name} is not valid ({problem}).",
        ),
        "jobs.retry_basis_changed": (
            "開始時の判定から条件が変わったため再実行できません（{what}）。新しいジョブとして"
            "提出してください。",
            "The job cannot be retried: conditions changed since its start decision ({what}). "
            "Submit it as a new job.",
        ),
        "jobs.population_changed": (
            "開始時に記録した対象者が変わっているため再実行できません。",
            "The job cannot be retried: its population differs from the one written at start.",
        ),
        "jobs.worker_lost": (
            "ジョブを実行していたワーカーが応答しなくなりました。結果は残っていません。",
            "The worker running the job stopped answering; nothing of its result was kept.",
        ),
        "jobs.ui.job": ("ジョブ {id}", "Job {id}"),
        "jobs.ui.params": ("パラメータ", "Parameters"),
        "jobs.ui.no_params": ("なし", "none"),
        "jobs.ui.items": ("データ項目", "Data items"),
        "jobs.ui.recipient": ("提供先", "Recipient"),
        "jobs.ui.progress": ("進捗", "Progress"),
        "jobs.ui.stage": ("段階", "Stage"),
        "jobs.ui.no_progress": ("まだ報告がありません。", "Nothing reported yet."),
        "jobs.ui.refreshing": (
            "実行中のため、このページは自動で更新されます。",
            "This page refreshes itself while the job runs.",
        ),
        "jobs.ui.result": ("結果", "Result"),
        "jobs.ui.error": ("失敗の理由", "Why it failed"),
        "jobs.ui.attempts": ("実行回数", "Runs"),
        "jobs.ui.worker": ("ワーカー", "Worker"),
        "jobs.ui.heartbeat": ("最終応答", "Last heard of"),
        "jobs.ui.back": ("ジョブ一覧へ", "Back to jobs"),
        "jobs.ui.failed_generic": (
            "ジョブは失敗しました。結果は残っていません。詳細は監査ログにあります。",
            "The job failed; nothing of its result was kept. The audit log has the details.",
        ),
        "jobs.ui.population_hash": ("対象者のハッシュ", "Population hash"),
        "jobs.ui.none_yet": ("まだありません", "none yet"),
        "jobs.ui.param_default": ("既定値", "default"),
    }
)


# PIA steps on a purpose.
messages.register(
    {
        "governance.pia_none_in_progress": (
            "利用目的「{purpose}」に作成中のPIAはありません。",
            "Purpose {purpose} has no PIA in progress.",
        ),
    }
)


# Bundles.
messages.register(
    {
        "governance.bundle_unreadable": (
            "バンドルを読み込めません（{detail}）。",
            "The bundle cannot be read ({detail}).",
        ),
        "governance.bundle_bad_value": (
            "値が正しくありません（{detail}）。",
            "invalid value ({detail})",
        ),
        "governance.bundle_unknown": (
            "{what}「{key}」が見つかりません（バンドルにもデータベースにもありません）。",
            "unknown {what_en} {key!r}",
        ),
        "governance.bundle_duplicate": (
            "キー「{key}」が重複しています。",
            "{key!r} appears more than once",
        ),
        "governance.bundle_item_of_other_file": (
            "記録項目「{key}」は既に個人情報ファイル「{file}」の項目です。",
            "item {key!r} already belongs to file {file!r}",
        ),
        "governance.bundle_kind_mismatch": (
            "経路の種類は「{derived}」と導かれます（バンドルには「{given}」と書かれています）。",
            "the derived route kind is {derived!r}, not {given!r}",
        ),
        "governance.bundle_needs_admin": (
            "アカウントの作成とロールの付与は、管理者として --as でサインインした適用でだけ行え"
            "ます（{what} {key}）。バンドル全体を適用しませんでした。サーバー上で初めて管理者を"
            "作るときは kodomo users create を使ってください。",
            "creating accounts and granting roles needs --as an administrator ({what} {key}); "
            "nothing of the bundle was applied (the operator's first administrator is made with "
            "`kodomo users create` on the server)",
        ),
        "governance.bundle_no_municipality": (
            "地方公共団体が登録されていません。バンドルに municipality を記載してください。",
            "no municipality is registered; give one under 'municipality'",
        ),
    }
)
