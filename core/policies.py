"""Deployment policies: each package's [I]/[R] choices, from a TOML file and the environment."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar, cast

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as SourceError

from core.settings import Settings, SettingsError, get_settings

P = TypeVar("P", bound="Policy")

POLICY_FILE_VARIABLE = "KODOMO_POLICY_FILE"
PREFIX = "KODOMO_"

# The evidence tags of LAW.md §0: [I] a design inference, [R] statute text recalled but not
# re-read, [S] confirmed (kept configurable only where an ordinance or 政令 may change it).
Marker = Literal["I", "R", "S"]
MARKERS: dict[str, tuple[str, str]] = {
    "I": ("設計上の推論（法令ではない）", "design inference, not law"),
    "R": ("条文未確認（要確認）", "statute recalled, not re-read"),
    "S": ("出典確認済み（条例・政令で変わりうる）",
          "confirmed; an ordinance or 政令 may change it"),
}
Source = Literal["default", "file", "environment", "override"]
SOURCES: dict[str, tuple[str, str]] = {
    "default": ("既定値", "default"),
    "file": ("設定ファイル", "policy file"),
    "environment": ("環境変数", "environment"),
    "override": ("変更あり", "overridden"),
}

# Every declared policy by its section (the package part of its prefix); a policy is picked up
# by being declared, never by being listed somewhere.
_declared: dict[str, type[Policy]] = {}
_loaded: dict[type[Policy], Policy] = {}
_sources: dict[type[Policy], dict[str, Source]] = {}
# A policy as read, with where each of its set keys came from.
Read = tuple["Policy", dict[str, Source]]


class PolicyError(SettingsError):
    """A policy file or variable is wrong; every problem names its key."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        first, problem = problems[0]
        more = "".join(f"; {key}: {text}" for key, text in problems[1:])
        super().__init__(first, problem + more)


def rule(default: Any, *, marker: Marker, basis: str, ja: str, en: str,
         choices: Mapping[str, str] | None = None, **constraints: Any) -> Any:
    """A policy field with what the policies page and docs/policies.md show: the legal basis
    (an article, or the LAW.md section that infers it), its evidence tag, a Japanese and an
    English label, and Japanese names of the allowed values of a choice."""
    extra: dict[str, Any] = {"marker": marker, "basis": basis}
    if choices:
        extra["choices"] = dict(choices)
    return Field(default, title=ja, description=en, json_schema_extra=extra, **constraints)


