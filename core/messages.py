"""The one message catalogue: every text a person sees, Japanese first, then English."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Lang = Literal["ja", "en"]

_CATALOGUE: dict[str, tuple[str, str]] = {}


def register(messages: Mapping[str, tuple[str, str]]) -> None:
    """Add a package's messages; a code may not be given two different texts."""
    for code, pair in messages.items():
        existing = _CATALOGUE.get(code)
        if existing is not None and existing != pair:
            raise ValueError(f"message code {code!r} registered twice with different text")
        _CATALOGUE[code] = pair


def has(code: str) -> bool:
    return code in _CATALOGUE


def text(code: str, lang: Lang = "ja", /, **params: Any) -> str:
    """The message for a code in one language; an unknown code is a programming error."""
    ja, en = _CATALOGUE[code]
    template = ja if lang == "ja" else en
    return template.format(**params) if params else template


def both(code: str, /, **params: Any) -> tuple[str, str]:
    return text(code, "ja", **params), text(code, "en", **params)


def codes() -> frozenset[str]:
    return frozenset(_CATALOGUE)


register(
    {
        # Interface words of the console shell.
        "ui.app_name": ("こどもデータ連携 法務管理", "Children's data linkage governance"),
        "ui.sign_in": ("サインイン", "Sign in"),
        "ui.sign_out": ("サインアウト", "Sign out"),
        "ui.login": ("ログインID", "Login ID"),
        "ui.password": ("パスワード", "Password"),
        "ui.home": ("ホーム", "Home"),
        "ui.audit_log": ("監査ログ", "Audit log"),
        "ui.your_roles": ("あなたの役割", "Your roles"),
        "ui.what_you_can_do": ("できること", "What you can do"),
        "ui.todo": ("対応が必要なこと", "To do"),
        "ui.nothing_to_do": (
            "現在、対応が必要な事項はありません。",
            "Nothing needs your attention.",
        ),
        "ui.signed_in_as": ("サインイン中: {name}", "Signed in as {name}"),
        "ui.previous": ("前へ", "Previous"),
        "ui.next": ("次へ", "Next"),
        "ui.forbidden": ("この操作を行う権限がありません。", "You are not allowed to do this."),
        "ui.organisation": ("組織の管理", "Organisation"),
        # Kinds of organs and outside bodies, as the organisation page names them.
        "organ_kind.mayor": ("市長", "Mayor"),
        "organ_kind.board_of_education": ("教育委員会", "Board of education"),
        "organ_kind.election_commission": ("選挙管理委員会", "Election commission"),
        "organ_kind.audit_commissioner": ("監査委員", "Audit commissioners"),
        "organ_kind.agricultural_committee": ("農業委員会", "Agricultural committee"),
        "organ_kind.fire_department": ("消防長", "Fire chief"),
        "organ_kind.public_enterprise": ("公営企業管理者", "Public enterprise manager"),
        "organ_kind.other": ("その他の執行機関", "Other organ"),
        "body_kind.other_local_government": ("他の地方公共団体の機関", "Another local government"),
        "body_kind.national_government": ("国の行政機関", "National government"),
        "body_kind.independent_administrative_agency": (
            "独立行政法人等", "Independent administrative agency"),
        "body_kind.hospital": ("病院・診療所", "Hospital or clinic"),
        "body_kind.school_corporation": ("学校法人", "School corporation"),
        "body_kind.npo": ("NPO法人", "NPO"),
        "body_kind.private_business": ("民間事業者", "Private business"),
        "body_kind.other": ("その他", "Other"),
        "ui.policies": ("方針（ポリシー）の設定", "Policies in force"),
        "ui.policies.intro": (
            "法令が自治体に委ねている事項や、このサービスの設計上の判断（[I]）・条文未確認の規定"
            "（[R]）は、次の方針として設定されています。変更はシステム管理者が設定ファイル"
            "（KODOMO_POLICY_FILE）または環境変数で行い、次回の起動から有効になります。",
            "The choices the law leaves to the municipality, the service's design inferences ([I])"
            " and the statute text not re-read ([R]) are set as the policies below. The operator "
            "changes them in the policy file (KODOMO_POLICY_FILE) or the environment; a change "
            "takes effect at the next start.",
        ),
        "ui.policies.item": ("項目", "Item"),
        "ui.policies.value": ("現在の値", "In force"),
        "ui.policies.default": ("既定値", "Default"),
        "ui.policies.same": ("（現在の値と同じ）", "(as in force)"),
        "ui.policies.basis": ("根拠", "Legal basis"),
        "ui.policies.tag": ("区分", "Tag"),
        "ui.policies.source": ("設定元", "Set by"),
        "ui.policies.key": ("設定キー", "Key"),
        # Roles (LAW.md §10.5 governance roles plus auditor and admin).
        "role.privacy_officer": ("総括管理主体（個人情報保護責任者）", "Privacy officer"),
        "role.data_holder": ("保有・管理主体", "Data holder"),
        "role.analyst": ("分析主体", "Analyst"),
        "role.support_worker": ("活用主体（支援担当）", "Support worker"),
        "role.auditor": ("監査担当", "Auditor"),
        "role.admin": ("システム管理者", "Administrator"),
        "role.privacy_officer.can": (
            "利用目的・目的外利用の承認、PIA と個人情報ファイル簿の管理",
            "Approve purposes and out-of-purpose use; keep PIAs and the file register",
        ),
        "role.data_holder.can": (
            "保有する個人情報ファイルと記録項目の登録・更新",
            "Register and update the personal-information files your unit holds",
        ),
        "role.analyst.can": (
            "法的根拠が確認された名寄せ・スコアリング・統計ジョブの実行",
            "Run linkage, scoring and statistics jobs that have a legal basis",
        ),
        "role.support_worker.can": (
            "支援対象として提供された情報の確認と支援記録",
            "See the information provided for support and record support",
        ),
        "role.auditor.can": ("監査ログの閲覧と検証", "Read and verify the audit log"),
        "role.admin.can": (
            "組織・職員アカウント・役割の管理",
            "Manage the organisation, staff accounts and roles",
        ),
    }
)
