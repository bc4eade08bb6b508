"""The exception tree's docstring is the tree: every class, under its parent, with the status it maps to."""

from __future__ import annotations

import inspect
import re

from salesflow import errors
from salesflow.api.errors import ERROR_DESCRIPTIONS, STATUS_BY_ERROR, status_for

ROW = re.compile(r"^(?P<indent>[│├└─ ]*)(?P<name>[A-Za-z]+)\s.*?(?:\((?P<status>\d{3})\b.*\))?$")
CLASSES = {
    name: cls
    for name, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.SalesflowError) and cls.__module__ == errors.__name__
}


def documented_tree() -> dict[str, tuple[str | None, int | None]]:
    """Each class the docstring names: (its parent, the status it gives)."""
    assert errors.__doc__ is not None
    lines = errors.__doc__.split("\n\n")[1].splitlines()
    tree: dict[str, tuple[str | None, int | None]] = {lines[0].strip(): (None, None)}
    parents = [lines[0].strip()]
    for line in lines[1:]:
        row = ROW.match(line)
        assert row is not None, line
        depth = len(row["indent"]) // 4 - 1  # a root's child is indented once
        parents[depth + 1 :] = [row["name"]]
        tree[row["name"]] = (parents[depth], int(row["status"]) if row["status"] else None)
    return tree


def test_the_docstring_names_every_class_under_its_parent() -> None:
    tree = documented_tree()
    assert sorted(tree) == sorted(CLASSES)
    for name, (parent, _) in tree.items():
        if parent is not None:
            assert CLASSES[name].__bases__ == (CLASSES[parent],), name


def test_the_docstring_gives_the_status_each_class_maps_to() -> None:
    for name, (_, status) in documented_tree().items():
        if status is not None:
            assert status_for(CLASSES[name]) == status, name


def test_every_mapped_status_is_described_in_the_openapi_document() -> None:
    # A 422 is documented in FastAPI's own validation shape (ValidationErrorBody), not by a description.
    assert set(STATUS_BY_ERROR.values()) - {422} <= set(ERROR_DESCRIPTIONS)
