"""Fixtures that render the template with copier's Python API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from tests.project import ROOT, render
from tests.variants import with_computed

Render = Callable[..., Path]


def load_copier_config() -> dict[str, Any]:
    """copier.yml as data, so that tests follow the questions instead of copying them."""
    with (ROOT / "copier.yml").open(encoding="utf-8") as file:
        config: dict[str, Any] = yaml.safe_load(file)
    return config


def questions() -> dict[str, dict[str, Any]]:
    """The questions of copier.yml, without its `_settings`."""
    return {name: spec for name, spec in load_copier_config().items() if not name.startswith("_")}


def choice_values(spec: Mapping[str, Any]) -> list[Any]:
    """The values a question offers; copier takes a list or a {label: value} mapping,
    where a value may be `{value, validator}`."""
    choices = spec["choices"]
    values = choices.values() if isinstance(choices, dict) else choices
    return [value["value"] if isinstance(value, dict) else value for value in values]


def choice_is_offered(spec: Mapping[str, Any], value: Any, answers: Mapping[str, Any]) -> bool:
    """False when the choice's own validator turns it down for these answers, as copier would."""
    choices = spec["choices"]
    for choice in choices.values() if isinstance(choices, dict) else choices:
        if isinstance(choice, dict) and choice["value"] == value and "validator" in choice:
            # Only whether it says anything matters, so escaping changes nothing.
            message = jinja2.Environment(autoescape=True).from_string(choice["validator"])
            return not message.render(**with_computed(answers)).strip()
    return True


@pytest.fixture
def render_project(tmp_path: Path) -> Render:
    """Render the template with some answers (the rest default) into a fresh folder."""

    def render_into(answers: Mapping[str, object] | None = None, name: str = "project") -> Path:
        return render(tmp_path / name, answers or {})

    return render_into


@pytest.fixture(scope="session")
def uv() -> str:
    """The uv binary: the one that runs us (`$UV`), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is needed to check a generated project: pip install uv")
    return found
