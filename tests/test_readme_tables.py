"""The README's tables of settings and background work are the code's, not a copy that drifts."""

from __future__ import annotations

import pytest

from salesflow.background import BACKGROUND
from salesflow.config import sections
from tests.readme_tables import README, TABLES, current


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_readme_table_is_generated_from_the_code(name: str) -> None:
    assert current(README.read_text(), name) == TABLES[name](), (
        "run `.venv/bin/python -m tests.readme_tables`"
    )


def test_every_background_switch_is_a_boolean_setting() -> None:
    fields = {name: field for _, group in sections() for name, field in group.items()}
    for entry in BACKGROUND:
        if entry.switch is not None:
            assert fields[entry.switch].annotation is bool, entry.name
