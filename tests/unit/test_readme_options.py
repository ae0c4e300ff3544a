"""Every command-line option of the settings module has its row in the README's options table."""
from __future__ import annotations

import re

from dashboard.settings import build_parser
from helpers import REPO_ROOT


def test_every_option_is_in_the_readme_table() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    rows = {flag for line in readme.splitlines() if line.startswith("| `--")
            for flag in re.findall(r"`(--[a-z0-9-]+)", line.split("|")[1])}
    flags = {option for action in build_parser()._actions for option in action.option_strings
             if option.startswith("--") and option != "--help"}
    missing = sorted(flags - rows)
    assert not missing, f"options without a row in the README's options table: {missing}"
    unknown = sorted(rows - flags)
    assert not unknown, f"README rows for options that do not exist: {unknown}"
