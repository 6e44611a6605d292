"""The `server` question: which servers each framework is offered, and that each has its code."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Render, choice_is_offered, choice_values, questions
from tests.project import ROOT, STACKS

ASGI_FRAMEWORKS = ["starlette", "fastapi", "litestar", "quart", "django"]
# Frameworks that bring a server of their own (aiohttp) or are WSGI (flask).
OTHER_FRAMEWORKS = ["aiohttp", "flask"]
ASGI_SERVERS = ["uvicorn", "granian", "hypercorn", "gunicorn-uvicorn"]
# Servers of one framework only.
FRAMEWORK_SERVERS = {"daphne": "django", "aiohttp": "aiohttp", "gunicorn-gthread": "flask"}
PACKAGE = ROOT / "template" / "src" / "{{ package_name }}"


def servers() -> list[str]:
    return [str(value) for value in choice_values(questions()["server"])]


def frameworks() -> list[str]:
    return [str(value) for value in choice_values(questions()["framework"])]


def offered(server: str, framework: str) -> bool:
    return choice_is_offered(questions()["server"], server, {"framework": framework})


def test_every_server_is_known() -> None:
    assert set(servers()) <= {*ASGI_SERVERS, *FRAMEWORK_SERVERS}


@pytest.mark.parametrize("server", ASGI_SERVERS)
def test_asgi_servers_are_offered_for_asgi_frameworks_only(server: str) -> None:
    assert server in servers(), f"{server} is not a choice of the server question"
    for framework in ASGI_FRAMEWORKS:
        assert offered(server, framework), f"{server} is not offered for {framework}"
    for framework in OTHER_FRAMEWORKS:
        assert not offered(server, framework), f"{server} is offered for {framework}"


@pytest.mark.parametrize(("server", "framework"), FRAMEWORK_SERVERS.items())
def test_a_framework_server_is_offered_for_its_framework_only(server: str, framework: str) -> None:
    assert server in servers(), f"{server} is not a choice of the server question"
    for other in [*ASGI_FRAMEWORKS, *OTHER_FRAMEWORKS]:
        assert offered(server, other) == (other == framework), (server, other)


def test_every_framework_is_known_and_has_its_adapter() -> None:
    for framework in frameworks():
        assert framework in [*ASGI_FRAMEWORKS, *OTHER_FRAMEWORKS], framework
        path = PACKAGE / f"{{% if framework == '{framework}' %}}app.py{{% endif %}}.jinja"
        assert path.is_file(), f"no {path.relative_to(ROOT)}"


def test_every_framework_is_served_by_some_server() -> None:
    for framework in frameworks():
        assert any(offered(server, framework) for server in servers()), framework


def test_every_server_has_its_server_module() -> None:
    for server in servers():
        path = PACKAGE / f"{{% if server == '{server}' %}}server.py{{% endif %}}"
        assert path.is_file(), f"no {path.relative_to(ROOT)}"


def test_every_server_is_documented() -> None:
    text = (ROOT / "docs" / "servers.md").read_text(encoding="utf-8")
    for server in servers():
        assert f"`{server}`" in text, f"docs/servers.md does not name `{server}`"


def test_stacks_are_the_offered_pairs() -> None:
    """The noxfile's `stack` sessions run each framework on each server offered for it."""
    frameworks = [str(value) for value in choice_values(questions()["framework"])]
    offered_pairs = {
        (framework, server)
        for framework in frameworks
        for server in servers()
        if offered(server, framework)
    }
    stacks = {(framework, server) for framework, names in STACKS.items() for server in names}
    assert stacks == offered_pairs


def test_flask_readme_states_the_capacity_its_server_has(render_project: Render) -> None:
    """The capacity the README promises is the one server.py configures."""
    project = render_project({"framework": "flask"})
    server = (project / "src" / "realtime_app" / "server.py").read_text(encoding="utf-8")
    (threads,) = re.findall(r"^THREADS = (\d+)$", server, flags=re.MULTILINE)
    readme = " ".join((project / "README.md").read_text(encoding="utf-8").split())
    assert f"at most **workers x {int(threads):,} open streams and WebSockets at once**" in readme
