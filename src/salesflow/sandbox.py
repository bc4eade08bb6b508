"""Disposable processes for untrusted input: a native crash, a memory blow-up or a slow file costs that
process only, never the server.

Each call forks a fresh child from a forkserver that has already imported the work's modules (a few
milliseconds instead of a second of imports), sets its limits (address space above what the child already
maps, CPU seconds, no core dump), runs one function and sends back its result. The parent waits in a worker
thread with a wall-clock deadline and kills the child past it; a cancelled request kills it too.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import resource
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import anyio

from salesflow.errors import InvalidInput, PayloadTooLarge, SalesflowError
from salesflow.metrics import UPLOAD_PARSER_KILLS

logger = logging.getLogger(__name__)

# Signals of a child stopped by its limits: SIGXCPU/SIGKILL for CPU time, SIGABRT/SIGSEGV/SIGBUS when a
# native library cannot get memory (Rust and C++ abort on a failed allocation instead of raising).
_CPU_SIGNALS = {signal.SIGXCPU}
_MEMORY_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS}
_MEMORY_EXIT = 86  # the child's exit code after a MemoryError (Python's own, anywhere in the child)


@dataclass(frozen=True)
class Limits:
    """What one child may use; `memory_bytes` is on top of what the forked child already maps."""

    memory_bytes: int
    cpu_seconds: int
    wall_seconds: float
    what: str = "the file"  # how error messages name the input

    @property
    def memory_mib(self) -> int:
        return self.memory_bytes // 2**20


@dataclass
class Killed:
    """How a child ended without a result (exposed for metrics and logs)."""

    reason: str  # memory | cpu | wall | crash
    exitcode: int | None


class Sandbox:
    """Runs functions in disposable child processes, at most `concurrency` at once."""

    def __init__(self, *, preload: list[str], concurrency: int = 2) -> None:
        self._context = multiprocessing.get_context("forkserver")
        # "__main__" too: otherwise every child re-runs the main script to rebuild its module.
        self._context.set_forkserver_preload(["__main__", *preload])
        self._limiter = anyio.CapacityLimiter(concurrency)
        self.kills: list[Killed] = []

    async def start(self) -> None:
        """Start the forkserver (it imports the work's modules: seconds of CPU) before the first upload."""
        await anyio.to_thread.run_sync(multiprocessing.forkserver.ensure_running)

    async def run(self, limits: Limits, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in a child; its SalesflowErrors are raised here, its limits become 413/422."""
        async with self._limiter:
            receiver, sender = self._context.Pipe(duplex=False)
            child = self._context.Process(
                target=_child_main, args=(sender, limits, function, args), daemon=True
            )
            try:
                await anyio.to_thread.run_sync(child.start)
                sender.close()  # the child holds the only writing end: its death ends our read
                outcome = await anyio.to_thread.run_sync(
                    _wait_for_result, child, receiver, limits.wall_seconds, abandon_on_cancel=True
                )
            finally:
                if child.is_alive():
                    child.kill()
                receiver.close()
            await anyio.to_thread.run_sync(child.join, 5)
        return self._result(outcome, child.exitcode, limits)

    def _result(self, outcome: tuple[str, Any] | None, exitcode: int | None, limits: Limits) -> Any:
        if outcome is not None:
            kind, value = outcome
            if kind == "ok":
                return value
            if kind == "error":
                raise _rebuild_error(value)
            if kind == "wall":
                return self._killed(kind, exitcode, limits)
            error_type, trace = value
            logger.warning("sandboxed work failed", extra={"traceback": trace})
            raise InvalidInput(f"{limits.what} cannot be read ({error_type})", field="file")
        if exitcode is None:
            return self._killed("crash", exitcode, limits)
        signal_number = -exitcode if exitcode < 0 else 0
        if signal_number in _CPU_SIGNALS or signal_number == signal.SIGKILL:
            return self._killed("cpu", exitcode, limits)
        if signal_number in _MEMORY_SIGNALS or exitcode == _MEMORY_EXIT:
            return self._killed("memory", exitcode, limits)
        return self._killed("crash", exitcode, limits)

    def _killed(self, reason: str, exitcode: int | None, limits: Limits) -> Any:
        self.kills.append(Killed(reason, exitcode))
        UPLOAD_PARSER_KILLS.labels(reason).inc()
        logger.warning("sandboxed work stopped", extra={"reason": reason, "exitcode": exitcode})
        if reason == "memory":
            raise PayloadTooLarge(
                f"{limits.what} needs more than the {limits.memory_mib} MiB of memory allowed to read one"
                " upload (a sheet of huge extent, or very long texts repeated in many cells?)"
            )
        if reason == "cpu":
            raise InvalidInput(
                f"reading {limits.what} took more than the {limits.cpu_seconds} s of CPU time allowed",
                field="file",
            )
        if reason == "wall":
            raise InvalidInput(
                f"reading {limits.what} took longer than the {limits.wall_seconds:g} s allowed", field="file"
            )
        raise InvalidInput(f"the reader stopped on {limits.what} (exit code {exitcode})", field="file")


def _wait_for_result(child: Any, receiver: Connection, wall_seconds: float) -> tuple[str, Any] | None:
    """The child's message; None when it died without one; ("wall", None) when it ran out of time."""
    try:
        if receiver.poll(wall_seconds):
            message: tuple[str, Any] = receiver.recv()
            return message
    except (EOFError, OSError, pickle.UnpicklingError):  # died without a whole message
        return None
    child.kill()
    return ("wall", None)


def _child_main(
    sender: Connection, limits: Limits, function: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    try:
        address_space = _apply_limits(limits)
        try:
            message: tuple[str, Any] = ("ok", function(*args))
        except SalesflowError as exc:
            message = ("error", _describe_error(exc))
        except BaseException as exc:  # a native panic (pyo3's PanicException) is not an Exception
            # A reader that could not allocate may panic without a MemoryError in sight: then the address
            # space it reached tells.
            near_limit = _status_kib("VmPeak") * 1024 > address_space - limits.memory_bytes // 10
            if _out_of_memory(exc) or near_limit:
                os._exit(_MEMORY_EXIT)
            message = ("failed", (type(exc).__name__, traceback.format_exc(limit=8)))
        sender.send(message)  # pickling a large result can run out of memory too
    except MemoryError:
        os._exit(_MEMORY_EXIT)
    sender.close()


def _out_of_memory(exc: BaseException | None) -> bool:
    """Whether `exc` is, or was raised while handling, a MemoryError."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MemoryError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _apply_limits(limits: Limits) -> int:
    # A native reader that cannot allocate prints a page of backtrace before it aborts: the parent logs
    # the outcome instead, so the child's stderr goes nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    address_space = _status_kib("VmSize") * 1024 + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return address_space


def _status_kib(field: str) -> int:
    """A `/proc/self/status` figure (VmSize: mapped now; VmPeak: the most ever mapped), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _describe_error(exc: SalesflowError) -> dict[str, Any]:
    fields = {"field": None, "row": None, "value": None, **getattr(exc, "__dict__", {})}
    value = fields["value"]
    if not (value is None or isinstance(value, str | int | float | bool)):
        value = str(value)
    return {
        "type": type(exc).__name__,
        "detail": exc.detail,
        "field": fields["field"],
        "row": fields["row"],
        "value": value,
    }


def _rebuild_error(described: dict[str, Any]) -> SalesflowError:
    if described["type"] == PayloadTooLarge.__name__:
        return PayloadTooLarge(described["detail"])
    return InvalidInput(
        described["detail"], field=described["field"], row=described["row"], value=described["value"]
    )
