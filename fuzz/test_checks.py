"""The properties' own checks."""

from __future__ import annotations

import pytest

from .checks import valid_json


def test_valid_json_helper_refuses_what_no_client_reads() -> None:
    """The properties' own JSON check refuses what the server must never send."""
    for text in ("NaN", "Infinity", "1e999", '"\\ud800"', "[1,]", "\ufeff1"):
        with pytest.raises(AssertionError):
            valid_json(text, "text")
    assert valid_json('{"a":[1,2.5,"\\u2028"]}', "text") == {"a": [1, 2.5, "\u2028"]}
