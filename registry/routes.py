"""Routes of the register: staff JSON API, staff console pages, and the public register."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from core import messages
from core.auth import Principal
from core.clock import as_utc, to_tokyo, utcnow
from core.dates import date_or_text
from core.forms import by_field, field_reason, parse_form, text
from core.models import Department, Organ, Role
from core.reasons import DomainError, InvalidInput, Reason
from core.routes import TodoItem, TodoPanel
from core.schemas import ReasonPublic
from core.service import list_departments, list_organs
from core.web import FormDep, SessionDep, api_staff, console_staff, public, render
from registry import rules, service
from registry.models import (
    FileType,
    ItemCategory,
    NondisclosureTag,
    RegistryFile,
    RegistryItem,
    RetentionClass,
    SpecialCare,
)
from registry.schemas import (
    CeaseBody,
    ChangeBody,
    FileCreate,
    FilePublic,
    FileUpdate,
    ItemCreate,
    ItemPublic,
    ItemUpdate,
    PublicRegister,
    ReasonBody,
    StatusPublic,
    VersionPublic,
)

messages.register(
    {
        "registry.invalid_field": (
            "「{label}」の値が正しくありません（{detail}）。",
            "The value of {name!r} is not valid ({detail}).",
        ),
        "registry.todo_title": ("個人情報ファイル簿の期限", "File register deadlines"),
        "registry.todo_create_entry": (
            "「{name}」のファイル簿を作成・公表してください（期限 {due}、施行令第20条第1項）",
            "Create and publish the entry of {key!r} (due {due})",
        ),
        "registry.todo_correct_entry": (
            "「{name}」のファイル簿を修正・再公表してください（期限 {due}、施行令第20条第3項）",
            "Correct and republish the entry of {key!r} (due {due})",
        ),
        "registry.todo_delete_entry": (
            "「{name}」のファイル簿を削除してください（期限 {due}、施行令第20条第4項）",
            "Delete the entry of {key!r} (due {due})",
        ),
        "registry.todo_awaiting": (
            "「{name}」のファイル簿の更新・公表が必要です",
            "The entry of {key!r} needs updating or publishing",
        ),
    }
)

Reader = Annotated[Principal, Depends(api_staff(Role.privacy_officer, Role.data_holder,
                                                Role.auditor))]
Editor = Annotated[Principal, Depends(api_staff(Role.privacy_officer, Role.data_holder))]
Publisher = Annotated[Principal, Depends(api_staff(Role.privacy_officer))]
ConsoleEditor = Annotated[Principal, Depends(console_staff(Role.privacy_officer,
                                                           Role.data_holder))]
ConsolePublisher = Annotated[Principal, Depends(console_staff(Role.privacy_officer))]
Public = Depends(public())

api_router = APIRouter(prefix="/api/registry", tags=["registry"])
console_router = APIRouter(prefix="/registry")
public_router = APIRouter()

M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------- output helpers


def _organ_keys(session: Session) -> dict[int, str]:
    return {o.id: o.key for o in list_organs(session) if o.id is not None}


def _item_public(item: RegistryItem, file_key: str) -> ItemPublic:
    data = service.item_dict(item)
    return ItemPublic(file=file_key, retired_at=item.retired_at, **data)


def file_public(session: Session, file: RegistryFile, *,
                items: list[RegistryItem] | None = None,
                organ_keys: dict[int, str] | None = None) -> FilePublic:
    """A file as the API shows it; a list passes each file's items and the organ keys it
    read once for all (otherwise each file costs a handful of queries)."""
    items = service.items_of(session, file) if items is None else items
    organ_keys = _organ_keys(session) if organ_keys is None else organ_keys
    special, ordinance = service.contains_special_care(items)
    department = session.get(Department, file.department_id) if file.department_id else None
    return FilePublic(
        key=file.key, name=file.name, organ=organ_keys.get(file.organ_id, ""),
        department=department.key if department else None, purpose=file.purpose,
        record_scope=file.record_scope, collection_method=file.collection_method,
        regular_recipients=file.regular_recipients,
        request_office_name=file.request_office_name,
        request_office_address=file.request_office_address,
        special_procedure=file.special_procedure,
        special_procedure_note=file.special_procedure_note,
        file_type=str(file.file_type) if file.file_type else None,
        persons_count=file.persons_count, source_system=file.source_system,
        ordinance_extends=file.ordinance_extends, exclusion=file.exclusion,
        exclusion_note=file.exclusion_note,
        withhold_collection_method=file.withhold_collection_method,
        withhold_recipients=file.withhold_recipients, withhold_entire=file.withhold_entire,
        withheld_reason=file.withheld_reason, contains_special_care=special,
        contains_ordinance_special_care=ordinance,
        publication_required=service.publication_required(file), stale=service.is_stale(file),
        held_since=file.held_since, created_at=file.created_at,
        entry_created_at=file.entry_created_at, last_changed_at=file.last_changed_at,
        entry_updated_at=file.entry_updated_at, ceased_at=file.ceased_at,
        entry_deleted_at=file.entry_deleted_at, pending_change_at=file.pending_change_at,
        version=file.version, published_version=file.published_version,
        missing_statutory_items=[r.field or ""
                                 for r in service.missing_items(session, file, items)],
        items=[_item_public(i, file.key) for i in items],
    )


def _status_public(result: service.Status, at: datetime) -> StatusPublic:
    return StatusPublic(usable=result.usable, at=at,
                        reasons=[ReasonPublic.of(r) for r in result.reasons])


# ---------------------------------------------------------------- JSON API


@api_router.get("/files", response_model=list[FilePublic])
def api_list_files(principal: Reader, session: SessionDep,
                   organ: str | None = None) -> list[FilePublic]:
    files = service.list_files(session, organ)
    items = service.items_by_file(session, files)
    organ_keys = _organ_keys(session)
    # Loaded once into the session (and held here: its identity map keeps weak references),
    # so that file_public's session.get finds each there without a query.
    wanted = {f.department_id for f in files if f.department_id}
    departments = (session.exec(select(Department).where(col(Department.id).in_(wanted))).all()
                   if wanted else [])
    shown = [file_public(session, f, items=items[f.id], organ_keys=organ_keys) for f in files]
    del departments
    return shown


@api_router.post("/files", response_model=FilePublic, status_code=201)
def api_create_file(body: FileCreate, principal: Editor, session: SessionDep) -> FilePublic:
    return file_public(session, service.create_file(session, principal, body))


@api_router.get("/files/{key}", response_model=FilePublic)
def api_show_file(key: str, principal: Reader, session: SessionDep) -> FilePublic:
    return file_public(session, service.get_file(session, key))


@api_router.patch("/files/{key}", response_model=FilePublic)
def api_update_file(key: str, body: FileUpdate, principal: Editor,
                    session: SessionDep) -> FilePublic:
    return file_public(session, service.update_file(session, principal, key, body))


@api_router.post("/files/{key}/publish", response_model=FilePublic)
def api_publish(key: str, body: ReasonBody, principal: Publisher,
                session: SessionDep) -> FilePublic:
    return file_public(session, service.publish(session, principal, key, body.reason))


@api_router.post("/files/{key}/delete-entry", response_model=FilePublic)
def api_delete_entry(key: str, body: ReasonBody, principal: Publisher,
                     session: SessionDep) -> FilePublic:
    return file_public(session, service.delete_entry(session, principal, key, body.reason))


@api_router.post("/files/{key}/cease", response_model=FilePublic)
def api_cease(key: str, body: CeaseBody, principal: Editor, session: SessionDep) -> FilePublic:
    return file_public(session, service.cease_file(session, principal, key, body.reason,
                                                   delete_entry=body.delete_entry))


@api_router.post("/files/{key}/changes", response_model=FilePublic)
def api_record_change(key: str, body: ChangeBody, principal: Publisher,
                      session: SessionDep) -> FilePublic:
    actor = principal.actor(Role.privacy_officer)
    return file_public(session, service.record_change(session, actor, key, body.what,
                                                      body.reason))


@api_router.get("/files/{key}/history", response_model=list[VersionPublic])
def api_history(key: str, principal: Reader, session: SessionDep) -> list[VersionPublic]:
    file = service.get_file(session, key)
    return [VersionPublic(version=v.version, action=v.action, item=v.item_key,
                          actor_type=v.actor_type, actor_id=v.actor_id, reason=v.reason, at=v.at)
            for v in service.history(session, file)]


@api_router.get("/files/{key}/status", response_model=StatusPublic)
def api_file_status(key: str, principal: Reader, session: SessionDep,
                    at: datetime | None = None) -> StatusPublic:
    moment = as_utc(at or utcnow())
    return _status_public(service.status(session, service.get_file(session, key), moment),
                          moment)


@api_router.post("/files/{key}/items", response_model=ItemPublic, status_code=201)
def api_add_item(key: str, body: ItemCreate, principal: Editor,
                 session: SessionDep) -> ItemPublic:
    return _item_public(service.add_item(session, principal, key, body), key)


@api_router.get("/items/{key}", response_model=ItemPublic)
def api_show_item(key: str, principal: Reader, session: SessionDep) -> ItemPublic:
    item = service.get_item(session, key)
    return _item_public(item, service.get_file(session, item.file_id).key)


@api_router.patch("/items/{key}", response_model=ItemPublic)
def api_update_item(key: str, body: ItemUpdate, principal: Editor,
                    session: SessionDep) -> ItemPublic:
    item = service.update_item(session, principal, key, body)
    return _item_public(item, service.get_file(session, item.file_id).key)


@api_router.post("/items/{key}/retire", response_model=ItemPublic)
def api_retire_item(key: str, body: ReasonBody, principal: Editor,
                    session: SessionDep) -> ItemPublic:
    item = service.retire_item(session, principal, key, body.reason)
    return _item_public(item, service.get_file(session, item.file_id).key)


@api_router.get("/items/{key}/status", response_model=StatusPublic)
def api_item_status(key: str, principal: Reader, session: SessionDep,
                    at: datetime | None = None) -> StatusPublic:
    moment = as_utc(at or utcnow())
    return _status_public(service.status(session, service.get_item(session, key), moment),
                          moment)


# ---------------------------------------------------------------- public register


def _pdf(content: bytes, name: str) -> Response:
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@public_router.get("/register.pdf", dependencies=[Public])
def public_register_pdf(session: SessionDep) -> Response:
    return _pdf(service.register_pdf(session), "register.pdf")


@public_router.get("/register.json", dependencies=[Public], response_model=PublicRegister)
def public_register_json(session: SessionDep) -> PublicRegister:
    return service.public_register(session)


@public_router.get("/register", dependencies=[Public])
def public_register_page(request: Request, session: SessionDep) -> Response:
    return render(request, "registry/public_index.html",
                  {"register": service.public_register(session)})


@public_router.get("/register/{organ}.pdf", dependencies=[Public])
def public_organ_pdf(organ: str, session: SessionDep) -> Response:
    return _pdf(service.register_pdf(session, organ), f"register-{organ}.pdf")


@public_router.get("/register/{organ}.json", dependencies=[Public],
                   response_model=PublicRegister)
def public_organ_json(organ: str, session: SessionDep) -> PublicRegister:
    return service.public_register(session, organ)


@public_router.get("/register/{organ}", dependencies=[Public])
def public_organ_page(organ: str, request: Request, session: SessionDep) -> Response:
    register = service.public_register(session, organ)
    return render(request, "registry/public_organ.html",
                  {"register": register, "organ": register.organs[0],
                   "labels": rules.STATUTORY_LABELS})


# ---------------------------------------------------------------- console

FIELD_LABELS: dict[str, str] = {
    **{s.field: s.label for s in rules.STATUTORY_ITEMS},
    "key": "キー",
    "reason": "変更の理由",
    "source_system": "情報システム",
    "special_procedure_note": "特別の手続等の内容",
    "ordinance_extends": "条例による公表対象の拡大",
    "exclusion": "ファイル簿への掲載の適用除外",
    "exclusion_note": "適用除外の説明",
    "withhold_collection_method": "収集方法の記載の省略",
    "withhold_recipients": "経常的提供先の記載の省略",
    "withhold_entire": "ファイル全体の記載の省略",
    "withheld_reason": "記載を省略する理由（法第75条第3項）",
    "held_since": "保有開始日",
    "name_ja": "記録項目の名称",
    "name_en": "記録項目の名称（英語）",
    "data_type": "データ型",
    "category": "分類",
    "ordinance_special_care": "条例要配慮個人情報",
    "ordinance_reference": "条例の根拠条項",
    "retention_class": "保存区分",
    "retention_months": "保存期間（月）",
    "nondisclosure_tags": "不開示情報の候補",
    "withheld": "ファイル簿への記載の省略",
    "position": "表示順",
}

FILE_TEXT_FIELDS = ("name", "purpose", "record_scope", "collection_method", "regular_recipients",
                    "request_office_name", "request_office_address", "special_procedure_note",
                    "source_system", "exclusion_note", "withheld_reason")
FILE_FLAG_FIELDS = ("ordinance_extends", "withhold_collection_method", "withhold_recipients",
                    "withhold_entire")


def _parse(model: type[M], data: dict[str, Any]) -> M:
    held_since = data.get("held_since")
    if isinstance(held_since, str) and held_since:
        # Era dates (令和6年4月1日, R6.4.1) are accepted wherever a person types a date; one
        # outside its era is refused with the reason.
        data = {**data, "held_since": date_or_text(held_since, field="held_since")}
    return parse_form(model, data, FIELD_LABELS, code="registry.invalid_field")


def _blank_to_none(value: Any) -> Any:
    return None if value in (None, "") else value


def _file_form_data(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {name: form.get(name, "") for name in FILE_TEXT_FIELDS}
    for name in FILE_FLAG_FIELDS:
        data[name] = form.get(name) == "on"
    data["organ"] = form.get("organ") or None
    data["department"] = _blank_to_none(form.get("department"))
    data["file_type"] = _blank_to_none(form.get("file_type"))
    data["persons_count"] = _blank_to_none(form.get("persons_count"))
    data["exclusion"] = _blank_to_none(form.get("exclusion"))
    procedure = form.get("special_procedure", "")
    data["special_procedure"] = {"yes": True, "no": False}.get(procedure)
    held_since = str(form.get("held_since") or "").strip()
    if held_since:
        data["held_since"] = held_since
    data["reason"] = form.get("reason", "")
    return data


def _form_context(session: Session, **extra: Any) -> dict[str, Any]:
    return {
        "organs": list_organs(session, active_only=True),
        "departments": list_departments(session, active_only=True),
        "file_types": [(t.value, rules.FILE_TYPE_LABELS[t.value]) for t in FileType],
        "exclusions": rules.EXCLUSIONS,
        "labels": FIELD_LABELS,
        "statutory": rules.STATUTORY_ITEMS,
        "categories": [(c.value, rules.CATEGORY_LABELS[c.value]) for c in ItemCategory],
        "special_care": [(c.value, rules.SPECIAL_CARE_LABELS[c.value]) for c in SpecialCare],
        "retention_classes": [c.value for c in RetentionClass],
        "nondisclosure": [(c.value, rules.NONDISCLOSURE_LABELS[c.value])
                          for c in NondisclosureTag],
        **extra,
    }


def _file_rows(session: Session, principal: Principal) -> list[dict[str, Any]]:
    organs = {o.id: o for o in list_organs(session)}
    departments = {d.id: d for d in list_departments(session)}
    rows = []
    for file in service.list_files(session):
        rows.append({
            "file": file, "organ": organs.get(file.organ_id),
            "department": departments.get(file.department_id) if file.department_id else None,
            "required": service.publication_required(file),
            "status": service.status(session, file),
            "stale": service.is_stale(file),
        })
    return rows


@console_router.get("")
def console_list(request: Request, principal: ConsoleEditor, session: SessionDep) -> Response:
    return render(request, "registry/list.html", {"rows": _file_rows(session, principal)})


@console_router.get("/new")
def console_new(request: Request, principal: ConsoleEditor, session: SessionDep) -> Response:
    return render(request, "registry/file_form.html",
                  _form_context(session, file=None, values={}, errors={}))


@console_router.post("/new")
def console_create(request: Request, form: FormDep, principal: ConsoleEditor,
                         session: SessionDep) -> Response:
    data = _file_form_data(form)
    data["key"] = form.get("key", "")
    data["reason"] = data["reason"] or "新規登録"
    try:
        file = service.create_file(session, principal, _parse(FileCreate, data))
    except DomainError as error:
        session.rollback()
        return _form_error(request, session, None, data, error.reasons)
    return RedirectResponse(f"/registry/files/{file.key}", status_code=303)


def _form_error(request: Request, session: Session, file: RegistryFile | None,
                values: dict[str, Any], reasons: list[Reason]) -> Response:
    return render(request, "registry/file_form.html",
                  _form_context(session, file=file, values=values,
                                errors=by_field(reasons), reasons=reasons),
                  status_code=422)


def _detail(request: Request, session: Session, file: RegistryFile,
            reasons: list[Reason] | None = None, status_code: int = 200) -> Response:
    organ = session.get(Organ, file.organ_id)
    department = session.get(Department, file.department_id) if file.department_id else None
    items = service.items_of(session, file)
    return render(request, "registry/detail.html", {
        "file": file, "organ": organ, "department": department, "items": items,
        "missing": service.missing_items(session, file),
        "status": service.status(session, file),
        "required": service.publication_required(file),
        "stale": service.is_stale(file),
        "special": service.contains_special_care(items),
        "history": service.history(session, file),
        "reasons": reasons or [],
        "file_type_label": rules.FILE_TYPE_LABELS.get(str(file.file_type), "")
        if file.file_type else "",
        "special_labels": rules.SPECIAL_CARE_LABELS,
        "split": rules.split_flags,
        "can_publish": principal_can_publish(request),
        "live_entry": service.has_live_entry(file),
        "pending": service.pending_change(session, file),
    }, status_code=status_code)


def principal_can_publish(request: Request) -> bool:
    principal = getattr(request.state, "principal", None)
    return bool(principal and principal.has_role(Role.privacy_officer))


@console_router.get("/files/{key}")
def console_detail(key: str, request: Request, principal: ConsoleEditor,
                   session: SessionDep) -> Response:
    return _detail(request, session, service.get_file(session, key))


@console_router.get("/files/{key}/edit")
def console_edit(key: str, request: Request, principal: ConsoleEditor,
                 session: SessionDep) -> Response:
    file = service.get_file(session, key)
    values = file_public(session, file).model_dump()
    values["held_since"] = (to_tokyo(file.held_since).date().isoformat()
                            if file.held_since else "")
    values["reason"] = ""
    return render(request, "registry/file_form.html",
                  _form_context(session, file=file, values=values, errors={}))


@console_router.post("/files/{key}/edit")
def console_update(key: str, request: Request, form: FormDep, principal: ConsoleEditor,
                         session: SessionDep) -> Response:
    data = _file_form_data(form)
    file = service.get_file(session, key)
    try:
        service.update_file(session, principal, file, _parse(FileUpdate, data))
    except DomainError as error:
        session.rollback()
        return _form_error(request, session, service.get_file(session, key), data,
                           error.reasons)
    return RedirectResponse(f"/registry/files/{key}", status_code=303)


def _reason_of(form: FormData) -> str:
    reason = text(form, "reason")
    if not reason:
        raise InvalidInput(field_reason("registry.invalid_field", "reason", FIELD_LABELS,
                                        "必須です / required"))
    return reason


@console_router.post("/files/{key}/publish")
def console_publish(key: str, request: Request, form: FormDep, principal: ConsolePublisher,
                          session: SessionDep) -> Response:
    try:
        service.publish(session, principal, key, _reason_of(form))
    except DomainError as error:
        session.rollback()
        return _detail(request, session, service.get_file(session, key), error.reasons, 422)
    return RedirectResponse(f"/registry/files/{key}", status_code=303)


@console_router.post("/files/{key}/delete-entry")
def console_delete_entry(key: str, request: Request, form: FormDep, principal: ConsolePublisher,
                               session: SessionDep) -> Response:
    try:
        service.delete_entry(session, principal, key, _reason_of(form))
    except DomainError as error:
        session.rollback()
        return _detail(request, session, service.get_file(session, key), error.reasons, 422)
    return RedirectResponse(f"/registry/files/{key}", status_code=303)


@console_router.post("/files/{key}/cease")
def console_cease(key: str, request: Request, form: FormDep, principal: ConsoleEditor,
                        session: SessionDep) -> Response:
    try:
        service.cease_file(session, principal, key, _reason_of(form))
    except DomainError as error:
        session.rollback()
        return _detail(request, session, service.get_file(session, key), error.reasons, 422)
    return RedirectResponse(f"/registry/files/{key}", status_code=303)


def _item_form_data(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name_ja": form.get("name_ja", ""),
        "name_en": form.get("name_en", ""),
        "data_type": form.get("data_type") or "text",
        "category": form.get("category") or "other",
        "special_care": form.getlist("special_care"),
        "ordinance_special_care": form.get("ordinance_special_care") == "on",
        "ordinance_reference": form.get("ordinance_reference", ""),
        "retention_class": form.get("retention_class") or "R0",
        "retention_months": _blank_to_none(form.get("retention_months")),
        "nondisclosure_tags": form.getlist("nondisclosure_tags"),
        "withheld": form.get("withheld") == "on",
        "withheld_reason": form.get("withheld_reason", ""),
        "reason": form.get("reason", ""),
    }
    return data


def _item_form(request: Request, session: Session, file: RegistryFile,
               item: RegistryItem | None, values: dict[str, Any],
               reasons: list[Reason] | None = None, status_code: int = 200) -> Response:
    return render(request, "registry/item_form.html",
                  _form_context(session, file=file, item=item, values=values,
                                errors=by_field(reasons or []), reasons=reasons or []),
                  status_code=status_code)


@console_router.get("/files/{key}/items/new")
def console_new_item(key: str, request: Request, principal: ConsoleEditor,
                     session: SessionDep) -> Response:
    return _item_form(request, session, service.get_file(session, key), None,
                      {"special_care": [], "nondisclosure_tags": []})


@console_router.post("/files/{key}/items/new")
def console_add_item(key: str, request: Request, form: FormDep, principal: ConsoleEditor,
                           session: SessionDep) -> Response:
    data = _item_form_data(form)
    data["key"] = form.get("key", "")
    data["reason"] = data["reason"] or "記録項目の追加"
    file = service.get_file(session, key)
    try:
        service.add_item(session, principal, file, _parse(ItemCreate, data))
    except DomainError as error:
        session.rollback()
        return _item_form(request, session, service.get_file(session, key), None, data,
                          error.reasons, 422)
    return RedirectResponse(f"/registry/files/{key}", status_code=303)


@console_router.get("/items/{key}/edit")
def console_edit_item(key: str, request: Request, principal: ConsoleEditor,
                      session: SessionDep) -> Response:
    item = service.get_item(session, key)
    values = service.item_dict(item)
    values["reason"] = ""
    return _item_form(request, session, service.get_file(session, item.file_id), item, values)


@console_router.post("/items/{key}/edit")
def console_update_item(key: str, request: Request, form: FormDep, principal: ConsoleEditor,
                              session: SessionDep) -> Response:
    data = _item_form_data(form)
    item = service.get_item(session, key)
    file = service.get_file(session, item.file_id)
    try:
        service.update_item(session, principal, key, _parse(ItemUpdate, data))
    except DomainError as error:
        session.rollback()
        item = service.get_item(session, key)
        return _item_form(request, session, service.get_file(session, item.file_id), item,
                          data, error.reasons, 422)
    return RedirectResponse(f"/registry/files/{file.key}", status_code=303)


@console_router.post("/items/{key}/retire")
def console_retire_item(key: str, request: Request, form: FormDep, principal: ConsoleEditor,
                              session: SessionDep) -> Response:
    item = service.get_item(session, key)
    file_key = service.get_file(session, item.file_id).key
    try:
        service.retire_item(session, principal, key, _reason_of(form))
    except DomainError as error:
        session.rollback()
        return _detail(request, session, service.get_file(session, file_key), error.reasons,
                       422)
    return RedirectResponse(f"/registry/files/{file_key}", status_code=303)


# ---------------------------------------------------------------- console home


def todo_provider(session: Session, principal: Principal) -> list[TodoPanel]:
    """Overdue 施行令 20 deadlines for privacy officers (all organs) and data holders (theirs)."""
    if principal.has_role(Role.privacy_officer):
        organ_ids: frozenset[int] | None = None
    elif principal.has_role(Role.data_holder):
        organ_ids = principal.organs_for(Role.data_holder)
    else:
        return []
    at = utcnow()
    items: list[TodoItem] = []
    overdue_keys = set()
    for found in service.overdue_entries(session, at, organ_ids):
        overdue_keys.add(found.key)
        ja, en = messages.both(f"registry.todo_{found.kind}", name=found.name, key=found.key,
                               due=found.due.isoformat())
        items.append(TodoItem(ja, en, f"/registry/files/{found.key}", _due_text(found.due)))
    for file in service.list_files(session):
        if file.key in overdue_keys or file.ceased_at is not None:
            continue
        if organ_ids is not None and file.organ_id not in organ_ids:
            continue
        if not service.status(session, file, at).usable:
            ja, en = messages.both("registry.todo_awaiting", name=file.name, key=file.key)
            items.append(TodoItem(ja, en, f"/registry/files/{file.key}"))
    if not items:
        return []
    title_ja, title_en = messages.both("registry.todo_title")
    return [TodoPanel(title_ja, title_en, items)]


def _due_text(due: date) -> str:
    return due.isoformat()


__all__ = ["api_router", "console_router", "public_router", "todo_provider"]
