"""carton_hook/switches.py: which values of a `CARTON_*` switch turn it on."""

from __future__ import annotations

import pytest

from carton_hook.switches import env_flag

NAME = "CARTON_TEST_SWITCH"


def test_an_unset_switch_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    assert env_flag(NAME) is False


@pytest.mark.parametrize("value", ["", "   ", "0", "false", "False", "FALSE", "no", "No",
                                   " 0 ", "\tfalse\n", " NO ", "off", "OFF"])
def test_empty_zero_false_no_and_off_are_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME) is False


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", "2", " 1 ", "y",
                                   "anything", "00", "none"])
def test_any_other_value_is_on(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the words above turn a switch off: `none` is on."""
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME) is True


def test_the_environment_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "1")
    assert env_flag(NAME)
    monkeypatch.setenv(NAME, "0")
    assert not env_flag(NAME)


def test_a_switch_is_read_by_its_exact_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    monkeypatch.setenv(NAME.lower(), "1")
    monkeypatch.setenv(NAME + "_MORE", "1")
    assert env_flag(NAME) is False
