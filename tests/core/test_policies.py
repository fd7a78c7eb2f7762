"""Policies: defaults, the policy file and the environment read once per class, bad values and
unknown keys named, every policy documented, test overrides."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Literal

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

import main
from consent.rules import CapacityPolicy
from core import policies
from core.policies import (
    Policy,
    PolicyError,
    declared,
    describe,
    load_policies,
    override_policy,
    policy,
    reference_markdown,
    rule,
)
from core.settings import SettingsError, get_settings
from governance.rules import GovernancePolicy
from pia.rules import PiaPolicy
from registry.rules import RegistryPolicy
from tests.web import sign_in

DOC = Path(__file__).resolve().parents[2] / "docs" / "policies.md"
BEGIN, END = "<!-- policies:begin -->", "<!-- policies:end -->"


class SamplePolicy(Policy, env_prefix="KODOMO_SAMPLE_"):
    days: int = rule(14, ge=0, marker="I", basis="LAW.md §0", ja="日数", en="days")
    mode: Literal["strict", "lenient"] = rule("strict", marker="I", basis="§0", ja="方式",
                                              en="mode")
    dates: frozenset[date] = rule(frozenset(), marker="R", basis="§0", ja="日付", en="dates")


# Declared for the tests of this module only (the fixture below), never for the app's pages.
policies._declared.pop("sample")
REAL_POLICIES = declared()


@pytest.fixture(autouse=True)
def _forget_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh read for each test: an override of the value "none yet" restores "none yet".
    monkeypatch.setattr("core.policies._loaded", {})
    monkeypatch.setattr("core.policies._sources", {})
    monkeypatch.setitem(policies._declared, "sample", SamplePolicy)


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Path]]:
    """Write a policy file and name it in KODOMO_POLICY_FILE (settings reloaded)."""

    def write(text: str) -> Path:
        path = tmp_path / "policy.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("KODOMO_POLICY_FILE", str(path))
        get_settings.cache_clear()
        return path

    yield write
    get_settings.cache_clear()


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
    assert (read.days, read.mode, read.dates) == (3, "lenient",
                                                  {date(2026, 12, 29), date(2026, 12, 30)})
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
    assert model.key("x") == f"{prefix[len('KODOMO_'):-1].lower()}.x"
    assert model.from_environment() == model()
    assert model in REAL_POLICIES


def test_a_rule_across_fields_names_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_CONSENT_CHILD_VIEW_FROM", "17")
    with pytest.raises(SettingsError, match=r"KODOMO_CONSENT_\*"):
        CapacityPolicy.from_environment()


# ---------------------------------------------------------------- the policy file


def test_the_file_overrides_a_default_and_the_environment_overrides_the_file(
        monkeypatch: pytest.MonkeyPatch, policy_file: Callable[[str], Path]) -> None:
    policy_file('[sample]\ndays = 7\nmode = "lenient"\ndates = [2026-12-29, "2026-12-30"]\n')
    monkeypatch.setenv("KODOMO_SAMPLE_DAYS", "3")
    read = policy(SamplePolicy)
    assert (read.days, read.mode, read.dates) == (3, "lenient",
                                                  {date(2026, 12, 29), date(2026, 12, 30)})
    sources = {key.field: key.source for key in describe(SamplePolicy).keys}
    assert sources == {"days": "environment", "mode": "file", "dates": "file"}


def test_a_real_policy_is_set_by_its_package_table(policy_file: Callable[[str], Path]) -> None:
    policy_file("[governance]\nmax_one_off_days = 90\nmax_one_off_runs = 1\n"
                "[consent]\nguardian_required_below = 15\n"
                "[registry]\nclosed_dates = [2026-12-29]\n")
    load_policies()
    assert (policy(GovernancePolicy).max_one_off_days, policy(GovernancePolicy).max_one_off_runs,
            policy(GovernancePolicy).repeat_window_days) == (90, 1, 365)
    assert policy(CapacityPolicy).guardian_required_below == 15
    assert policy(RegistryPolicy).closed_dates == {date(2026, 12, 29)}
    assert policy(PiaPolicy) == PiaPolicy()


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("[sample]\ndayz = 7\n", "sample.dayz", "unknown policy key"),
    ("[governance]\nmax_one_off_day = 90\n", "governance.max_one_off_day", "unknown policy key"),
    ("[sampel]\ndays = 7\n", "[sampel]", "unknown policy section"),
    ("days = 7\n", "days", "[package] tables only"),
    ('[sample]\ndays = "fourteen"\n', "sample.days", "valid integer"),
    ("[sample]\ndays = -1\n", "sample.days", "greater than or equal to 0"),
    ('[sample]\nmode = "sometimes"\n', "sample.mode", "'strict' or 'lenient'"),
    ('[governance]\nmax_one_off_runs = 0\n', "governance.max_one_off_runs", "greater than"),
    ('[consent]\nparents = "either"\n', "consent.parents", "'all' or 'any'"),
    ("[consent]\nguardian_required_below = 12.5\n", "consent.guardian_required_below",
     "integer"),
    ("[consent]\nchild_view_from = 17\n", "[consent]", "guardian_required_below"),
    ('[pia]\nthreshold_rules = [{name = "x", when = {persons_mn = 1}, level = "full"}]\n',
     "pia.threshold_rules", "unknown condition 'persons_mn'"),
    ('[pia]\nthreshold_rules = [{name = "x", when = {}, level = "all"}]\n',
     "pia.threshold_rules.0.level", "Input should be"),
    ("[sample\ndays = 7\n", "KODOMO_POLICY_FILE", "not valid TOML"),
])
def test_a_bad_file_is_refused_naming_the_key(
        policy_file: Callable[[str], Path], text: str, key: str, problem: str) -> None:
    path = policy_file(text)
    with pytest.raises(SettingsError) as refused:
        load_policies()
    assert refused.value.variable == key
    assert problem in refused.value.problem
    if key != "KODOMO_POLICY_FILE":
        assert str(path) in refused.value.problem


def test_a_missing_file_is_refused(policy_file: Callable[[str], Path], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    policy_file("")
    monkeypatch.setenv("KODOMO_POLICY_FILE", str(tmp_path / "nowhere.toml"))
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="does not exist") as refused:
        load_policies()
    assert refused.value.variable == "KODOMO_POLICY_FILE"


def test_every_problem_is_named_at_once(policy_file: Callable[[str], Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    policy_file('[sample]\ndays = "x"\n[governance]\nmax_one_off_days = 0\n')
    monkeypatch.setenv("KODOMO_PIA_MIN_COMMENT_DAYZ", "30")
    with pytest.raises(PolicyError) as refused:
        load_policies()
    named = [key for key, _ in refused.value.problems]
    assert sorted(named) == ["KODOMO_PIA_MIN_COMMENT_DAYZ", "governance.max_one_off_days",
                             "sample.days"]


def test_an_unknown_variable_under_a_policy_prefix_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_GOVERNANCE_MAX_ONE_OFF_DAY", "90")
    with pytest.raises(SettingsError) as refused:
        load_policies()
    assert refused.value.variable == "KODOMO_GOVERNANCE_MAX_ONE_OFF_DAY"
    assert "unknown" in refused.value.problem


def test_nothing_starts_on_a_bad_file(policy_file: Callable[[str], Path]) -> None:
    policy_file('[governance]\nmax_one_off_dayz = 90\n[pia]\nmin_comment_days = "a month"\n')
    with pytest.raises(SettingsError, match=re.escape("governance.max_one_off_dayz")):
        main.create_app("staff")
    for command in (["serve", "--face", "staff"], ["worker", "--once"], ["policies", "show"]):
        result = CliRunner().invoke(main.cli, command)
        assert result.exit_code == 2, command
        lines = result.output.splitlines()
        assert any(line.startswith("設定エラー / setting error: governance.max_one_off_dayz: "
                                   "unknown policy key") for line in lines), lines
        assert any(line.startswith("設定エラー / setting error: pia.min_comment_days: ")
                   for line in lines), lines


def test_a_file_is_checked_before_it_is_deployed(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("[consent]\nparents = \"any\"\n", encoding="utf-8")
    bad.write_text("[consent]\nparents = \"either\"\nguardian_required_belo = 16\n",
                   encoding="utf-8")
    assert CliRunner().invoke(main.cli, ["policies", "check", str(good)]).exit_code == 0
    refused = CliRunner().invoke(main.cli, ["policies", "check", str(bad)])
    assert refused.exit_code == 2
    assert "consent.guardian_required_belo: unknown policy key" in refused.output
    assert policy(CapacityPolicy).parents == "all"  # checking a file puts nothing in force


def test_a_policy_cannot_take_the_variables_of_a_setting() -> None:
    with pytest.raises(TypeError, match="login_max_failures"):
        class LoginPolicy(Policy, env_prefix="KODOMO_LOGIN_"):
            tries: int = 1


def test_a_second_policy_with_the_same_section_is_refused() -> None:
    with pytest.raises(TypeError, match="declared twice"):
        class Another(Policy, env_prefix="KODOMO_SAMPLE_"):
            days: int = 1


# ---------------------------------------------------------------- documented


@pytest.mark.parametrize("model", REAL_POLICIES, ids=lambda m: m.section())
def test_every_policy_key_says_its_basis_tag_and_labels(model: type[Policy]) -> None:
    assert model.title_ja and model.title_en
    for key in describe(model, model()).keys:
        assert key.marker in ("I", "R", "S"), key.key
        assert key.basis and key.label_ja and key.label_en, key.key


def test_the_documented_policies_are_the_declared_ones() -> None:
    text = DOC.read_text(encoding="utf-8")
    generated = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip("\n") + "\n"
    assert generated == reference_markdown(REAL_POLICIES), (
        "docs/policies.md is out of date: run `kodomo policies doc --write docs/policies.md`")
    for model in REAL_POLICIES:
        for field in model.model_fields:
            assert f"`{model.key(field)}`" in generated
            assert f"`{model.variable(field)}`" in generated


# ---------------------------------------------------------------- the console page


def test_privacy_officers_read_every_policy_and_where_it_comes_from(
        client: TestClient, policy_file: Callable[[str], Path]) -> None:
    policy_file("[governance]\nmax_one_off_days = 90\n")
    policies._loaded.clear()  # the app read them at its start (this test's own dict)
    sign_in(client, "privacy")
    page = client.get("/policies")
    assert page.status_code == 200
    text = page.text
    assert "<h1>方針（ポリシー）の設定" in text
    for model in REAL_POLICIES:
        assert f'data-section="{model.section()}"' in text
        assert model.title_ja in text
        for field in model.model_fields:
            assert f'<tr data-key="{model.key(field)}">' in text
    row = text[text.index('<tr data-key="governance.max_one_off_days">'):]
    row = row[:row.index("</tr>")]
    assert '<td data-label="現在の値" class="value">90</td>' in row
    assert "180" in row and "設定ファイル" in row
    assert "<form" not in text.split("</header>")[1]  # read-only: no form below the header


@pytest.mark.parametrize("login", ["holder", "analyst", "support", "auditor", "admin"])
def test_other_staff_may_not_read_the_policies_page(client: TestClient, login: str) -> None:
    sign_in(client, login)
    assert client.get("/policies").status_code == 403
    assert 'href="/policies"' not in client.get("/").text


def test_the_home_page_links_the_policies_page_for_privacy_officers(client: TestClient) -> None:
    sign_in(client, "privacy")
    assert 'href="/policies"' in client.get("/").text
