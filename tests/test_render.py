"""Every combination of offered answers renders to a clean, lint-free project.

The combinations come from copier.yml, so a new choice is tested as soon as
it is offered: every value of each single-choice question, and every
non-empty subset of each multiselect question, with two exceptions that
change little of the rest. `deploy`: every combination has every deploy
target (tests/test_deploy.py checks their files with the tools that read
them). `python_version`, which sets only the lowest Python and ruff's target:
each combination of the others gets one version, in turn, so that each
version meets every value of every other question.

Every combination is rendered once for the session, on every core, and ruff
lints them all in one call per command (each project with its own settings),
so that the number of combinations can grow with the choices.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from tests.conftest import choice_is_offered, choice_values, questions
from tests.project import ROOT, render

# Rendering every combination is the slow step of the session's first test.
pytestmark = pytest.mark.timeout(1800)

ANSWERS_FILE = ".copier-answers.yml"

# How each protocol shows in a rendered project: its route in app.py (Django's: in
# web/urls.py and web/consumers.py), and the
# words that name its files. A protocol offered in copier.yml but missing here
# fails test_every_protocol_is_known.
PROTOCOL_ROUTES = {
    "sse": re.compile(r"/sse\b"),
    "ndjson": re.compile(r"/ndjson\b"),
    "websocket": re.compile(r"""["']/ws["']"""),
}
PROTOCOL_WORDS = {
    "sse": {"sse"},
    "ndjson": {"ndjson"},
    "websocket": {"websocket", "websockets", "ws"},
}


def combinations() -> Iterator[dict[str, Any]]:
    """Every combination of the values offered by copier.yml's choice questions."""
    offered: dict[str, list[Any]] = {}
    pythons: list[Any] = []
    for name, spec in questions().items():
        if "choices" not in spec:
            continue
        values = choice_values(spec)
        if name == "python_version":
            pythons = values
            offered[name] = [None]
        elif name == "deploy":
            offered[name] = [values]
        elif spec.get("multiselect"):
            subsets = (itertools.combinations(values, size) for size in range(1, len(values) + 1))
            offered[name] = [list(subset) for subset in itertools.chain.from_iterable(subsets)]
        else:
            offered[name] = values
    specs = questions()
    pairs: list[tuple[Any, Any]] = []
    for picked in itertools.product(*offered.values()):
        answers = dict(zip(offered, picked, strict=True))
        if all(choice_is_offered(specs[name], answers[name], answers) for name in offered):
            pair = (answers["framework"], answers["server"])
            if pair not in pairs:
                pairs.append(pair)
            # The version's index is a sum of one index per other question: hold any
            # one value and the others still run through every version.
            turn = (
                offered["protocols"].index(answers["protocols"])
                + offered["broker"].index(answers["broker"])
                + pairs.index(pair)
            )
            answers["python_version"] = pythons[turn % len(pythons)]
            yield answers


def combination_id(answers: dict[str, Any]) -> str:
    return "-".join("+".join(v) if isinstance(v, list) else str(v) for v in answers.values())


COMBINATIONS = list(combinations())


IDS = [combination_id(answers) for answers in COMBINATIONS]
RUFF_COMMANDS = {
    "check": ["check", "--no-cache", "--output-format", "concise"],
    "format": ["format", "--check", "--no-cache"],
}


@dataclass(frozen=True)
class Renders:
    """Every combination rendered, by id, and what each ruff command found in each."""

    projects: dict[str, Path]
    ruff: dict[str, dict[str, list[str]]]


