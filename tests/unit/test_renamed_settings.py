"""Renamed settings (app/settings.py `RENAMED`): the old name is still read, with a
deprecation warning; old and new set to different values is a settings error naming both;
set to the same value, or the new name alone, is fine."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from app.settings import RENAMED, Settings


@pytest.fixture(autouse=True)
def no_follower_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for rename in RENAMED:
        monkeypatch.delenv(rename.old, raising=False)
        monkeypatch.delenv(rename.new.upper(), raising=False)


@pytest.mark.parametrize("rename", RENAMED, ids=lambda rename: rename.old)
def test_an_old_name_still_sets_the_new_setting_and_warns(
    rename, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(rename.old, "7")

    with caplog.at_level(logging.WARNING):
        settings = Settings()

    assert getattr(settings, rename.new) == 7
    assert f"{rename.old} is deprecated: set {rename.new.upper()} instead" in caplog.text


@pytest.mark.parametrize("rename", RENAMED, ids=lambda rename: rename.old)
def test_an_old_and_a_new_name_set_apart_is_a_settings_error(
    rename, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rename.old, "7")
    monkeypatch.setenv(rename.new.upper(), "8")

    with pytest.raises(ValidationError) as raised:
        Settings()

    message = str(raised.value)
    assert rename.old in message and rename.new.upper() in message


def test_the_same_value_under_both_names_or_the_new_name_alone_is_fine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGA_MAX_ATTEMPTS", "6")
    monkeypatch.setenv("FOLLOWER_MAX_ATTEMPTS", "6")
    assert Settings().follower_max_attempts == 6
    monkeypatch.delenv("SAGA_MAX_ATTEMPTS")
    monkeypatch.setenv("FOLLOWER_BACKOFF_SECONDS", "0.25")
    assert Settings().follower_backoff_seconds == 0.25


def test_a_keyword_under_the_old_name_is_read_like_the_environment() -> None:
    assert Settings(projector_batch_size=42).follower_batch_size == 42
    with pytest.raises(ValidationError):
        Settings(projector_batch_size=42, follower_batch_size=43)
