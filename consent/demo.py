"""The demo city's children, guardians and a few consents (fictional people only).

Consent does not look purposes up: `main.py` hands over the purpose id, the items and the
recipient of the purpose's consent route after governance's demo has been loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlmodel import Session, select

from consent import importer, service
from consent.models import ChildView, Person, Relation
from consent.schemas import ConsentIn, NoticeIn, NoticeItemIn, NoticeRecipientIn, WithdrawIn
from core import audit

# A fictional extract: 宛名番号, names, kana, birth date, sex, household, guardians.
EXTRACT = """atena_no,family_name,given_name,family_kana,given_kana,birth_date,sex,household_no,\
parent1_atena_no,parent2_atena_no,parent_proof,minor_guardian_atena_no,minor_guardian_proof
D0000000000101,若葉,一郎,ワカバ,イチロウ,1982-06-01,1,H0001,,,,,
D0000000000102,若葉,恵子,ワカバ,ケイコ,1984-09-12,2,H0001,,,,,
D0000000000103,若葉,さくら,ワカバ,サクラ,2012-05-10,2,H0001,D0000000000101,D0000000000102,戸籍R8.4,,
D0000000000201,青葉,健太,アオバ,ケンタ,1980-02-03,1,H0002,,,,,
D0000000000202,青葉,由美,アオバ,ユミ,1983-11-20,2,H0002,,,,,
D0000000000203,青葉,陽斗,アオバ,ハルト,2014-08-01,1,H0002,D0000000000201,D0000000000202,戸籍R8.4,,
D0000000000301,緑川,美咲,ミドリカワ,ミサキ,2010-01-15,2,H0003,D0000000000302,,戸籍R8.4,,
D0000000000302,緑川,直子,ミドリカワ,ナオコ,1978-07-07,2,H0003,,,,,
D0000000000401,桜井,翔,サクライ,ショウ,2016-03-03,1,H0004,D0000000000402,,戸籍R8.4,,
D0000000000402,桜井,真理,サクライ,マリ,1988-12-24,2,H0004,,,,,
D0000000000501,森,結衣,モリ,ユイ,2013-02-28,2,H0005,,,,D0000000000502,家庭裁判所 審判書 R7(家)123
D0000000000502,森,和夫,モリ,カズオ,1955-04-18,1,H0005,,,,,
"""

SHOWN_AT = datetime(2026, 4, 1, tzinfo=UTC)


def load_demo(session: Session, purpose_id: int, controller_organ_id: int,
              items: Sequence[tuple[int, str]], recipient: tuple[str, str]) -> list[str]:
    """People, a shown notice and a few consents for one purpose's consent route.

    items: (registry_item.id, label shown); recipient: (key like "organ:1", label shown).
    """
    if session.exec(select(Person)).first() is not None:
        return ["本人・同意: 既に登録済み / people and consent already loaded"]
    actor = audit.SYSTEM
    result = importer.import_bytes(session, actor, EXTRACT.encode("utf-8"), at=SHOWN_AT)
    notice = service.create_notice(session, actor, NoticeIn(
        key="young_carers.consent", purpose_id=purpose_id,
        controller_organ_id=controller_organ_id,
        title_ja="ヤングケアラーの早期把握のための情報の利用についての同意",
        title_en="Consent to the use of information to find young carers early",
        text_ja="学校の出欠の情報を、こども家庭課のコーディネーターが確認し、"
                "支援のご案内に使います。同意はいつでも撤回できます。",
        text_en="The Children and Families Division's coordinator will look at school "
                "attendance to offer support. You can withdraw at any time.",
        withdrawal_method_ja="こども家庭課の窓口、郵送、またはオンラインで撤回できます。",
        withdrawal_method_en="At the counter, by post or online.",
        validity_days=365,
        items=[NoticeItemIn(item_id=i, label_ja=label) for i, label in items],
        recipients=[NoticeRecipientIn(recipient=recipient[0], label_ja=recipient[1])]))
    service.mark_notice_shown(session, actor, notice.id or 0, at=SHOWN_AT)
    ids = {p.atena_no: p.id for p in session.exec(select(Person)).all()}
    item_ids = [i for i, _label in items]

    def give(child: str, giver: str, relation: Relation, view: ChildView | None,
             day: int) -> str:
        record, _receipt = service.record_consent(session, actor, ConsentIn(
            principal_id=ids[child], given_by_id=ids[giver], relation=relation,
            notice_id=notice.id or 0, item_ids=item_ids, recipients=[recipient[0]],
            child_view=view,
            evidence_ref=f"demo-form-{day:03d}", at=datetime(2026, 4, day, 10, tzinfo=UTC)))
        return record.id

    # Both parents of さくら (13) consented; she assented.
    give("D0000000000103", "D0000000000101", Relation.parent, ChildView.assent, 6)
    give("D0000000000103", "D0000000000102", Relation.parent, ChildView.assent, 6)
    # Only one parent of 陽斗 (11) so far: not yet eligible.
    give("D0000000000203", "D0000000000201", Relation.parent, None, 7)
    # 美咲 (16) consented herself.
    give("D0000000000301", "D0000000000301", Relation.self_, None, 8)
    # 翔 (10): the parent consented, then withdrew.
    record = give("D0000000000401", "D0000000000402", Relation.parent, None, 9)
    service.withdraw(session, actor, record, WithdrawIn(
        evidence_ref="demo-withdrawal-001", at=datetime(2026, 4, 20, 10, tzinfo=UTC)))
    # 結衣 (13): her 未成年後見人 consented; she assented.
    give("D0000000000501", "D0000000000502", Relation.minor_guardian, ChildView.assent, 10)
    return [f"本人 / people: {result.created}（親権者等 {result.links_added} 件）",
            f"同意説明文 / notice: {notice.key} 第{notice.version}版",
            "同意 / consents: 6（うち撤回 1）"]