def template_copy(dst: Path) -> Path:
    """The template as it is in the work tree (tracked and new files, not ignored ones),
    as a plain folder: the same files copier renders from the repository with its
    uncommitted changes, without a git clone for every render."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # else deleted in the work tree
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dst / name)
    return dst


def start_render_worker() -> None:
    """Set up a process that only renders this template, many times.

    Without git on PATH copier skips its git command per rendered file, needless
    for a template that is a plain folder and projects made in fresh folders.
    Copier makes a Jinja environment for every render and compiles every file
    and path template again: the same sources with the same settings each time,
    so each is compiled once per process (two thirds of a render's time).
    """
    os.environ["PATH"] = ""
    compile_source = jinja2.Environment.compile
    compiled: dict[tuple[Any, ...], Any] = {}

    def compile_once(environment: jinja2.Environment, source: Any, *args: Any, **kw: Any) -> Any:
        if not isinstance(source, str):
            return compile_source(environment, source, *args, **kw)
        key = (source, args, tuple(sorted(kw.items())))
        if key not in compiled:
            compiled[key] = compile_source(environment, source, *args, **kw)
        return compiled[key]

    jinja2.Environment.compile = compile_once


def render_job(job: tuple[Path, Path, dict[str, Any]]) -> None:
    template, dst, answers = job
    render(dst, answers, template=template)


def ruff_findings(base: Path) -> dict[str, dict[str, list[str]]]:
    """Each ruff command once over every project; its output lines, by project id."""
    findings: dict[str, dict[str, list[str]]] = {}
    for name, command in RUFF_COMMANDS.items():
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "."],
            cwd=base,
            capture_output=True,
            text=True,
            check=False,
        )
        output = (result.stdout + result.stderr).splitlines()
        by_id: dict[str, list[str]] = {}
        for line in output:
            for found in set(re.findall(r"([^\s/]+)/project/", line)) & set(IDS):
                by_id.setdefault(found, []).append(line)
        if result.returncode != 0 and not by_id:
            raise AssertionError(f"ruff {name} failed:\n" + "\n".join(output))
        findings[name] = by_id
    return findings


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    """Every combination, rendered once on every core, then linted with ruff."""
    return render_every_combination(tmp_path_factory.getbasetemp())


@functools.cache
def render_every_combination(basetemp: Path) -> Renders:
    """Once per session (its base folder): test_deploy.py uses this fixture too, and
    pytest would run a fixture once for each module that holds it."""
    template = template_copy(basetemp / "template")
    base = basetemp / "combinations"
    projects = {name: base / name / "project" for name in IDS}
    jobs = [
        (template, projects[name], answers) for name, answers in zip(IDS, COMBINATIONS, strict=True)
    ]
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_render_worker,
    ) as pool:
        for _ in pool.map(render_job, jobs, chunksize=max(1, len(jobs) // (4 * workers))):
            pass
    return Renders(projects, ruff_findings(base))


@pytest.fixture(params=COMBINATIONS, ids=IDS)
def rendered(request: pytest.FixtureRequest, renders: Renders) -> tuple[dict[str, Any], Path]:
    """One rendered project per combination, shared by the checks below."""
    answers: dict[str, Any] = request.param
    return answers, renders.projects[combination_id(answers)]


def rendered_files(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file())


def leftover_jinja() -> re.Pattern[str]:
    """Jinja that should have been rendered, and nothing else.

    Rendered code may hold braces of its own (`{{` in a Python f-string,
    `${{ }}` in a GitHub workflow, `{:.1%}` in a format spec), so this matches
    only an expression that names a copier variable, a statement tag, or a
    comment tag.
    """
    names = "|".join([*sorted(questions()), r"_copier_\w+", "_folder_name"])
    filters = r"(?:\s*\|\s*\w+(?:\([^)\n]*\))?)*"
    return re.compile(
        "|".join(
            [
                rf"\{{\{{-?\s*(?:{names})\b",  # {{ project_slug ...
                rf"\b(?:{names}){filters}\s+-?\}}\}}",  # ... package_name | lower }}
                r"\{%-?\s*[a-z]+",  # {% if ... / {%- for ...
                r"(?:^|\s)-?%\}",  # ... endif %}
                r"\{#|#\}",  # {# a comment #}
            ]
        )
    )


LEFTOVER = leftover_jinja()


def test_each_python_version_meets_every_other_answer() -> None:
    every = list(combinations())
    versions = choice_values(questions()["python_version"])
    for name in ("framework", "server", "broker", "protocols"):
        for value in {str(answers[name]) for answers in every}:
            met = {answers["python_version"] for answers in every if str(answers[name]) == value}
            assert met == set(versions), (name, value, met)


def test_every_protocol_is_known() -> None:
    assert (
        set(choice_values(questions()["protocols"])) == set(PROTOCOL_ROUTES) == set(PROTOCOL_WORDS)
    )


def test_no_leftover_jinja(rendered: tuple[dict[str, Any], Path]) -> None:
    _, project = rendered
    problems = []
    for path in rendered_files(project):
        relative = path.relative_to(project)
        if any(mark in str(relative) for mark in ("{{", "}}", "{%", "%}")):
            problems.append(f"{relative}: Jinja in the file name")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), start=1):
            if LEFTOVER.search(line):
                problems.append(f"{relative}:{number}: {line.strip()}")
    assert not problems, "leftover Jinja:\n" + "\n".join(problems)


def test_answers_file_records_the_answers(rendered: tuple[dict[str, Any], Path]) -> None:
    answers, project = rendered
    text = (project / ANSWERS_FILE).read_text(encoding="utf-8")
    assert text.startswith("# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n")
    recorded = yaml.safe_load(text)
    assert recorded["_src_path"]
    for name, value in answers.items():
        assert recorded[name] == value, name


def test_config_files_parse(rendered: tuple[dict[str, Any], Path]) -> None:
    """Every rendered YAML and TOML file is well-formed (the templates are not, unrendered)."""
    _, project = rendered
    for path in rendered_files(project):
        if path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))


def test_only_chosen_protocols_are_rendered(rendered: tuple[dict[str, Any], Path]) -> None:
    answers, project = rendered
    chosen = set(answers["protocols"])
    package = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))["package_name"]
    source = project / "src" / package
    routing = [source / "app.py", source / "web" / "urls.py", source / "web" / "consumers.py"]
    app = "\n".join(path.read_text(encoding="utf-8") for path in routing if path.is_file())
    for protocol, route in PROTOCOL_ROUTES.items():
        assert bool(route.search(app)) == (protocol in chosen), f"{protocol} route in app.py"
    unchosen = set().union(*(PROTOCOL_WORDS[p] for p in PROTOCOL_WORDS.keys() - chosen))
    for path in rendered_files(project):
        name = path.relative_to(project)
        words = set(re.split(r"[^a-z0-9]+", str(name).lower()))
        if "without" in words:
            # tests/test_without_<protocol>.py checks that a protocol left out has no endpoint.
            assert words & unchosen, f"{name} is for a protocol that was chosen"
        else:
            assert not words & unchosen, f"{name} is for a protocol not chosen"


@pytest.mark.parametrize("command", RUFF_COMMANDS)
def test_ruff_passes(rendered: tuple[dict[str, Any], Path], renders: Renders, command: str) -> None:
    """Lint with ruff from this environment and the rendered project's own settings."""
    answers, _ = rendered
    findings = renders.ruff[command].get(combination_id(answers), [])
    assert not findings, "\n".join(findings)


@pytest.mark.parametrize(
    "line",
    [
        "name = {{ project_slug }}",
        'version = "{{python_version}}"',
        "{% if 'sse' in protocols %}",
        "{%- endif %}",
        "    %}",
        "{# a note #}",
        "    package_name | replace('-', '_') }}",
    ],
)
def test_leftover_pattern_finds_jinja(line: str) -> None:
    assert LEFTOVER.search(line)


@pytest.mark.parametrize(
    "line",
    [
        """return f'{{"id":{dump_json(self.id)},"data":{self.data}}}'""",
        "        run: echo ${{ github.sha }}",
        'print(f"{share:.1%}")',
        'body = {"protocols": sorted(protocols)}}',
        "x = {  # a dict",
    ],
)
def test_leftover_pattern_spares_code(line: str) -> None:
    assert not LEFTOVER.search(line)
