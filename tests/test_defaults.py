"""Answers computed from the project name."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import Render


@pytest.mark.parametrize(
    ("name", "slug", "package"),
    [
        ("My Chat App", "my-chat-app", "my_chat_app"),
        # The default, which the README's commands rely on.
        ("Realtime App", "realtime-app", "realtime_app"),
    ],
)
def test_slug_and_package_follow_the_name(
    render_project: Render, name: str, slug: str, package: str
) -> None:
    project = render_project({"project_name": name})
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert (answers["project_slug"], answers["package_name"]) == (slug, package)
    assert (project / "src" / package).is_dir()
    assert f'name = "{slug}"' in (project / "pyproject.toml").read_text(encoding="utf-8")


def test_the_default_name_is_realtime_app(render_project: Render) -> None:
    answers = yaml.safe_load((render_project() / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["project_name"] == "Realtime App"
