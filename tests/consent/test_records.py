"""Recording consent: every bad input refused with a Reason; notices fixed once shown; receipts."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from io import BytesIO

import pytest
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pypdf import PdfReader
from sqlmodel import select

from consent import receipts, service
from consent.models import ChildView, ConsentEvent, NoticeItem, Relation
from consent.schemas import ConsentIn, WithdrawIn
from core import audit, auth
from core.reasons import Conflict, InvalidInput
from tests.factories import AT, SHOWN, World, make_notice


def _codes(error: pytest.ExceptionInfo[InvalidInput]) -> set[str]:
    return {r.code for r in error.value.reasons}


def test_a_notice_never_shown_is_refused(world: World) -> None:
    child, parents = world.family("2013-05-10")
    hidden = make_notice(world.session, world.purpose_id, world.organ_id, world.items,
                         world.recipient, shown=False)
    with pytest.raises(InvalidInput) as error:
        world.give(child, parents[0], notice=hidden)
    assert _codes(error) == {"consent.notice_never_shown"}


def test_a_scope_outside_the_notice_is_refused(world: World) -> None:
    child, parents = world.family("2013-05-10")
    with pytest.raises(InvalidInput) as error:
        world.give(child, parents[0], items=[world.items[0]], recipients=["body:1"])
    assert _codes(error) == {"consent.scope_missing_necessary", "consent.scope_not_in_notice"}
    assert {r.field for r in error.value.reasons} == {"items", "recipients"}


def test_optional_items_may_be_left_out(world: World) -> None:
    notice = make_notice(world.session, world.purpose_id, world.organ_id, world.items,
                         world.recipient, optional=world.items[1])
    child, parents = world.family("2013-05-10")
    for parent in parents:
        world.give(child, parent, items=[world.items[0]], notice=notice)
    assert world.eligible([child], flows=[world.flows[0]]) == {child}
    assert world.eligible([child]) == set()


def test_someone_without_authority_is_refused(world: World) -> None:
    child, _parents = world.family("2013-05-10")
    _other, (stranger, _x) = world.family("2012-01-01")
    with pytest.raises(InvalidInput) as error:
        world.give(child, stranger)
    assert _codes(error) == {"consent.no_authority"}
    with pytest.raises(InvalidInput) as error:
        world.give(child, _parents[0], relation=Relation.minor_guardian)
    assert _codes(error) == {"consent.no_authority"}


def test_a_child_alone_below_the_guardian_age_is_refused(world: World) -> None:
    child, _parents = world.family("2011-05-10")  # 14
    with pytest.raises(InvalidInput) as error:
        world.give(child)
    assert _codes(error) == {"consent.child_alone_below_guardian_age"}


def test_the_childs_view_is_required_from_twelve(world: World) -> None:
    child, parents = world.family("2013-05-10")  # 12
    with pytest.raises(InvalidInput) as error:
        world.give(child, parents[0], view=None)
    assert _codes(error) == {"consent.child_view_required"}
    young, young_parents = world.family("2016-05-10")  # 9
    record = world.give(young, young_parents[0], view=None)
    assert record.child_view == ChildView.not_asked and record.child_view_reason


def test_a_guardian_cannot_consent_for_a_sixteen_year_old(world: World) -> None:
    child, parents = world.family("2009-05-10")
    with pytest.raises(InvalidInput) as error:
        world.give(child, parents[0])
    assert _codes(error) == {"consent.child_decides"}


def test_a_shown_notice_never_changes(world: World) -> None:
    world.session.commit()
    notice = world.notice
    notice.title_ja = "書き換え"
    world.session.add(notice)
    with pytest.raises(Conflict):
        world.session.flush()
    world.session.rollback()
    with pytest.raises(Conflict):
        world.session.add(NoticeItem(notice_id=world.notice.id or 0, item_id=world.items[0],
                                     label_ja="追加"))
        world.session.flush()
    world.session.rollback()


def test_events_and_receipts(world: World) -> None:
    child, parents = world.family("2013-05-10")
    record, receipt = service.record_consent(world.session, audit.SYSTEM, ConsentIn(
        principal_id=child, given_by_id=parents[0], relation=Relation.parent,
        notice_id=world.notice.id or 0, item_ids=world.items, recipients=[world.recipient],
        child_view=ChildView.assent, at=SHOWN + timedelta(days=1)))
    assert receipt is not None
    payload = receipts.verify(receipt.jws)
    for name in ("version", "jurisdiction", "consentTimestamp", "collectionMethod",
                 "consentReceiptID", "language", "piiPrincipalId", "piiControllers",
                 "policyUrl", "services", "sensitive", "spiCat"):
        assert name in payload
    assert payload["piiPrincipalId"] == child
    assert payload["given_by"] == {"person_id": parents[0], "relation": "parent",
                                   "authority_proof": "戸籍謄本"}
    assert payload["event"]["event_type"] == "given"
    assert sorted(payload["services"][0]["purposes"][0]["piiItemIds"]) == sorted(world.items)
    assert "試験" not in receipt.jws  # no names inside the signed receipt
    _withdrawn, withdrawal = service.withdraw(world.session, audit.SYSTEM, record.id,
                                              WithdrawIn(at=AT))
    assert receipts.verify(withdrawal.jws)["event"]["event_type"] == "withdrawn"
    events = world.session.exec(select(ConsentEvent).where(
        ConsentEvent.record_id == record.id)).all()
    assert [str(e.type) for e in events] == ["given", "withdrawn"]
    document = receipts.pdf(world.session, withdrawal)
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(document)).pages)
    assert "同意撤回の控え" in text and withdrawal.id in text


def test_a_receipt_with_one_changed_byte_fails(world: World) -> None:
    child, parents = world.family("2013-05-10")
    _record, receipt = service.record_consent(world.session, audit.SYSTEM, ConsentIn(
        principal_id=child, given_by_id=parents[0], relation=Relation.parent,
        notice_id=world.notice.id or 0, item_ids=world.items, recipients=[world.recipient],
        child_view=ChildView.assent, at=SHOWN))
    assert receipt is not None
    token = receipt.jws
    for position, char in enumerate(token):
        changed = token[:position] + ("B" if char == "A" else "A") + token[position + 1:]
        with pytest.raises(auth.InvalidSignature):
            receipts.verify(changed)
    with pytest.raises(auth.InvalidSignature):
        receipts.verify(token + "A")


def test_the_jwks_verifies_a_receipt_independently(world: World) -> None:
    child, parents = world.family("2013-05-10")
    _record, receipt = service.record_consent(world.session, audit.SYSTEM, ConsentIn(
        principal_id=child, given_by_id=parents[0], relation=Relation.parent,
        notice_id=world.notice.id or 0, item_ids=world.items, recipients=[world.recipient],
        child_view=ChildView.assent, at=SHOWN))
    assert receipt is not None
    (key,) = auth.receipt_jwks()["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"

    def b64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    public = ec.EllipticCurvePublicNumbers(int.from_bytes(b64(key["x"])),
                                           int.from_bytes(b64(key["y"])),
                                           ec.SECP256R1()).public_key()
    header, body, signature = receipt.jws.split(".")
    assert json.loads(b64(header))["kid"] == key["kid"]
    raw = b64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    public.verify(der, f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(CryptoInvalidSignature):
        public.verify(der, f"{header}.{body}x".encode(), ec.ECDSA(hashes.SHA256()))
