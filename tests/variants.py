"""The variants that run in full: a covering array over copier.yml's answers.

Every pair of answers to two different questions (framework, server,
protocols, broker, deploy), where copier would offer both together, appears
in at least one variant. A multiselect answer counts once per option chosen.
The array is made greedily, written to tests/variants.json for the noxfile
(which runs without yaml or jinja2), and checked by tests/test_variants.py.

    python -m tests.variants          # rewrite tests/variants.json
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

from tests.project import ROOT

QUESTIONS = ("framework", "server", "protocols", "broker", "deploy")
VARIANTS_FILE = Path(__file__).with_name("variants.json")

Level = tuple[str, str]  # (question, one value it can take)
Answers = dict[str, Any]


@functools.cache
def copier_config() -> dict[str, Any]:
    with (ROOT / "copier.yml").open(encoding="utf-8") as file:
        config: dict[str, Any] = yaml.safe_load(file)
    return config


def copier_questions() -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in copier_config().items() if name in QUESTIONS}


def with_computed(answers: Mapping[str, Any]) -> Answers:
    """`answers`, plus the answers copier computes from them (`when: false` questions),
    in the order copier.yml defines them; questions not answered take plain defaults."""
    known: Answers = {}
    for name, spec in copier_config().items():
        if name.startswith("_"):
            continue
        default = spec.get("default")
        if name in answers:
            known[name] = answers[name]
        elif spec.get("when") is False and isinstance(default, str) and "{{" in default:
            text = compiled(default).render(**known).strip()
            known[name] = text.lower() == "true" if spec.get("type") == "bool" else text
        elif not (isinstance(default, str) and "{" in default):
            known[name] = default
    return known


def values(spec: Mapping[str, Any]) -> list[str]:
    choices = spec["choices"]
    items = choices.values() if isinstance(choices, dict) else choices
    return [item["value"] if isinstance(item, dict) else item for item in items]


# Only whether a validator says anything matters, so escaping changes nothing.
JINJA = jinja2.Environment(autoescape=True)


@functools.cache
def compiled(validator: str) -> jinja2.Template:
    return JINJA.from_string(validator)


def offered(spec: Mapping[str, Any], value: str, answers: Answers) -> bool:
    """Whether copier offers `value` with these answers: the choice's validator says nothing."""
    choices = spec["choices"]
    for item in choices.values() if isinstance(choices, dict) else choices:
        if isinstance(item, dict) and item["value"] == value and "validator" in item:
            return not compiled(item["validator"]).render(**answers).strip()
    return True


def is_valid(answers: Answers, specs: Mapping[str, Mapping[str, Any]]) -> bool:
    answers = with_computed(answers)
    for name, spec in specs.items():
        chosen = answers[name]
        for value in chosen if spec.get("multiselect") else [chosen]:
            if not offered(spec, value, answers):
                return False
        if spec.get("multiselect") and name == "protocols" and not chosen:
            return False
    return True


def levels_of(answers: Answers, specs: Mapping[str, Mapping[str, Any]]) -> set[Level]:
    found: set[Level] = set()
    for name, spec in specs.items():
        chosen = answers[name]
        found.update((name, value) for value in (chosen if spec.get("multiselect") else [chosen]))
    return found


def pairs_of(levels: Iterable[Level]) -> set[tuple[Level, Level]]:
    return {(a, b) for a, b in itertools.combinations(sorted(levels), 2) if a[0] != b[0]}


def subsets(choice: list[str]) -> list[list[str]]:
    """The selections tried: all of them for a few options, else none, each one, and all.

    Pairs count each option alone, so larger selections add nothing new.
    """
    if len(choice) <= 3:
        sizes: Iterable[int] = range(len(choice) + 1)
    else:
        sizes = (0, 1, len(choice))
    combos = itertools.chain.from_iterable(itertools.combinations(choice, n) for n in sizes)
    return [list(subset) for subset in combos]


def all_answers(specs: Mapping[str, Mapping[str, Any]]) -> Iterator[Answers]:
    """The valid sets of answers the covering array is picked from."""
    options: list[list[Any]] = []
    for spec in specs.values():
        choice = values(spec)
        if spec.get("multiselect"):
            options.append(subsets(choice))
        else:
            options.append(choice)
    for picked in itertools.product(*options):
        answers = dict(zip(specs, picked, strict=True))
        if is_valid(answers, specs):
            yield answers


def required_pairs(specs: Mapping[str, Mapping[str, Any]]) -> set[tuple[Level, Level]]:
    """Every pair of answers that copier offers together in at least one project."""
    required: set[tuple[Level, Level]] = set()
    for answers in all_answers(specs):
        required |= pairs_of(levels_of(answers, specs))
    return required


def covering_array(specs: Mapping[str, Mapping[str, Any]]) -> list[Answers]:
    """Greedy: keep taking the valid answers that cover the most pairs not yet covered."""
    candidates = list(all_answers(specs))
    missing = required_pairs(specs)
    chosen: list[Answers] = []
    while missing:
        best = max(candidates, key=lambda a: len(pairs_of(levels_of(a, specs)) & missing))
        chosen.append(best)
        missing -= pairs_of(levels_of(best, specs))
    return chosen


def variant_name(answers: Answers) -> str:
    parts = [answers["framework"], answers["server"], answers["broker"]]
    parts.append("+".join(answers["protocols"]))
    if answers.get("deploy"):
        parts.append("+".join(answers["deploy"]))
    return "-".join(parts)


def python_versions() -> list[str]:
    with (ROOT / "copier.yml").open(encoding="utf-8") as file:
        return [str(version) for version in yaml.safe_load(file)["python_version"]["choices"]]


def main() -> None:
    specs = copier_questions()
    pythons = itertools.cycle(python_versions())
    # Python versions are not paired; each variant takes the next, so all are run.
    variants = {
        variant_name(answers): {**answers, "python_version": next(pythons)}
        for answers in covering_array(specs)
    }
    VARIANTS_FILE.write_text(json.dumps(variants, indent=2) + "\n", encoding="utf-8")
    print(f"{len(variants)} variants cover {len(required_pairs(specs))} pairs")


if __name__ == "__main__":
    main()
