"""Package policies: frozen settings read once from each package's KODOMO_<PACKAGE>_* variables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self, TypeVar, cast

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as SourceError

from core.settings import SettingsError

P = TypeVar("P", bound="Policy")

_declared: list[type[Policy]] = []
_loaded: dict[type[Policy], Policy] = {}


class Policy(BaseSettings):
    """A package's configurable rules (LAW.md [I]/[R]) with their conservative defaults.

    A subclass sets its own `env_prefix`. Calling the class gives the defaults and the keywords
    only, so the rules' defaults never depend on the environment; `policy(Model)` reads it.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _declared.append(cls)

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
    def variable(cls, field: str | None = None) -> str:
        """The environment variable of a field (`PREFIX_*` for a rule across fields)."""
        prefix = str(cls.model_config.get("env_prefix", ""))
        return f"{prefix}{field or '*'}".upper()

    @classmethod
    def from_environment(cls) -> Self:
        """The defaults overridden by the environment; a bad value names its variable."""
        try:
            values = EnvSettingsSource(cls)()
        except SourceError as error:  # a list or mapping that is not JSON
            # pydantic-settings names the field only in its message.
            field = next((name for name in cls.model_fields if f'"{name}"' in str(error)), None)
            raise SettingsError(cls.variable(field), "is not valid JSON") from error
        try:
            return cls(**values)
        except ValidationError as error:
            problem = error.errors()[0]
            loc = problem.get("loc", ())
            raise SettingsError(cls.variable(str(loc[0]) if loc else None),
                                problem.get("msg", "is not valid")) from error


def policy(model: type[P]) -> P:
    """The policy in force: read from the environment the first time, then kept."""
    found = _loaded.get(model)
    if found is None:
        found = _loaded[model] = model.from_environment()
    return cast(P, found)


def load_policies() -> None:
    """Read every declared policy now, so that a bad value stops the start, not a request."""
    for model in _declared:
        policy(model)


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
