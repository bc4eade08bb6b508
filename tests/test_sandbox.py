"""The disposable process: whatever the work does to its process, the caller gets a clear error."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from salesflow.errors import InvalidInput, PayloadTooLarge
from salesflow.sandbox import Limits, Sandbox

LIMITS = Limits(memory_bytes=256 * 2**20, cpu_seconds=2, wall_seconds=20)


def spin() -> None:
    while True:
        pass


def nap() -> None:
    time.sleep(3600)


def hoard() -> bytes:
    return b"x" * (2 * 2**30)  # 2 GiB, over the 256 MiB allowed: a MemoryError in Python


def native_crash() -> None:
    os.abort()  # what a native reader does when an allocation fails


def null_pointer() -> None:
    ctypes.string_at(0)


class Panic(BaseException):
    """What pyo3 raises when a Rust reader panics: a BaseException, not an Exception."""


def panic_after_memory_error() -> None:
    try:
        raise MemoryError
    except MemoryError:
        raise Panic("PyObject pointer is null") from None


def panic_with_memory_exhausted() -> None:
    hold = bytearray(250 * 2**20)  # within the 256 MiB allowed, but nearly all of it
    raise Panic(f"PyObject pointer is null ({len(hold)})")


def panic() -> None:
    raise Panic("a bug in a native reader")


def refuse(value: str) -> None:
    raise InvalidInput("a named problem", field="file", row=7, value=value)


def fail() -> None:
    raise KeyError("a bug")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(preload=[__name__], concurrency=2)


async def test_a_result_comes_back(sandbox: Sandbox) -> None:
    assert await sandbox.run(LIMITS, divmod, 17, 5) == (3, 2)


async def test_cpu_time_is_limited(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput, match="2 s of CPU time"):
        await sandbox.run(LIMITS, spin)
    assert sandbox.kills[-1].reason == "cpu"


async def test_wall_time_is_limited(sandbox: Sandbox) -> None:
    limits = Limits(memory_bytes=LIMITS.memory_bytes, cpu_seconds=60, wall_seconds=1)
    with pytest.raises(InvalidInput, match="longer than the 1 s allowed"):
        await sandbox.run(limits, nap)
    assert sandbox.kills[-1].reason == "wall"


@pytest.mark.parametrize(
    "work", [hoard, native_crash, null_pointer, panic_after_memory_error, panic_with_memory_exhausted]
)
async def test_memory_blow_ups_and_native_crashes_cost_the_child_only(sandbox: Sandbox, work) -> None:
    with pytest.raises(PayloadTooLarge, match="256 MiB"):
        await sandbox.run(LIMITS, work)
    assert await sandbox.run(LIMITS, divmod, 7, 2) == (3, 1)  # the next call gets a fresh child


async def test_our_errors_keep_their_field_row_and_value(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput) as raised:
        await sandbox.run(LIMITS, refuse, "abc")
    assert (raised.value.detail, raised.value.field, raised.value.row, raised.value.value) == (
        "a named problem",
        "file",
        7,
        "abc",
    )


@pytest.mark.parametrize(("work", "name"), [(fail, "KeyError"), (panic, "Panic")])
async def test_an_unexpected_exception_is_a_clear_422_without_its_text(
    sandbox: Sandbox, work, name: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"cannot be read \({name}\)") as raised:
        await sandbox.run(LIMITS, work)
    assert "a bug" not in raised.value.detail