class Policy(BaseSettings):
    """A package's configurable rules (LAW.md [I]/[R]) with their conservative defaults.

    A subclass sets its own `env_prefix` (`KODOMO_<SECTION>_`), a `title_ja` / `title_en`, and
    declares each field with `rule(...)`. Calling the class gives the defaults and the keywords
    only, so the rules' defaults never depend on the deployment; `policy(Model)` reads the
    policy file's `[section]` table and the environment (which wins).
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid")
    title_ja: ClassVar[str] = ""
    title_en: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        section = cls.section()
        # KODOMO_<SECTION>_* belongs to the policy alone: unknown variables there are refused.
        clashes = sorted(name for name in Settings.model_fields if name.startswith(f"{section}_"))
        if clashes:
            raise TypeError(f"policy section {section!r} would take the settings {clashes}")
        held = _declared.get(section)
        if held is not None and held.__qualname__ != cls.__qualname__:
            raise TypeError(f"policy section {section!r} is declared twice: "
                            f"{held.__qualname__} and {cls.__qualname__}")
        _declared[section] = cls

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keywords only: DEFAULT_POLICY and the rules' default arguments stay the written defaults.
        return (init_settings,)

    @classmethod
    def prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix", "")).upper()

    @classmethod
    def section(cls) -> str:
        """The policy file's table for this policy: `KODOMO_GOVERNANCE_` → `governance`."""
        prefix = cls.prefix()
        if not (prefix.startswith(PREFIX) and prefix.endswith("_")
                and len(prefix) > len(PREFIX) + 1):
            raise TypeError(f"{cls.__qualname__}: env_prefix must be KODOMO_<SECTION>_")
        return prefix[len(PREFIX):-1].lower()

    @classmethod
    def variable(cls, field: str | None = None) -> str:
        """The environment variable of a field (`PREFIX_*` for a rule across fields)."""
        return f"{cls.prefix()}{field or '*'}".upper()

    @classmethod
    def key(cls, field: str) -> str:
        """The policy file's name of a field: `governance.max_one_off_days`."""
        return f"{cls.section()}.{field}"

    @classmethod
    def _environment(cls) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        problems: list[tuple[str, str]] = []
        fields = {name.upper() for name in cls.model_fields}
        for name in sorted(os.environ):
            upper = name.upper()
            if upper.startswith(cls.prefix()) and upper[len(cls.prefix()):] not in fields:
                problems.append((upper, "unknown policy key / 不明な設定項目"))
        try:
            values = dict(EnvSettingsSource(cls)())
        except SourceError as error:  # a list or mapping that is not JSON
            # pydantic-settings names the field only in its message.
            field = next((name for name in cls.model_fields if f'"{name}"' in str(error)), None)
            problems.append((cls.variable(field), "is not valid JSON"))
            values = {}
        return values, problems

    @classmethod
    def read(cls, table: Mapping[str, Any] | None = None, where: str = "") -> Self:
        """The defaults overridden by the policy file's table, then by the environment; every
        bad value names its variable (environment) or its key and the file."""
        return cls._read(table or {}, where)[0]

    @classmethod
    def from_environment(cls) -> Self:
        """The defaults overridden by the environment alone."""
        return cls.read()

    @classmethod
    def _read(cls, table: Mapping[str, Any], where: str) -> tuple[Self, dict[str, Source]]:
        environment, problems = cls._environment()
        if problems:
            raise PolicyError(problems)
        sources: dict[str, Source] = {name: "file" for name in table}
        sources.update({name: "environment" for name in environment})
        try:
            return cls(**{**table, **environment}), sources
        except ValidationError as error:
            raise PolicyError([cls._name_problem(problem, sources, where)
                               for problem in error.errors()]) from error

    @classmethod
    def _name_problem(cls, problem: Any, sources: Mapping[str, Source],
                      where: str) -> tuple[str, str]:
        loc = [str(part) for part in problem.get("loc", ())]
        message = str(problem.get("msg", "is not valid"))
        if not loc:  # a rule across fields: name where the values came from
            if "environment" in sources.values() or not where:
                return cls.variable(None), message
            return f"[{cls.section()}]", f"{message} (in {where})"
        if sources.get(loc[0]) == "environment":
            detail = ".".join(loc[1:])
            return cls.variable(loc[0]), f"{detail}: {message}" if detail else message
        return cls.key(".".join(loc)), f"{message} (in {where})" if where else message


# ---------------------------------------------------------------- the policy file


def _policy_file() -> Path | None:
    return get_settings().policy_file


