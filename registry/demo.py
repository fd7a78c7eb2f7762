# ruff: noqa: E501  (a data table of Japanese text; wrapping it would not help a reader)
"""The demo city's personal-information files (若葉台市, fictional), published where required."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from registry import service
from registry.models import RegistryFile
from registry.schemas import FileCreate, ItemCreate

MAYOR_OFFICE = ("若葉台市 総務部総務課 情報公開・個人情報保護担当",
                "若葉県若葉台市若葉台一丁目1番1号 若葉台市役所本庁舎2階")
BOE_OFFICE = ("若葉台市教育委員会 教育部学務課",
              "若葉県若葉台市若葉台一丁目1番1号 若葉台市役所本庁舎5階")

# Item spec: key, 名称, name, data type, category, special care, 条例要配慮, retention class,
# retention months, non-disclosure tags, 75(3) withholding reason (None: published).
Item = tuple[str, str, str, str, str, list[str], bool, str, int | None, list[str], str | None]


def _i(key: str, ja: str, en: str, dtype: str = "text", category: str = "identity",
       special: list[str] | None = None, ordinance: bool = False, retention: str = "R0",
       months: int | None = 60, tags: list[str] | None = None,
       withheld: str | None = None) -> Item:
    return (key, ja, en, dtype, category, special or [], ordinance, retention, months,
            tags or [], withheld)


FILES: list[dict[str, Any]] = [
    {
        "key": "juki", "name": "住民基本台帳ファイル", "organ": "mayor", "department": "residents",
        "purpose": "住民基本台帳法に基づき、住民の居住関係の公証、選挙人名簿の登録その他の住民に関する"
                   "事務の処理の基礎とするため",
        "record_scope": "若葉台市の住民基本台帳に記録されている者及び記録されていた者",
        "collection_method": "本人又は世帯主からの届出、他市区町村からの通知、職権調査",
        "regular_recipients": "若葉県（住民基本台帳ネットワークシステム）、法令に基づき照会を受けた行政機関",
        "persons": 58_420, "system": "住民記録システム", "file_type": "computer",
        "special_procedure": True,
        "special_procedure_note": "住民基本台帳法第12条等による写しの交付及び記載事項の修正の手続",
        "held_since": date(2023, 4, 1),
        "items": [
            _i("juki.name", "氏名", "Name"),
            _i("juki.kana", "氏名（フリガナ）", "Name (kana)"),
            _i("juki.birth_date", "生年月日", "Date of birth", "date"),
            _i("juki.sex", "性別", "Sex", "code"),
            _i("juki.address", "住所", "Address"),
            _i("juki.household_head", "世帯主の氏名", "Head of household", "text", "household"),
            _i("juki.relationship", "世帯主との続柄", "Relationship to head", "code", "household"),
            _i("juki.moved_in", "住民となった年月日", "Date of becoming resident", "date"),
            _i("juki.previous_address", "前住所", "Previous address"),
            _i("juki.resident_code", "住民票コード", "Resident record code", "code"),
            _i("juki.atena_no", "団体内統合宛名番号", "Integrated addressee number", "code",
               "administrative"),
        ],
    },
    {
        "key": "gakureibo", "name": "学齢簿ファイル", "organ": "board_of_education",
        "department": "school_affairs",
        "purpose": "学校教育法施行令に基づき学齢簿を編製し、就学義務の履行の督促、就学校の指定及び"
                   "就学援助の事務を行うため",
        "record_scope": "若葉台市に住所を有する学齢児童及び学齢生徒並びにその保護者",
        "collection_method": "住民基本台帳からの異動情報、保護者からの届出、学校からの通知",
        "regular_recipients": "市立小中学校（学校教育法施行令第7条による通知）",
        "persons": 9_860, "system": "学齢簿システム", "file_type": "computer",
        "special_procedure": False, "held_since": date(2023, 4, 1),
        "items": [
            _i("gakurei.name", "児童生徒の氏名", "Pupil's name"),
            _i("gakurei.birth_date", "生年月日", "Date of birth", "date"),
            _i("gakurei.address", "住所", "Address"),
            _i("gakurei.guardian", "保護者の氏名", "Guardian's name", "text", "household"),
            _i("gakurei.school", "就学する学校の名称", "School", "text", "education"),
            _i("gakurei.grade", "学年", "Grade", "code", "education"),
            _i("gakurei.dates", "入学・転学・卒業の年月日", "Entry, transfer and graduation dates",
               "date", "education"),
            _i("gakurei.exemption", "就学義務の猶予又は免除の状況", "Deferral or exemption",
               "code", "education"),
            _i("gakurei.aid", "就学援助の認定状況", "School-expense aid", "flag", "welfare",
               ordinance=True),
        ],
    },
    {
        "key": "shukketsu", "name": "児童生徒出欠管理ファイル", "organ": "board_of_education",
        "department": "school_education",
        "purpose": "市立小中学校の児童生徒の出欠状況を把握し、長期欠席・不登校の児童生徒への支援を行うため",
        "record_scope": "市立小中学校に在籍する児童生徒",
        "collection_method": "各学校からの月次報告（校務支援システム）",
        "regular_recipients": "なし",
        "persons": 4_120, "system": "校務支援システム", "file_type": "computer",
        "special_procedure": False, "held_since": date(2023, 4, 1),
        "items": [
            _i("shukketsu.name", "児童生徒の氏名", "Pupil's name"),
            _i("shukketsu.school_class", "学校名・学年・組", "School, grade and class", "text",
               "education"),
            _i("shukketsu.days_present", "出席日数", "Days present", "number", "education"),
            _i("shukketsu.days_absent", "欠席日数", "Days absent", "number", "education"),
            _i("shukketsu.absence_reason", "欠席理由の区分", "Reason for absence", "code",
               "education"),
            _i("shukketsu.late_early", "遅刻・早退の回数", "Late arrivals and early leaves",
               "number", "education"),
            _i("shukketsu.teacher_note", "担任の所見", "Class teacher's note", "text",
               "education", tags=["assessment_opinion"], months=36),
        ],
    },
    {
        "key": "hoiku", "name": "保育所等入所管理ファイル", "organ": "mayor",
        "department": "childcare",
        "purpose": "子ども・子育て支援法及び児童福祉法に基づく保育の必要性の認定、保育所等の利用調整"
                   "及び保育料の決定を行うため",
        "record_scope": "保育所等の利用を申し込んだ児童及びその保護者",
        "collection_method": "保護者からの申請書、税務情報（同意に基づく）、保育所等からの報告",
        "regular_recipients": "市内の保育所等（利用調整結果の通知）",
        "persons": 3_650, "system": "子ども・子育て支援システム", "file_type": "computer",
        "special_procedure": False, "held_since": date(2023, 4, 1),
        "items": [
            _i("hoiku.child_name", "児童の氏名", "Child's name"),
            _i("hoiku.birth_date", "児童の生年月日", "Child's date of birth", "date"),
            _i("hoiku.guardian", "保護者の氏名", "Guardian's name", "text", "household"),
            _i("hoiku.address", "住所", "Address"),
            _i("hoiku.facility", "入所保育所等", "Childcare facility", "text", "childcare"),
            _i("hoiku.need_reason", "保育を必要とする事由", "Reason care is needed", "code",
               "childcare"),
            _i("hoiku.tax_bracket", "市町村民税所得割額の階層区分", "Municipal tax bracket",
               "code", "income"),
            _i("hoiku.disability", "障害の有無及び程度", "Disability and its degree", "code",
               "childcare", ["disability"]),
            _i("hoiku.fee", "保育料", "Childcare fee", "number", "childcare"),
        ],
    },
    {
        "key": "jidoteate", "name": "児童手当受給者ファイル", "organ": "mayor",
        "department": "child_family",
        "purpose": "児童手当法に基づく児童手当の認定、支給及び現況の確認を行うため",
        "record_scope": "児童手当の受給者及びその支給対象児童",
        "collection_method": "受給者からの認定請求書・届出、住民基本台帳及び税務情報",
        "regular_recipients": "なし",
        "persons": 11_300, "system": "児童手当システム", "file_type": "computer",
        "special_procedure": False, "held_since": date(2023, 4, 1),
        "items": [
            _i("teate.recipient_name", "受給者の氏名", "Recipient's name"),
            _i("teate.address", "住所", "Address"),
            _i("teate.child_name", "支給対象児童の氏名", "Eligible child's name"),
            _i("teate.child_birth", "支給対象児童の生年月日", "Eligible child's date of birth",
               "date"),
            _i("teate.income", "所得額", "Income", "number", "income"),
            _i("teate.bank", "振込先口座", "Bank account", "text", "administrative"),
            _i("teate.amount", "支給額", "Amount paid", "number", "welfare"),
            _i("teate.state", "受給状況（認定・消滅・差止め）", "Status of the allowance", "code",
               "welfare"),
        ],
    },
    {
        "key": "seiho", "name": "生活保護ケース記録ファイル", "organ": "mayor",
        "department": "welfare",
        "purpose": "生活保護法に基づく保護の決定及び実施並びに被保護者の自立の助長を行うため",
        "record_scope": "生活保護の申請者、被保護者及びその世帯員",
        "collection_method": "本人からの申請・申告、扶養義務者・金融機関等への調査（生活保護法第29条）",
        "regular_recipients": "若葉県（生活保護法施行事務監査）、医療機関（医療券の交付）",
        "persons": 1_240, "system": "生活保護システム", "file_type": "computer",
        "special_procedure": False, "held_since": date(2023, 4, 1),
        "items": [
            _i("seiho.name", "被保護者の氏名", "Recipient's name"),
            _i("seiho.birth_date", "生年月日", "Date of birth", "date"),
            _i("seiho.address", "住所", "Address"),
            _i("seiho.household", "世帯構成", "Household members", "text", "household"),
            _i("seiho.kind", "保護の種類及び程度", "Kind and level of assistance", "code",
               "welfare", ordinance=True),
            _i("seiho.income", "収入及び資産の状況", "Income and assets", "text", "income"),
            _i("seiho.illness", "傷病名及び障害の状況", "Illness and disability", "text", "welfare",
               ["medical_history", "disability"]),
            _i("seiho.employment", "就労の状況", "Employment", "text", "welfare"),
            _i("seiho.case_notes", "ケース記録（訪問記録・所見）", "Case notes", "text", "welfare",
               tags=["assessment_opinion", "third_party"], retention="R3", months=60),
            _i("seiho.fraud_check", "不正受給の調査状況", "Fraud investigation", "text", "welfare",
               tags=["investigation"],
               withheld="記載することにより調査事務の適正な遂行に著しい支障を及ぼすおそれがあるため"
                        "（法第75条第3項）"),
        ],
    },
    {
        "key": "kenshin", "name": "乳幼児健康診査ファイル", "organ": "mayor",
        "department": "maternal_health",
        "purpose": "母子保健法に基づく乳幼児健康診査を実施し、その結果に基づく保健指導及び未受診者の"
                   "状況把握を行うため",
        "record_scope": "若葉台市に住所を有する乳幼児（4か月児、1歳6か月児、3歳児）及びその保護者",
        "collection_method": "健康診査の問診票・診察結果、保護者からの聞き取り、委託医療機関からの結果報告",
        "regular_recipients": "なし",
        "persons": 2_310, "system": "健康管理システム", "file_type": "computer",
        "special_procedure": False, "held_since": date(2023, 4, 1),
        "items": [
            _i("kenshin.name", "乳幼児の氏名", "Infant's name"),
            _i("kenshin.birth_date", "生年月日", "Date of birth", "date"),
            _i("kenshin.guardian", "保護者の氏名", "Guardian's name", "text", "household"),
            _i("kenshin.address", "住所", "Address"),
            _i("kenshin.kind", "健診の種別及び受診日", "Check-up and date", "text", "health"),
            _i("kenshin.measure", "身体計測の結果", "Body measurements", "text", "health",
               ["health_check_result"]),
            _i("kenshin.findings", "診察所見", "Doctor's findings", "text", "health",
               ["health_check_result"], tags=["assessment_opinion"]),
            _i("kenshin.development", "発達の状況", "Development", "text", "health",
               ["health_check_result"]),
            _i("kenshin.guidance", "保健指導の内容", "Health guidance given", "text", "health",
               ["medical_guidance"]),
            _i("kenshin.follow_up", "要経過観察の区分", "Follow-up category", "code", "health",
               ["health_check_result"]),
            _i("kenshin.unattended", "未受診の状況", "Non-attendance", "flag", "health"),
        ],
    },
    {
        "key": "iryo_kininaru", "name": "医療機関からの気になる情報ファイル", "organ": "mayor",
        "department": "child_family",
        "purpose": "医療機関から提供された養育上の支援が必要と思われる児童及び家庭に関する情報に基づき、"
                   "児童福祉法による相談支援を行うため",
        "record_scope": "医療機関から情報提供を受けた児童及びその保護者",
        "collection_method": "医療機関からの情報提供書（児童福祉法第21条の10の5）",
        "regular_recipients": "若葉県中央児童相談所（児童福祉法第25条による通告）",
        "persons": 140, "system": "児童家庭相談システム", "file_type": "computer",
        "special_procedure": False, "held_since": date(2024, 4, 1),
        "items": [
            _i("kininaru.child_name", "児童の氏名", "Child's name"),
            _i("kininaru.birth_date", "児童の生年月日", "Child's date of birth", "date"),
            _i("kininaru.guardian", "保護者の氏名", "Guardian's name", "text", "household"),
            _i("kininaru.hospital", "情報提供医療機関の名称", "Reporting institution", "text",
               "medical_flag", tags=["reporter_identity"]),
            _i("kininaru.date", "情報提供日", "Date reported", "date", "medical_flag"),
            _i("kininaru.concern", "気になる状況の内容", "Concern reported", "text",
               "medical_flag", ["medical_history", "medical_guidance"],
               tags=["child_safety_risk", "assessment_opinion"], retention="R3"),
            _i("kininaru.doctor", "情報提供した医師の氏名", "Reporting doctor", "text",
               "medical_flag", tags=["reporter_identity"],
               withheld="記載することにより情報提供者が特定され、事務の適正な遂行に著しい支障を及ぼすおそれがあるため"
                        "（法第75条第3項）"),
            _i("kininaru.response", "対応状況", "Action taken", "text", "welfare",
               tags=["assessment_opinion"], retention="R3"),
        ],
    },
]


def _office(organ: str) -> tuple[str, str]:
    return BOE_OFFICE if organ == "board_of_education" else MAYOR_OFFICE


def load(session: Session) -> list[str]:
    """Create the demo files once and publish those that must be published; idempotent."""
    existing = session.exec(select(RegistryFile).where(
        col(RegistryFile.key).in_([f["key"] for f in FILES]))).all()
    if existing:
        return ["個人情報ファイル簿: 既に登録済み / file register already loaded"]
    actor = audit.SYSTEM
    lines = []
    for spec in FILES:
        office_name, office_address = _office(spec["organ"])
        file = service.create_file(session, actor, FileCreate(
            key=spec["key"], name=spec["name"], organ=spec["organ"],
            department=spec["department"], purpose=spec["purpose"],
            record_scope=spec["record_scope"], collection_method=spec["collection_method"],
            regular_recipients=spec["regular_recipients"], request_office_name=office_name,
            request_office_address=office_address,
            special_procedure=spec["special_procedure"],
            special_procedure_note=spec.get("special_procedure_note", ""),
            file_type=spec["file_type"], persons_count=spec["persons"],
            source_system=spec["system"], held_since=spec["held_since"],
            reason="デモデータの登録"))
        for position, (key, ja, en, dtype, category, special, ordinance, retention, months,
                       tags, withheld) in enumerate(spec["items"], start=1):
            service.add_item(session, actor, file, ItemCreate.model_validate({
                "key": key, "name_ja": ja, "name_en": en, "data_type": dtype,
                "category": category, "special_care": special,
                "ordinance_special_care": ordinance,
                "ordinance_reference": "若葉台市個人情報保護法施行条例第2条" if ordinance else "",
                "retention_class": retention, "retention_months": months,
                "nondisclosure_tags": tags, "withheld": withheld is not None,
                "withheld_reason": withheld or "", "position": position,
                "reason": "デモデータの登録"}))
        published = service.publication_required(file)
        if published:
            service.publish(session, actor, file, "ファイル簿の作成・公表（デモ）")
        lines.append(f"  {file.key:<14} {file.name}（{file.persons_count:,}人）"
                     f"{' 公表' if published else ' 非公表（1,000人未満）'}")
    return ["個人情報ファイル簿を登録しました / file register loaded", *lines]
