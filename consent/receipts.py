"""Consent receipts: JSON with ISO/IEC TS 27560 / Kantara v1.1 field names, signed (JWS, ES256).

The receipt names people only by their random internal ids; names appear on the printed copy,
which is rendered on request and never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from consent.models import (
    ConsentEvent,
    ConsentRecord,
    ConsentScope,
    EventType,
    Notice,
    NoticeItem,
    NoticeRecipient,
    Person,
    Receipt,
    new_id,
)
from core import auth
from core.clock import as_utc, format_tokyo
from core.documents import render_pdf
from core.keys import get_keyring
from core.models import Municipality, Organ

KANTARA_VERSION = "KI-CR-v1.1.0"
COLLECTION_METHODS = {"online": "online form", "paper": "paper form entered by staff",
                      "counter": "in person at the counter"}


def _controller(session: Session, organ_id: int) -> dict[str, Any]:
    organ = session.get(Organ, organ_id)
    city = session.exec(select(Municipality)).first()
    return {
        "piiController": organ.name_ja if organ else "",
        "onBehalf": False,
        "contact": city.name_ja if city else "",
        "address": city.name_ja if city else "",
        "email": "",
        "phone": "",
        "piiControllerUrl": "",
        "organId": organ_id,
    }


def build(session: Session, record: ConsentRecord, event: ConsentEvent,
          receipt_id: str, issued_at: datetime) -> dict[str, Any]:
    """The receipt of one event of a record (Kantara v1.1 names, 27560 record and event)."""
    notice = session.get(Notice, record.notice_id)
    assert notice is not None
    scopes = session.exec(select(ConsentScope).where(ConsentScope.record_id == record.id)).all()
    items = {s.item_id: s.optional for s in scopes}
    recipients = sorted({s.recipient for s in scopes})
    item_labels = {i.item_id: i.label_ja for i in session.exec(
        select(NoticeItem).where(NoticeItem.notice_id == notice.id)).all()}
    recipient_labels = {r.recipient: r.label_ja for r in session.exec(
        select(NoticeRecipient).where(NoticeRecipient.notice_id == notice.id)).all()}
    moment = event.at
    return {
        # Kantara Consent Receipt v1.1
        "version": KANTARA_VERSION,
        "jurisdiction": notice.jurisdiction,
        "consentTimestamp": int(moment.timestamp()),
        "collectionMethod": COLLECTION_METHODS.get(str(event.channel), str(event.channel)),
        "consentReceiptID": receipt_id,
        "language": record.language,
        "piiPrincipalId": record.principal_id,
        "piiControllers": [_controller(session, record.controller_organ_id)],
        "policyUrl": notice.policy_url,
        "services": [{
            "service": notice.title_ja,
            "purposes": [{
                "purpose": notice.title_ja,
                "purposeId": record.purpose_id,
                "purposeCategory": ["support for children and families"],
                "consentType": "EXPLICIT",
                "piiCategory": [item_labels.get(i, str(i)) for i in sorted(items)],
                "piiItemIds": sorted(items),
                "primaryPurpose": False,
                "termination": (format_tokyo(record.valid_until) if record.valid_until
                                else "until withdrawn"),
                "thirdPartyDisclosure": True,
                "thirdPartyName": [recipient_labels.get(r, r) for r in recipients],
                "recipients": recipients,
            }],
        }],
        "sensitive": False,
        "spiCat": [],
        # ISO/IEC TS 27560 record and event
        "schema_version": record.schema_version,
        "record_id": record.id,
        "pii_principal_id": record.principal_id,
        "legal_basis": record.legal_route,
        "privacy_notice": {"key": notice.key, "version": notice.version, "id": notice.id},
        "withdrawal_method": record.withdrawal_method,
        "retention_period": record.retention_class,
        "given_by": {"person_id": record.given_by_id, "relation": str(record.relation),
                     "authority_proof": record.authority_proof},
        "child_age_at_event": record.child_age_at_event,
        "child_view": str(record.child_view),
        "event": {
            "event_id": event.id,
            "event_time": moment.isoformat(),
            "event_type": str(event.type),
            "event_state": str(record.state),
            "entity_id": event.person_id,
            "validity_duration": (record.valid_until.isoformat()
                                  if record.valid_until else None),
            "channel": str(event.channel),
        },
        "receipt_issued_at": as_utc(issued_at).isoformat(),
    }


def issue(session: Session, record: ConsentRecord, event: ConsentEvent,
          at: datetime) -> Receipt:
    """Sign and store the receipt of a given or withdrawn event."""
    assert event.type in (EventType.given, EventType.withdrawn, EventType.reconfirmed)
    assert event.id is not None
    receipt_id = new_id()
    payload = build(session, record, event, receipt_id, at)
    receipt = Receipt(id=receipt_id, record_id=record.id, event_id=event.id,
                      issued_at=as_utc(at), key_id=get_keyring().receipt_signing_kid,
                      jws=auth.sign_jws(payload))
    session.add(receipt)
    session.flush()
    return receipt


def verify(token: str) -> dict[str, Any]:
    """The receipt's payload if the signature holds; core.auth.InvalidSignature otherwise."""
    return auth.verify_jws(token)


def receipts_of(session: Session, record_id: str) -> list[Receipt]:
    return list(session.exec(select(Receipt).where(Receipt.record_id == record_id)
                             .order_by(col(Receipt.issued_at))).all())


def pdf(session: Session, receipt: Receipt) -> bytes:
    """A printable Japanese receipt (names are decrypted for the print only)."""
    payload = verify(receipt.jws)
    principal = session.get(Person, payload["pii_principal_id"])
    giver = session.get(Person, payload["given_by"]["person_id"])
    purpose = payload["services"][0]["purposes"][0]
    withdrawn = payload["event"]["event_type"] == "withdrawn"
    return render_pdf("consent/receipt_print.html", {
        "r": payload,
        "purpose": purpose,
        "withdrawn": withdrawn,
        "child_name": principal.name if principal else "",
        "giver_name": giver.name if giver else "",
        "event_time": format_tokyo(datetime.fromisoformat(payload["event"]["event_time"])),
        "issued": format_tokyo(receipt.issued_at),
        "jws": receipt.jws,
        "kid": receipt.key_id,
    }, package="consent")
