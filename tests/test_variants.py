"""The variants that run in full cover every pair of answers copier offers together."""

from __future__ import annotations

import json

from tests.variants import (
    VARIANTS_FILE,
    copier_questions,
    is_valid,
    levels_of,
    pairs_of,
    required_pairs,
    variant_name,
)


def test_every_pair_of_answers_runs_in_a_fully_tested_variant() -> None:
    specs = copier_questions()
    variants = json.loads(VARIANTS_FILE.read_text(encoding="utf-8"))
    covered = set().union(*(pairs_of(levels_of(answers, specs)) for answers in variants.values()))
    missing = required_pairs(specs) - covered
    assert not missing, (
        f"{len(missing)} pairs of answers run in no variant, e.g. {sorted(missing)[:5]}; "
        "rewrite tests/variants.json with `python -m tests.variants`"
    )


def test_every_variant_is_one_copier_offers() -> None:
    specs = copier_questions()
    variants = json.loads(VARIANTS_FILE.read_text(encoding="utf-8"))
    for name, answers in variants.items():
        assert is_valid(answers, specs), f"{name}: copier would not offer these answers"
        assert name == variant_name(answers)
