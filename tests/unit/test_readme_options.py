"""The README's options table is the one the settings module generates, and it covers every option."""
from __future__ import annotations

import re

from dashboard.settings import OPTION_DOCS, build_parser, options_table
from helpers import REPO_ROOT


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert options_table() in readme, "the README's options table differs from ./dashboard.sh options: paste it again"


def test_every_option_has_a_row_and_every_row_an_option() -> None:
    rows = {flag for flags, _, _ in OPTION_DOCS for flag in re.findall(r"`(--[a-z0-9-]+)", flags)}
    flags = {option for action in build_parser()._actions for option in action.option_strings
             if option.startswith("--") and option != "--help"}
    assert not sorted(flags - rows), f"options without a row in settings.OPTION_DOCS: {sorted(flags - rows)}"
    assert not sorted(rows - flags), f"rows for options that do not exist: {sorted(rows - flags)}"
