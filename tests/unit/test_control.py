"""Which task arguments are known exactly enough to retry a task with (pure)."""
from __future__ import annotations

import pytest

from dashboard.control import NotExact, exact_call


@pytest.mark.parametrize("args, kwargs, expected", [
    ("(1, 2)", "{}", ([1, 2], {})),
    ("[1, 'a', None, True, 2.5]", "{'x': [1, {'y': 'z'}]}", ([1, "a", None, True, 2.5], {"x": [1, {"y": "z"}]})),
    ("()", "{}", ([], {})),
    ("('cus_000123', 42)", "{'currency': 'EUR'}", (["cus_000123", 42], {"currency": "EUR"})),
])
def test_plain_literals_are_exact(args: str, kwargs: str, expected: tuple) -> None:
    assert exact_call(args, kwargs) == expected


@pytest.mark.parametrize("args, kwargs, reason", [
    ("(1, ...)", "{}", "cut by the worker"),
    ("('abc…[truncated 500 chars]',)", "{}", "cut to --max-field-chars"),
    ("(<object at 0x7f>,)", "{}", "not Python literals"),
    ("(b'raw',)", "{}", "bytes, which JSON cannot carry"),
    ("({1, 2},)", "{}", "set, which JSON cannot carry"),
    ("(float('nan'),)", "{}", "not Python literals"),
    ("(1,)", "{1: 'x'}", "key that is not a string"),
    ("1", "{}", "not a list"),
    ("(1,)", "[]", "not a dict"),
    (None, "{}", "unknown"),
    ("__import__('os').system('id')", "{}", "not Python literals"),
    ("('" + "x" * 1018 + "...',)", "{}", "1,024"),
])
def test_anything_else_says_why(args: str | None, kwargs: str, reason: str) -> None:
    with pytest.raises(NotExact, match=reason.replace("(", r"\(")):
        exact_call(args, kwargs)
