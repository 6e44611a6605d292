"""Deploy files pass the tools that read them, and their timeouts agree.

hadolint lints the Dockerfile, check-jsonschema checks compose.yaml and the
GitHub workflows against their published schemas, kubernetes-validate checks
the manifests strictly against a current Kubernetes, the Gateway API's own
validator (from npm) checks the HTTPRoute, systemd-analyze verifies the units,
nginx -t loads the site, and fly.toml is parsed and its keys checked.

Every target that runs the app runs it in production mode: the environment
each one gives the app is read from its file, and the rendered project's
`serve` is started with it, once without the operator's secret (it must
refuse, exit status 2, one line) and once with it (it must serve).

The files come from every combination that test_render.py renders (each with
every deploy target) and from each target chosen alone. Each distinct file is
checked once: most do not change with the protocols or the server.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import choice_values, load_copier_config, questions
from tests.project import (
    ROOT,
    apply_env,
    command_name,
    lowest_python,
    project_env,
    render,
)
from tests.test_render import Renders, renders, template_copy

__all__ = ["renders"]  # the fixture, shared with test_render.py

# The first test waits for test_render.py's renders.
pytestmark = pytest.mark.timeout(1800)

TARGETS: list[str] = [str(value) for value in choice_values(questions()["deploy"])]
# The Kubernetes release the manifests are checked against.
KUBERNETES_VERSION = "1.37.0"
# The Gateway API's models, with a validator compiled from its CRDs' schemas.
GATEWAY_API_MODELS = ["@kubernetes-models/gateway-api@2.0.0", "yaml@2.8.1"]
# Platforms whose kill timeout is not in any file: Heroku sends SIGKILL 30 s after SIGTERM.
PROCFILE_KILL_SECONDS = 30
# Idle timeouts of the proxies in front that no file sets: Fly.io's proxy and
# Heroku's router (55 s), and common load balancers (60 s).
UNSET_PROXY_IDLE_SECONDS = 55

CONFIG = load_copier_config()
# Where a container's or a platform's server listens.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the address the files must name


def tool(name: str) -> str:
    """A tool from this environment's dependency group, else from the system."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is needed for this check and is not installed")
    return found


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def singles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each target chosen alone, the other answers their defaults."""
    template = template_copy(tmp_path_factory.mktemp("template"))
    base = tmp_path_factory.mktemp("singles")
    return {
        target: render(base / target, {"deploy": [target]}, template=template) for target in TARGETS
    }


@pytest.fixture(scope="module")
def projects(renders: Renders, singles: dict[str, Path]) -> list[Path]:
    return [*renders.projects.values(), *singles.values()]


def distinct(paths: Iterable[Path]) -> list[Path]:
    """One path for each distinct content."""
    seen: dict[bytes, Path] = {}
    for path in paths:
        seen.setdefault(path.read_bytes(), path)
    return list(seen.values())


def found(projects: list[Path], pattern: str) -> list[Path]:
    paths = distinct(path for project in projects for path in project.glob(pattern))
    assert paths, f"no project has {pattern}"
    return paths


def answers_of(project: Path) -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load(
        (project / ".copier-answers.yml").read_text(encoding="utf-8")
    )
    return answers


def computed(name: str) -> int:
    """A timeout that copier.yml computes for the deploy files (a `when: false` question)."""
    spec = CONFIG[name]
    assert spec.get("when") is False, f"{name} is asked; it should be computed"
    default = spec["default"]
    if isinstance(default, int):
        return default
    # "{{ 2 * drain_seconds + 10 }}": evaluated with the other computed values.
    expression = default.strip().removeprefix("{{").removesuffix("}}")
    names = {key: computed(key) for key in re.findall(r"[a-z_]+", expression)}
    return int(eval(expression, {"__builtins__": {}}, names))  # noqa: S307 - copier.yml's own


def settings_default(field: str) -> float:
    """A default of Settings in the generated settings.py, read from its source."""
    source = (ROOT / "template" / "src" / "{{ package_name }}" / "settings.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == field
            and isinstance(node.value, ast.Constant)
        ):
            return float(node.value.value)
    raise AssertionError(f"no default for {field} in settings.py")


def container_env(deployment: Path) -> list[dict[str, Any]]:
    """The `env` of the app's container in a Deployment."""
    pod = yaml.safe_load(deployment.read_text())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env: list[dict[str, Any]] = container["env"]
    return env


