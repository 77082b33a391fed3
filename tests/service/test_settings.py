"""Settings: one declaration, checked at start, the environment's or (tests) the given mapping's alone."""

from __future__ import annotations

import pytest

from service import create_app
from service.infra.settings import Settings, SettingsError, load


def test_defaults_come_from_one_declaration():
    settings = load({})
    assert (settings.engine_timeout, settings.engine_max_rulesets, settings.batch_inline_rows) == (5.0, 64, 1000)
    assert settings.as_config()["LOGIN_MAX_FAILURES"] == 5


def test_the_environment_is_read_with_the_eligo_prefix(monkeypatch):
    monkeypatch.setenv("ELIGO_ENGINE_TIMEOUT", "2.5")
    monkeypatch.setenv("ELIGO_HTTPS", "1")
    settings = load(None)
    assert (settings.engine_timeout, settings.https) == (2.5, True)


def test_a_tests_mapping_ignores_the_environment(monkeypatch):
    monkeypatch.setenv("ELIGO_ENGINE_TIMEOUT", "2.5")
    assert load({"ENGINE_ISOLATED": False}).engine_timeout == Settings.model_fields["engine_timeout"].default


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ENGINE_TIMEOUT", "soon", "valid number"),
        ("HTTPS", "maybe", "valid boolean"),
        ("ENGINE_TIMEOUT", "-1", "greater"),
    ],
)
def test_a_wrong_value_stops_the_start_naming_the_variable(monkeypatch, name, value, expected):
    monkeypatch.setenv(f"ELIGO_{name}", value)
    with pytest.raises(SettingsError, match=rf"ELIGO_{name}='{value}': .*{expected}"):
        create_app()


def test_the_app_config_holds_the_checked_values(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "ENGINE_TIMEOUT": "3"})
    assert app.config["ENGINE_TIMEOUT"] == 3.0 and app.config["TESTING"] is True
