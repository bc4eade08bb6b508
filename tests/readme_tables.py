"""The README's generated tables (each between `<!-- generated: NAME -->` and `<!-- end: NAME -->`) and
`.env.example`, written from the code:

    .venv/bin/python -m tests.readme_tables        # rewrite them
`tests/test_readme_tables.py` fails while either differs from what this writes.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from salesflow.background import BACKGROUND, ProcessKind
from salesflow.config import sections

README = Path(__file__).parents[1] / "README.md"
ENV_EXAMPLE = Path(__file__).parents[1] / ".env.example"
ENV_EXAMPLE_HEAD = """\
# Copy to .env and adjust. Every setting with its default (generated from src/salesflow/config.py by
# `.venv/bin/python -m tests.readme_tables`); environment variables override .env. Quote values with
# leading or trailing spaces: the JWT secret is used byte-for-byte.
"""


def background_table() -> str:
    rows = ["| Background work | API (`serve`) | `worker` | Switched on by |", "| --- | --- | --- | --- |"]
    for entry in BACKGROUND:
        marks = ["yes" if kind in entry.runs_in else "—" for kind in ProcessKind]
        switch = f"`{entry.switch}`" if entry.switch else "always"
        rows.append(f"| {entry.name} | {' | '.join(marks)} | {switch} |")
    return "\n".join(rows)


def _default(field: FieldInfo) -> Any:
    return field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]


def env_value(value: Any) -> str:
    """A default as the environment would spell it (`None`: unset)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(env_value(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{env_value(key)}={env_value(item)}" for key, item in value.items())
    return str(value)


def settings_table() -> str:
    parts = []
    for title, fields in sections():
        rows = [f"#### {title}", "", "| Setting | Default | Meaning |", "| --- | --- | --- |"]
        for name, field in fields.items():
            value = _default(field)
            shown = f"`{env_value(value)}`" if value not in (None, [], {}) else "—"
            rows.append(f"| `{name}` | {shown} | {field.description} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def env_example() -> str:
    lines = [ENV_EXAMPLE_HEAD.rstrip("\n")]
    for title, fields in sections():
        lines += ["", f"# --- {title} ---"]
        for name, field in fields.items():
            lines += textwrap.wrap(str(field.description), 108, initial_indent="# ", subsequent_indent="# ")
            value = _default(field)
            spelled = env_value(value)
            if value is None:
                lines.append(f"# {name}=")
            else:
                lines.append(f'{name}="{spelled}"' if " " in spelled else f"{name}={spelled}")
    return "\n".join(lines) + "\n"


TABLES: dict[str, Callable[[], str]] = {"background": background_table, "settings": settings_table}


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
    ENV_EXAMPLE.write_text(env_example())