def seconds(text: str) -> float:
    """'30s', '30', '1m30s', 30 -> seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    if re.fullmatch(r"\d+(\.\d+)?", str(text)):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text))
    assert parts, f"not a duration: {text!r}"
    assert "".join(a + b for a, b in parts) == str(text), f"not a duration: {text!r}"
    return sum(float(value) * units[unit] for value, unit in parts)


# The timeouts -------------------------------------------------------------------------------


def test_timeouts_come_from_the_settings_defaults() -> None:
    assert computed("heartbeat_seconds") == settings_default("heartbeat_seconds")
    assert computed("drain_seconds") == settings_default("drain_seconds")
    # A server drains, then its own graceful bound (as long again) runs out.
    assert computed("stop_seconds") > 2 * computed("drain_seconds")
    assert computed("proxy_timeout_seconds") > computed("heartbeat_seconds")
    assert computed("heartbeat_seconds") < UNSET_PROXY_IDLE_SECONDS
    assert 2 * computed("drain_seconds") < PROCFILE_KILL_SECONDS


def test_every_target_sets_the_same_drain_and_heartbeat(projects: list[Path]) -> None:
    drain, heartbeat = computed("drain_seconds"), computed("heartbeat_seconds")
    patterns = {
        "Dockerfile": [
            f"REALTIME_DRAIN_SECONDS={drain}",
            f"REALTIME_HEARTBEAT_SECONDS={heartbeat}",
        ],
        "compose.yaml": [f'REALTIME_DRAIN_SECONDS: "{drain}"'],
        "deploy/systemd/*.service": [f"REALTIME_DRAIN_SECONDS={drain}"],
        "fly.toml": [f'REALTIME_DRAIN_SECONDS = "{drain}"'],
        "Procfile": [f"REALTIME_DRAIN_SECONDS:-{drain}"],
    }
    for pattern, needles in patterns.items():
        for path in found(projects, pattern):
            text = path.read_text(encoding="utf-8")
            for needle in needles:
                assert needle in text, f"{path}: no {needle}"
    for path in found(projects, "deploy/kubernetes/deployment.yaml"):
        env = {item["name"]: item.get("value") for item in container_env(path)}
        assert env["REALTIME_DRAIN_SECONDS"] == str(drain)
        assert env["REALTIME_HEARTBEAT_SECONDS"] == str(heartbeat)


def test_kill_timeouts_outlast_the_drain(projects: list[Path]) -> None:
    """Every platform waits for the drain and the server's bound after it before SIGKILL."""
    bound = 2 * computed("drain_seconds")
    for path in found(projects, "compose.yaml"):
        grace = seconds(yaml.safe_load(path.read_text())["services"]["app"]["stop_grace_period"])
        assert grace > bound, path
    for path in found(projects, "deploy/kubernetes/deployment.yaml"):
        pod = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
        pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > pre_stop + bound, path
    for path in found(projects, "deploy/systemd/*.service"):
        (stop,) = re.findall(r"^TimeoutStopSec=(\S+)$", path.read_text(), re.MULTILINE)
        assert seconds(stop) > bound, path
    for path in found(projects, "fly.toml"):
        assert seconds(tomllib.loads(path.read_text())["kill_timeout"]) > bound, path


def test_heartbeats_come_before_any_proxy_gives_up(projects: list[Path]) -> None:
    heartbeat = computed("heartbeat_seconds")
    for path in found(projects, "deploy/nginx/*.conf"):
        timeouts = re.findall(r"proxy_(?:read|send)_timeout (\S+);", path.read_text())
        assert timeouts, path
        assert all(seconds(value) > heartbeat for value in timeouts), path
    for path in found(projects, "deploy/kubernetes/optional/ingress-nginx.yaml"):
        annotations = yaml.safe_load(path.read_text())["metadata"]["annotations"]
        for name in ("proxy-read-timeout", "proxy-send-timeout"):
            assert int(annotations[f"nginx.ingress.kubernetes.io/{name}"]) > heartbeat, path
    for path in found(projects, "deploy/kubernetes/httproute.yaml"):
        for rule in yaml.safe_load(path.read_text())["spec"]["rules"]:
            assert rule["timeouts"] == {"request": "0s", "backendRequest": "0s"}, path