def read_policy_file(path: Path) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """The tables of a policy file (TOML, UTF-8) with the keys its policies declare, and a
    problem for each table or key that no policy declares."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as error:
        raise SettingsError(POLICY_FILE_VARIABLE, f"file {path} does not exist") from error
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SettingsError(POLICY_FILE_VARIABLE, f"{path} is not valid TOML: {error}") from error
    problems: list[tuple[str, str]] = []
    tables: dict[str, dict[str, Any]] = {}
    known = ", ".join(sorted(_declared))
    for section, table in data.items():
        model = _declared.get(section)
        if not isinstance(table, dict):
            problems.append((section, f"a policy file holds [package] tables only (in {path})"))
        elif model is None:
            problems.append((f"[{section}]", f"unknown policy section (in {path}); "
                                             f"known: {known}"))
        else:
            problems.extend((model.key(name), f"unknown policy key (in {path})")
                            for name in table if name not in model.model_fields)
            tables[section] = {k: v for k, v in table.items() if k in model.model_fields}
    return tables, problems


def _file_tables() -> tuple[dict[str, dict[str, Any]], str, list[tuple[str, str]]]:
    path = _policy_file()
    if path is None:
        return {}, "", []
    tables, problems = read_policy_file(path)
    return tables, str(path), problems


def _read(model: type[P], tables: Mapping[str, Mapping[str, Any]],
          where: str) -> tuple[P, dict[str, Source]]:
    return model._read(tables.get(model.section(), {}), where)


def _keep(model: type[Policy], read: Read) -> Policy:
    if model not in _loaded:
        _loaded[model], _sources[model] = read
    return _loaded[model]


def policy(model: type[P]) -> P:
    """The policy in force: read from the policy file and the environment the first time."""
    found = _loaded.get(model)
    if found is None:
        tables, where, problems = _file_tables()
        if problems:
            raise PolicyError(problems)
        found = _keep(model, _read(model, tables, where))
    return cast(P, found)


def _read_all(tables: Mapping[str, Mapping[str, Any]], where: str,
              problems: list[tuple[str, str]]) -> dict[type[Policy], Read]:
    """Every declared policy read; the file's problems and every policy's, all at once."""
    problems = list(problems)
    values: dict[type[Policy], Read] = {}
    for model in declared():
        try:
            values[model] = _read(model, tables, where)
        except PolicyError as error:
            problems.extend(error.problems)
    if problems:
        raise PolicyError(problems)
    return values


def load_policies() -> None:
    """Check the policy file and every declared policy now, so that a bad value stops the
    start, not a request; every problem is named at once."""
    for model, read in _read_all(*_file_tables()).items():
        _keep(model, read)


def check_policy_file(path: Path) -> None:
    """Check a policy file (with the environment) as the start would, without using it."""
    tables, problems = read_policy_file(path)
    _read_all(tables, str(path), problems)


def declared() -> list[type[Policy]]:
    """Every declared policy, by section."""
    return [_declared[section] for section in sorted(_declared)]


@contextmanager
def override_policy(value: P) -> Iterator[P]:
    """Put `value` in force for its class inside the block (tests), then restore what was."""
    model = type(value)
    previous = _loaded.get(model)
    _loaded[model] = value
    try:
        yield value
    finally:
        if previous is None:
            _loaded.pop(model, None)
        else:
            _loaded[model] = previous


# ---------------------------------------------------------------- what is shown


@dataclass(frozen=True)
class PolicyKey:
    """One key of a policy as the policies page and docs/policies.md show it."""

    section: str
    field: str
    key: str
    variable: str
    label_ja: str
    label_en: str
    marker: str
    basis: str
    default: str
    value: str
    source: Source


@dataclass(frozen=True)
class PolicyView:
    section: str
    title_ja: str
    title_en: str
    keys: list[PolicyKey]


def shown(value: Any, choices: Mapping[str, str] | None = None) -> str:
    """A value as a person reads it (Japanese first where there are words)."""
    if isinstance(value, bool):
        return "はい / yes" if value else "いいえ / no"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return f"{choices[value]} ({value})" if choices and value in choices else value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return "、".join(shown(v) for v in sorted(value)) or "なし / none"
    if isinstance(value, tuple | list):  # a table: one row a line
        return "\n".join(shown(v) for v in value) or "なし / none"
    return str(value)


def metadata(model: type[Policy], field: str) -> dict[str, Any]:
    info = model.model_fields[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return {"label_ja": info.title or "", "label_en": info.description or "",
            "marker": str(extra.get("marker", "")), "basis": str(extra.get("basis", "")),
            "choices": extra.get("choices")}


def describe(model: type[Policy], value: Policy | None = None) -> PolicyView:
    """A policy's keys with their defaults, the value in force and where it comes from."""
    current = value if value is not None else policy(model)
    defaults = model()
    sources = _sources.get(model, {})
    keys: list[PolicyKey] = []
    for field in model.model_fields:
        meta = metadata(model, field)
        now, default = getattr(current, field), getattr(defaults, field)
        source: Source = sources.get(field) or ("default" if now == default else "override")
        keys.append(PolicyKey(
            section=model.section(), field=field, key=model.key(field),
            variable=model.variable(field), label_ja=meta["label_ja"],
            label_en=meta["label_en"], marker=meta["marker"], basis=meta["basis"],
            default=shown(default, meta["choices"]), value=shown(now, meta["choices"]),
            source=source))
    return PolicyView(model.section(), model.title_ja, model.title_en, keys)


def in_force() -> list[PolicyView]:
    """Every declared policy as it is in force."""
    return [describe(model) for model in declared()]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def reference_markdown(models: list[type[Policy]] | None = None) -> str:
    """The generated part of docs/policies.md: every declared policy's keys and defaults."""
    lines: list[str] = []
    for model in declared() if models is None else models:
        view = describe(model, model())
        lines += [f"### `[{view.section}]` {view.title_ja} / {view.title_en}", "",
                  "| key / 環境変数 | 項目 / meaning | default 既定値 | basis 根拠 | tag |",
                  "|---|---|---|---|---|"]
        for item in view.keys:
            lines.append(
                f"| `{item.key}`<br>`{item.variable}` | {_cell(item.label_ja)}<br>"
                f"{_cell(item.label_en)} | {_cell(item.default)} | {_cell(item.basis)} "
                f"| [{item.marker}] |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
