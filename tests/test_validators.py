"""copier.yml's validators turn bad answers away with a message that says what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Render

SLUG_START = "must start with a lowercase letter."
SLUG_DASHES = "must not end with a dash or hold two dashes in a row."
PACKAGE_RESERVED = (
    "is a Python keyword or would shadow a module the project imports; choose another."
)

BAD_ANSWERS = [
    pytest.param("project_name", "", "The project name must not be empty.", id="empty-name"),
    pytest.param("project_name", "   ", "The project name must not be empty.", id="blank-name"),
    pytest.param("project_slug", "1abc", f"The project slug '1abc' {SLUG_START}", id="slug-digit"),
    pytest.param(
        "project_slug", "Has Space", f"The project slug 'Has Space' {SLUG_START}", id="slug-space"
    ),
    pytest.param(
        "project_slug",
        "has space",
        "The project slug 'has space' may hold only lowercase letters, digits and dashes.",
        id="slug-inner-space",
    ),
    pytest.param("project_slug", "a--b", f"The project slug 'a--b' {SLUG_DASHES}", id="slug-2dash"),
    pytest.param(
        "project_slug", "trailing-", f"The project slug 'trailing-' {SLUG_DASHES}", id="slug-end"
    ),
    pytest.param(
        "package_name", "class", f"The package name 'class' {PACKAGE_RESERVED}", id="pkg-keyword"
    ),
    pytest.param(
        "package_name", "asyncio", f"The package name 'asyncio' {PACKAGE_RESERVED}", id="pkg-shadow"
    ),
    pytest.param(
        "package_name",
        "litestar",
        f"The package name 'litestar' {PACKAGE_RESERVED}",
        id="pkg-shadow-framework",
    ),
    pytest.param(
        "package_name",
        "9x",
        "The package name '9x' must start with a lowercase letter.",
        id="pkg-digit",
    ),
    pytest.param(
        "package_name",
        "with-dash",
        "The package name 'with-dash' may hold only lowercase letters, digits and underscores.",
        id="pkg-dash",
    ),
    pytest.param(
        "author_email", "not-an-email", "'not-an-email' is not an email address.", id="email"
    ),
    pytest.param("protocols", [], "Choose at least one protocol.", id="no-protocol"),
]


@pytest.mark.parametrize(("question", "answer", "message"), BAD_ANSWERS)
def test_bad_answer_is_rejected(
    render_project: Render, tmp_path: Path, question: str, answer: object, message: str
) -> None:
    expected = f"Validation error for question '{question}': {message}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        render_project({question: answer})
    # No half-made project is left behind.
    assert not (tmp_path / "project").exists()
