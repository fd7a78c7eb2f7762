"""Policies: defaults, the environment read once per class, bad values named, test overrides."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import ValidationError

from consent.rules import CapacityPolicy
from core.policies import Policy, load_policies, override_policy, policy
from core.settings import SettingsError
from governance.rules import GovernancePolicy
from pia.rules import PiaPolicy
from registry.rules import RegistryPolicy


class SamplePolicy(Policy, env_prefix="KODOMO_SAMPLE_"):
    days: int = 14
    mode: Literal["strict", "lenient"] = "strict"
    dates: frozenset[str] = frozenset()


@pytest.fixture(autouse=True)
def _forget_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh read for each test: an override of the value "none yet" restores "none yet".
    monkeypatch.setattr("core.policies._loaded", {})


def test_calling_the_class_gives_the_defaults_whatever_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_SAMPLE_DAYS", "3")
    assert SamplePolicy().days == 14
    assert SamplePolicy(days=5).days == 5


def test_the_environment_overrides_a_default_and_is_read_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_SAMPLE_DAYS", "3")
    monkeypatch.setenv("KODOMO_SAMPLE_MODE", "lenient")
    monkeypatch.setenv("KODOMO_SAMPLE_DATES", '["2026-12-29", "2026-12-30"]')
    read = policy(SamplePolicy)
    assert (read.days, read.mode, read.dates) == (3, "lenient", {"2026-12-29", "2026-12-30"})
    monkeypatch.setenv("KODOMO_SAMPLE_DAYS", "4")
    assert policy(SamplePolicy) is read


@pytest.mark.parametrize(("variable", "value"), [
    ("KODOMO_SAMPLE_DAYS", "fourteen"),
    ("KODOMO_SAMPLE_MODE", "sometimes"),
    ("KODOMO_SAMPLE_DATES", "2026-12-29"),
])
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                        value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        policy(SamplePolicy)
    assert refused.value.variable == variable
    with pytest.raises(SettingsError, match=variable):
        load_policies()  # what start-up calls


def test_a_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        SamplePolicy().days = 1  # type: ignore[misc]


def test_an_override_is_in_force_inside_the_block_and_restored_after() -> None:
    before = policy(SamplePolicy)
    with override_policy(SamplePolicy(days=1)) as inside:
        assert policy(SamplePolicy) is inside and inside.days == 1
        with override_policy(SamplePolicy(days=2)):
            assert policy(SamplePolicy).days == 2
        assert policy(SamplePolicy) is inside
    assert policy(SamplePolicy) is before


def test_an_override_is_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), override_policy(SamplePolicy(days=1)):
        raise RuntimeError
    assert policy(SamplePolicy).days == 14


@pytest.mark.parametrize(("model", "prefix"), [
    (RegistryPolicy, "KODOMO_REGISTRY_"), (PiaPolicy, "KODOMO_PIA_"),
    (CapacityPolicy, "KODOMO_CONSENT_"), (GovernancePolicy, "KODOMO_GOVERNANCE_"),
])
def test_each_package_reads_its_own_prefix_and_keeps_its_defaults(
        model: type[Policy], prefix: str) -> None:
    assert model.variable("x") == f"{prefix}X"
    assert model.from_environment() == model()


def test_a_rule_across_fields_names_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_CONSENT_CHILD_VIEW_FROM", "17")
    with pytest.raises(SettingsError, match=r"KODOMO_CONSENT_\*"):
        CapacityPolicy.from_environment()
