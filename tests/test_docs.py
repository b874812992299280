"""The README documents every setting the code reads, and names none the code lacks."""

from __future__ import annotations

import re

from service.core.config import Settings
from tests.conftest import REPO


def test_every_setting_is_in_the_readme_and_every_documented_one_exists() -> None:
    text = (REPO / "README.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    fields = {f"PGENRM_{name.upper()}" for name in Settings.model_fields}
    documented = set(re.findall(r"`(PGENRM_[A-Z0-9_]+)`", section))
    short = {f"PGENRM{m}" for m in re.findall(r"`(_[A-Z0-9_]+)`", section)}  # `_MAX_HISTORY`
    assert fields - documented - short == set(), "settings missing from the README"
    assert (documented | short) - fields == set(), "README documents settings the code lacks"