# Docker -------------------------------------------------------------------------------------


def test_hadolint_passes(projects: list[Path]) -> None:
    dockerfiles = found(projects, "Dockerfile")
    result = run(tool("hadolint"), "--no-color", *map(str, dockerfiles))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_follows_the_pattern(projects: list[Path]) -> None:
    for path in found(projects, "Dockerfile"):
        text = path.read_text()
        stages = re.findall(r"^FROM \S+", text, re.MULTILINE)
        assert len(stages) == 2, f"{path}: not two stages"
        assert "uv sync --locked" in text, path
        assert "UV_COMPILE_BYTECODE=1" in text, path
        assert re.search(r"^USER \d+:\d+$", text, re.MULTILINE), f"{path}: no numeric USER"
        assert re.search(r'^ENTRYPOINT \["tini", "--"\]$', text, re.MULTILINE), path
        cmd = re.findall(r"^CMD (\[.*\])$", text, re.MULTILINE)
        assert len(cmd) == 1, f"{path}: CMD is not in exec form"
        assert json.loads(cmd[0])[1:] == ["serve", "--host", ALL_INTERFACES], path
        (check,) = re.findall(r"^HEALTHCHECK .*\n\s+CMD (\[.*\])$", text, re.MULTILINE)
        assert json.loads(check)[0] == "python", path
        assert "/healthz" in check, path


def test_every_target_that_runs_the_image_has_one(singles: dict[str, Path]) -> None:
    for target, project in singles.items():
        needs_image = target in {"docker", "kubernetes", "fly"}
        assert (project / "Dockerfile").is_file() == needs_image, target
        assert (project / ".dockerignore").is_file() == needs_image, target
        assert (project / "compose.yaml").is_file() == (target == "docker"), target


def test_no_deploy_target_writes_no_deploy_files(tmp_path: Path) -> None:
    project = render(tmp_path / "project", {"deploy": []}, template=template_copy(tmp_path))
    for name in ("Dockerfile", ".dockerignore", "compose.yaml", "fly.toml", "Procfile", "deploy"):
        assert not (project / name).exists(), name


