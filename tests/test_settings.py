"""The settings are grouped by concern, and every environment variable keeps its documented name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from framewatch.settings import Settings
from framewatch.settings.base import variables

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def test_every_setting_is_documented_under_its_variable_name() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", OPERATIONS.read_text()))
    names = {name.removeprefix("FRAMEWATCH_") for name in variables(Settings)}
    assert names - documented == set()
    assert len(names) == len(variables(Settings))  # no two settings share a variable


def test_a_variable_reaches_its_group_by_its_documented_name(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "FRAMEWATCH_STREAM_RETENTION": "7",
        "FRAMEWATCH_THUMBNAIL_SIZES": "64x36, 32x18",
        "FRAMEWATCH_MODERATION_HTTP_URL": "http://moderation.internal/v1",
        "FRAMEWATCH_DELIVER_TRIES": "4",
        "FRAMEWATCH_AMQP_URL": "amqp://a:b@rabbit-1:5672/,amqp://a:b@rabbit-2:5672/",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.streams.stream_retention == 7
    assert settings.fetch.thumbnails.boxes() == [(64, 36), (32, 18)]
    assert settings.moderation.http.url == "http://moderation.internal/v1"
    assert settings.delivery.tries == 4
    assert settings.broker.amqp_url.get_secret_value().count("amqp://") == 2


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEWATCH_THUMBNAIL_SIZES", "wide")
    with pytest.raises(ValidationError, match="thumbnail size 'wide' is not WIDTHxHEIGHT"):
        Settings(_env_file=None)
