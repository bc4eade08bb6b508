"""The README's generated tables: each between `<!-- generated: NAME -->` and `<!-- end: NAME -->`.

    .venv/bin/python -m tests.readme_tables        # rewrite them from the code
`tests/test_readme_tables.py` fails while the README differs from what this writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from salesflow.background import BACKGROUND, ProcessKind

README = Path(__file__).parents[1] / "README.md"


def background_table() -> str:
    rows = ["| Background work | API (`serve`) | `worker` | Switched on by |", "| --- | --- | --- | --- |"]
    for entry in BACKGROUND:
        marks = ["yes" if kind in entry.runs_in else "—" for kind in ProcessKind]
        switch = f"`{entry.switch.upper()}`" if entry.switch else "always"
        rows.append(f"| {entry.name} | {' | '.join(marks)} | {switch} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[], str]] = {"background": background_table}


def _section(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name} -->\n)(.*?)(<!-- end: {name} -->)", re.DOTALL)


def current(readme: str, name: str) -> str | None:
    found = _section(name).search(readme)
    return found.group(2).removesuffix("\n") if found else None


def regenerate(readme: str) -> str:
    for name, table in TABLES.items():
        found = _section(name).search(readme)
        if found is not None:
            readme = readme[: found.start(2)] + table() + "\n" + readme[found.end(2) :]
    return readme


if __name__ == "__main__":
    README.write_text(regenerate(README.read_text()))
