"""`docs/architecture.md` names every package, top-level module and state table of the tree."""

from __future__ import annotations

from pathlib import Path

from salesflow.state.tables import Base

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "salesflow"


def test_the_architecture_page_names_every_part_of_the_tree() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    parts = [f"`{p.name}/`" for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    parts += [f"`{p.name}`" for p in SRC.glob("*.py") if p.name != "__init__.py"]
    assert [part for part in sorted(parts) if part not in page] == []


def test_the_architecture_page_names_every_state_table() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert [table for table in sorted(Base.metadata.tables) if f"`{table}`" not in page] == []