def test_compose_matches_its_schema(projects: list[Path]) -> None:
    files = found(projects, "compose.yaml")
    schema = ["--builtin-schema", "vendor.compose-spec"]
    result = run(tool("check-jsonschema"), *schema, *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_waits_for_a_healthy_broker(projects: list[Path]) -> None:
    for path in found(projects, "compose.yaml"):
        services = yaml.safe_load(path.read_text())["services"]
        brokers = set(services) - {"app", "nginx"}
        assert len(brokers) <= 1, path
        for broker in brokers:
            assert "healthcheck" in services[broker], path
            assert services["app"]["depends_on"][broker] == {"condition": "service_healthy"}
        if "nginx" in services:
            assert services["nginx"]["depends_on"]["app"] == {"condition": "service_healthy"}


def test_github_workflows_match_their_schema(projects: list[Path]) -> None:
    workflows = [
        *sorted((ROOT / ".github" / "workflows").glob("*.yml")),
        *found(projects, ".github/workflows/*.yml"),
    ]
    schema = ["--builtin-schema", "vendor.github-workflows"]
    result = run(tool("check-jsonschema"), *schema, *map(str, workflows))
    assert result.returncode == 0, result.stdout + result.stderr


# Kubernetes ---------------------------------------------------------------------------------


def test_kubernetes_manifests_validate_strictly(projects: list[Path]) -> None:
    manifests = [
        path
        for path in found(projects, "deploy/kubernetes/**/*.yaml")
        if yaml.safe_load(path.read_text())["kind"] != "HTTPRoute"
    ]
    result = run(
        tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *map(str, manifests)
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # An unknown kind is only a warning.
    assert "WARN" not in output, output
    assert "ERROR" not in output, output
    assert output.count("passed") == len(manifests), output


@functools.cache
def gateway_api_validator(folder: Path) -> Path:
    """The Gateway API's models from npm, installed once, and a script that validates with them."""
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        pytest.fail("Node.js and npm are needed to validate the HTTPRoute against the Gateway API")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private": true, "type": "module"}\n')
    result = run(npm, "install", "--no-audit", "--no-fund", *GATEWAY_API_MODELS, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    script = folder / "validate.mjs"
    script.write_text(
        'import { readFileSync } from "node:fs";\n'
        'import { parse } from "yaml";\n'
        "import { HTTPRoute } from "
        '"@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";\n'
        "let failed = 0;\n"
        "for (const file of process.argv.slice(2)) {\n"
        "  try { new HTTPRoute(parse(readFileSync(file, 'utf8'))).validate(); }\n"
        "  catch (error) { failed++; console.log(`${file}: ${error.message}`); }\n"
        "}\n"
        "process.exit(failed ? 1 : 0);\n"
    )
    return script


def test_httproute_matches_the_gateway_api(
    projects: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The schema's types, patterns and required fields; unlike kubernetes-validate --strict,
    this validator lets unknown fields pass, so those are checked by name below."""
    routes = found(projects, "deploy/kubernetes/httproute.yaml")
    script = gateway_api_validator(tmp_path_factory.mktemp("gateway-api"))
    result = run("node", str(script), *map(str, routes))
    assert result.returncode == 0, result.stdout + result.stderr
    known = {
        "": {"apiVersion", "kind", "metadata", "spec"},
        "spec": {"parentRefs", "hostnames", "rules"},
        "rule": {
            *("name", "matches", "filters", "backendRefs"),
            *("timeouts", "retry", "sessionPersistence"),
        },
        "timeouts": {"request", "backendRequest"},
    }
    for path in routes:
        route = yaml.safe_load(path.read_text())
        assert set(route) <= known[""], path
        assert set(route["spec"]) <= known["spec"], path
        for rule in route["spec"]["rules"]:
            assert set(rule) <= known["rule"], path
            assert set(rule["timeouts"]) <= known["timeouts"], path


def test_memory_broker_runs_one_replica(projects: list[Path]) -> None:
    for project in projects:
        folder = project / "deploy" / "kubernetes"
        if not folder.is_dir():
            continue
        deployment = yaml.safe_load((folder / "deployment.yaml").read_text())
        scaled = {path.name for path in folder.glob("*.yaml")} & {
            "horizontalpodautoscaler.yaml",
            "poddisruptionbudget.yaml",
        }
        if answers_of(project)["broker"] == "memory":
            assert deployment["spec"]["replicas"] == 1, project
            assert "in-memory broker" in (folder / "deployment.yaml").read_text(), project
            assert not scaled, project
        else:
            assert deployment["spec"]["replicas"] > 1, project
            assert len(scaled) == 2, project


def test_pods_are_probed_and_unprivileged(projects: list[Path]) -> None:
    for path in found(projects, "deploy/kubernetes/deployment.yaml"):
        pod = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", path
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", path
        assert pod["securityContext"]["runAsNonRoot"] is True, path
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, path
        assert container["resources"]["requests"], path


# systemd ------------------------------------------------------------------------------------


def systemd_root(base: Path, units: list[Path]) -> Path:
    """A root folder where the units are installed, as the README says, with their
    ExecStart programs present: systemd-analyze checks that they can run."""
    root = base / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, system / unit.name)
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                program = root / shlex.split(line.removeprefix("ExecStart="))[0].lstrip("/")
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n")
                program.chmod(0o755)
    return root


def test_systemd_units_verify(projects: list[Path], tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze (Debian's systemd package) is needed to verify the units")
    folders = {
        tuple(sorted(path.read_bytes() for path in folder.iterdir())): folder
        for project in projects
        if (folder := project / "deploy" / "systemd").is_dir()
    }
    assert folders
    for number, folder in enumerate(folders.values()):
        units = sorted(folder.iterdir())
        root = systemd_root(tmp_path / str(number), units)
        installed = [str(root / "etc/systemd/system" / unit.name) for unit in units]
        result = run("systemd-analyze", "verify", "--man=no", f"--root={root}", *installed)
        # systemd-analyze warns about unknown keys and bad values, and exits 0.
        assert result.returncode == 0, f"{folder}:\n{result.stderr}"
        assert not result.stderr, f"{folder}:\n{result.stderr}"


def test_socket_activation_only_where_the_server_takes_the_socket(projects: list[Path]) -> None:
    for project in projects:
        folder = project / "deploy" / "systemd"
        if folder.is_dir():
            sockets = list(folder.glob("*.socket"))
            assert bool(sockets) == (answers_of(project)["server"] == "gunicorn-uvicorn"), project


# nginx --------------------------------------------------------------------------------------


def nginx_main_config(folder: Path, site: Path) -> Path:
    """A main nginx.conf that includes the site, as Debian's includes sites-enabled/."""
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.geteuid() == 0 else ""
    config = folder / "nginx.conf"
    config.write_text(
        f"{user}pid {folder / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {site};\n}}\n"
    )
    return config


def test_nginx_accepts_the_site(projects: list[Path], tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is needed: apt-get install nginx")
    for number, site in enumerate(found(projects, "deploy/nginx/*.conf")):
        folder = tmp_path / str(number)
        folder.mkdir()
        config = nginx_main_config(folder, site)
        result = run(nginx, "-t", "-q", "-p", str(folder), "-e", "stderr", "-c", str(config))
        assert result.returncode == 0, f"{site}:\n{result.stderr}"


def test_nginx_streams_pass_unbuffered(projects: list[Path]) -> None:
    for project in projects:
        for site in project.glob("deploy/nginx/*.conf"):
            text = site.read_text()
            protocols = answers_of(project)["protocols"]
            assert "proxy_http_version 1.1;" in text, site
            blocks = re.findall(r"location [^{]+\{[^}]+\}", text)
            streams = [block for block in blocks if "sse" in block or "ndjson" in block]
            assert bool(streams) == bool({"sse", "ndjson"} & set(protocols)), site
            for block in streams:
                assert "proxy_buffering off;" in block, site
                assert "gzip off;" in block, site
            assert ("$connection_upgrade" in text) == ("websocket" in protocols), site


# Fly.io and Procfile ------------------------------------------------------------------------


def test_fly_toml_has_what_fly_needs(projects: list[Path]) -> None:
    for path in found(projects, "fly.toml"):
        fly = tomllib.loads(path.read_text())
        assert fly["app"], path
        assert fly["kill_signal"] == "SIGTERM", path
        assert fly["build"]["dockerfile"] == "Dockerfile", path
        service = fly["http_service"]
        assert service["internal_port"] == int(fly["env"]["PORT"]) == 8000, path
        concurrency = service["concurrency"]
        assert concurrency["type"] == "connections", path
        assert 0 < concurrency["soft_limit"] < concurrency["hard_limit"], path
        assert [check["path"] for check in service["checks"]] == ["/readyz"], path
        assert [check["path"] for check in fly["checks"].values()] == ["/healthz"], path


def test_procfile_binds_port_behind_the_router(projects: list[Path]) -> None:
    for path in found(projects, "Procfile"):
        lines = path.read_text().splitlines()
        assert len(lines) == 1, path
        assert lines[0].startswith("web: "), path
        words = shlex.split(lines[0].removeprefix("web: "))
        assert words[-5:] == ["serve", "--host", ALL_INTERFACES, "--port", "$PORT"], path
        assert any(word.startswith("FORWARDED_ALLOW_IPS=") for word in words), path


# Production mode ----------------------------------------------------------------------------

STARTUP_SECONDS = 30.0
# What an operator sets where the app is deployed: a new secret and the public origin.
OPERATOR_SECRET = secrets.token_urlsafe(32)
OPERATOR_ORIGINS = "https://app.example.com"
# `$$`, `$NAME`, `${NAME}`, `${NAME-default}`, `${NAME:-default}`, `${NAME?message}` and
# `${NAME:?message}`: what compose.yaml and the Procfile's shell assignments use.
EXPANSION = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def expand(text: str, variables: dict[str, str], missing: list[str] | None = None) -> str:
    """`text` with its variables expanded from `variables`, as compose and sh do. The name
    of an unset `${NAME:?message}` is added to `missing` (compose stops there)."""

    def one(match: re.Match[str]) -> str:
        dollar, name, operator, word, bare = match.groups()
        if dollar:
            return "$"
        value = variables.get(name or bare)
        unset = value is None or (value == "" and operator is not None and ":" in operator)
        if operator is not None and operator.endswith("-") and unset:
            return str(word)
        if operator is not None and operator.endswith("?") and unset:
            if missing is not None:
                missing.append(name)
            return ""
        return value or ""

    return EXPANSION.sub(one, text)


def machine_environment() -> dict[str, str]:
    """This machine's environment without any REALTIME_* setting or PORT of its own."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("REALTIME_") and key != "PORT"
    }


def image_environment(project: Path) -> dict[str, str]:
    """The ENV of the Dockerfile's final stage, /app/.venv being the project's .venv."""
    lines: list[str] = []
    for line in (project / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + line.strip()
        else:
            lines.append(line.strip())
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    variables = machine_environment()
    env: dict[str, str] = {}
    for line in lines[last_from + 1 :]:
        if line.startswith("ENV "):
            for pair in shlex.split(line.removeprefix("ENV ")):
                name, _, value = pair.partition("=")
                value = expand(value, variables).replace("/app/.venv", str(project / ".venv"))
                env[name] = variables[name] = value
    return env


def compose_environment(project: Path, operator: dict[str, str]) -> dict[str, str]:
    """The image's ENV, then compose.yaml's for the app, expanded from the operator's shell."""
    app = yaml.safe_load((project / "compose.yaml").read_text())["services"]["app"]
    assert app["build"] == ".", "the app is not the Dockerfile's image"
    settings = app["environment"]
    assert isinstance(settings, dict), "compose.yaml's environment is not a mapping"
    given = {name: expand(str(value), operator) for name, value in settings.items()}
    return {**image_environment(project), **given}


def documented_secret(deployment: Path) -> tuple[str, set[str]]:
    """The Secret's name and keys in the `kubectl create secret generic` command that the
    Deployment's comments tell the operator to run."""
    commands: list[str] = []
    for line in deployment.read_text().splitlines():
        if not line.startswith("#"):
            continue
        text = line.removeprefix("#").strip()
        if commands and commands[-1].endswith("\\"):
            commands[-1] = commands[-1][:-1] + " " + text
        else:
            commands.append(text)
    (command,) = [c for c in commands if c.startswith("kubectl create secret generic ")]
    words = shlex.split(command)
    keys = {
        word.removeprefix("--from-literal=").partition("=")[0]
        for word in words
        if word.startswith("--from-literal=")
    }
    return words[4], keys


def kubernetes_environment(project: Path, operator: dict[str, str]) -> dict[str, str]:
    """The image's ENV, then the container's env: its values, and from the Secret the
    operator created, with each setting under the key that the Deployment reads."""
    deployment = project / "deploy" / "kubernetes" / "deployment.yaml"
    secret_name, secret_keys = documented_secret(deployment)
    env = image_environment(project)
    for item in container_env(deployment):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        reference = item["valueFrom"]["secretKeyRef"]
        assert reference["name"] == secret_name, f"{item['name']}: not in the documented Secret"
        assert reference["key"] in secret_keys, f"{item['name']}: the kubectl command lacks it"
        # Optional, a missing key would let the pod start without it.
        assert not reference.get("optional", False), item["name"]
        if item["name"] in operator:
            env[item["name"]] = operator[item["name"]]
    return env


def fly_environment(project: Path, operator: dict[str, str]) -> dict[str, str]:
    """The image's ENV, then fly.toml's [env], then the operator's `fly secrets set`."""
    text = (project / "fly.toml").read_text()
    fly = tomllib.loads(text)
    assert fly["build"]["dockerfile"] == "Dockerfile"
    comments = " ".join(line for line in text.splitlines() if line.startswith("#"))
    assert "fly secrets set" in comments, "fly.toml does not say how to set the secret"
    for name in operator:
        assert f"{name}=" in comments, f"fly.toml does not say to set {name}"
    return {**image_environment(project), **fly["env"], **operator}


def procfile_environment(project: Path, operator: dict[str, str]) -> dict[str, str]:
    """The platform's config vars, then the web line's own assignments, as its shell
    makes them."""
    (line,) = (project / "Procfile").read_text().splitlines()
    env = dict(operator)
    for word in shlex.split(line.removeprefix("web:")):
        name, equals, value = word.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_]\w*", name):
            break
        env[name] = expand(value, env)
    return env


def systemd_environment(project: Path, operator: dict[str, str]) -> dict[str, str]:
    """The unit's Environment= lines, then its EnvironmentFile=, which holds the
    operator's settings."""
    (unit,) = (project / "deploy" / "systemd").glob("*.service")
    env: dict[str, str] = {}
    files = []
    for line in unit.read_text().splitlines():
        if line.startswith("Environment="):
            for pair in shlex.split(line.removeprefix("Environment=")):
                name, _, value = pair.partition("=")
                env[name] = value
        elif line.startswith("EnvironmentFile="):
            files.append(line)
    assert files, f"{unit.name} reads no EnvironmentFile for the operator's settings"
    return {**env, **operator}


# The deploy targets that run the app, and how each gives it its environment.
ENVIRONMENTS = {
    "docker": compose_environment,
    "kubernetes": kubernetes_environment,
    "fly": fly_environment,
    "procfile": procfile_environment,
    "systemd": systemd_environment,
}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, uv: str) -> Path:
    """One project with every target, its environment synced once."""
    template = template_copy(tmp_path_factory.mktemp("template"))
    project = render(
        tmp_path_factory.mktemp("deployed") / "project", {"deploy": TARGETS}, template=template
    )
    result = subprocess.run(
        [uv, "sync", "--no-dev"],
        cwd=project,
        env=apply_env(project_env(lowest_python(project))),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def serve_command(project: Path, port: int) -> list[str]:
    script = project / ".venv" / "bin" / command_name(project)
    return [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_environment(target: str, project: Path, operator: dict[str, str]) -> dict[str, str]:
    """What the target gives the app, on this machine's environment."""
    env = {**machine_environment(), **ENVIRONMENTS[target](project, operator)}
    assert env.get("REALTIME_ENVIRONMENT") == "production", f"{target}: not production mode"
    return env


def test_every_target_that_runs_the_app_is_checked_in_production_mode() -> None:
    # nginx only passes requests on to an app that another target runs.
    assert set(ENVIRONMENTS) == set(TARGETS) - {"nginx"}


@pytest.mark.parametrize("target", list(ENVIRONMENTS))
def test_a_target_without_the_operators_secret_refuses_to_start(
    deployed: Path, target: str
) -> None:
    env = app_environment(target, deployed, {"REALTIME_ALLOWED_ORIGINS": OPERATOR_ORIGINS})
    # No file holds a secret of its own.
    assert not env.get("REALTIME_SECRET_KEY"), f"{target} writes a secret in its file"
    port = free_port()
    env["PORT"] = str(port)
    try:
        result = subprocess.run(
            serve_command(deployed, port),
            env=env,
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{target}: the app started without a secret")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"{target}: exit {result.returncode}\n{result.stderr}"
    assert len(lines) == 1, f"{target}: stderr is not one line:\n{result.stderr}"
    assert "REALTIME_SECRET_KEY" in lines[0], lines


def test_compose_stops_before_the_app_without_the_operators_settings(deployed: Path) -> None:
    """`${NAME:?message}`: compose itself names what the operator's shell lacks."""
    app = yaml.safe_load((deployed / "compose.yaml").read_text())["services"]["app"]
    missing: list[str] = []
    for value in app["environment"].values():
        expand(str(value), {}, missing)
    assert sorted(missing) == ["REALTIME_ALLOWED_ORIGINS", "REALTIME_SECRET_KEY"]


@pytest.mark.parametrize("target", list(ENVIRONMENTS))
def test_a_target_with_the_operators_settings_serves(deployed: Path, target: str) -> None:
    operator = {
        "REALTIME_SECRET_KEY": OPERATOR_SECRET,
        "REALTIME_ALLOWED_ORIGINS": OPERATOR_ORIGINS,
    }
    env = app_environment(target, deployed, operator)
    port = free_port()
    env["PORT"] = str(port)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            serve_command(deployed, port), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            status = healthz_status(process, port)
        finally:
            process.terminate()
            process.wait(timeout=STARTUP_SECONDS)
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert status == 200, f"{target}: /healthz answered {status}\n{output}"
    # The open-run warning is for a development run alone.
    assert "REALTIME_SECRET_KEY is not set" not in output, output


def healthz_status(process: subprocess.Popen[bytes], port: int) -> int | None:
    """/healthz's status once the server answers; None if it exits or never answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                status: int = answer.status
                return status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.1)
    return None
