"""Hostile uploads over HTTP: each gets a clear answer while `/health` keeps answering, and the server is
healthy after. The files are built by tests/hostile.py; the parser runs under small limits here."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.config import Settings
from salesflow.errors import InvalidInput, PayloadTooLarge
from salesflow.sandbox import Limits, Sandbox
from salesflow.services.excel_import.parsing import MAX_LISTED_ISSUES
from salesflow.services.excel_import.reading import Table, read_table
from tests import hostile
from tests.servers import late_loop_ticks

# Health answers from the same event loop as the upload; on this shared machine allow for scheduling noise.
HEALTH_BOUND_S = 1.0
PARSER_LIMITS = {"import_parser_memory_mb": 384, "import_parser_cpu_seconds": 20}


@pytest.fixture
def api(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], store_file
) -> httpx.Client:
    return serve(make_settings(dev_mode=True, java_jwt_secret=None, **PARSER_LIMITS))


@pytest.fixture
def sku(api: httpx.Client) -> str:
    top = api.get("/analytics/sales", params={"period": "quarterly"}).json()["kpis"]["top_products"]
    return str(top[0]["sku"])


def upload_while_polling_health(api: httpx.Client, content: bytes) -> tuple[httpx.Response, float, float]:
    """The preview's response, its duration and the slowest `/health` answer while it ran."""
    done = threading.Event()
    slowest = [0.0]

    def poll() -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=30, trust_env=False) as health:
            while not done.is_set():
                started = time.perf_counter()
                assert health.get("/health").status_code == 200
                slowest[0] = max(slowest[0], time.perf_counter() - started)
                done.wait(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    started = time.perf_counter()
    try:
        response = api.post(
            "/excel/preview", files={"file": ("upload.xlsx", content, "application/octet-stream")}
        )
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        poller.join()
    return response, elapsed, slowest[0]


def detail_of(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    if "detail" in body:
        return str(body["detail"])
    return " | ".join(e["reason"] for e in body["errors"])


@pytest.mark.parametrize("index", range(len(hostile.corpus("X"))), ids=[h.name for h in hostile.corpus("X")])
def test_hostile_file_gets_a_clear_answer_and_the_server_stays_healthy(
    api: httpx.Client, sku: str, index: int
) -> None:
    case = hostile.corpus(sku)[index]
    late_before = late_loop_ticks()
    response, elapsed, slowest_health = upload_while_polling_health(api, case.content)
    assert late_loop_ticks() == late_before  # no event loop stalled a second or more meanwhile
    assert response.status_code == case.status, response.text
    assert case.says in detail_of(response)
    assert elapsed < 30  # within the parser's limits, never the minutes it once took
    assert slowest_health < HEALTH_BOUND_S
    assert api.get("/health").status_code == 200


def test_a_memory_blow_up_at_the_default_limit_is_a_413(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], store_file
) -> None:
    """With 1 GiB allowed the reader fails differently (a native panic instead of an abort): still a 413."""
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None))
    response, _, slowest_health = upload_while_polling_health(api, hostile.repeated_long_texts())
    assert response.status_code == 413 and "1024 MiB" in response.json()["detail"]
    assert slowest_health < HEALTH_BOUND_S


def test_numbers_out_of_range_are_errors_naming_row_and_value(api: httpx.Client, sku: str) -> None:
    response, _, _ = upload_while_polling_health(api, hostile.overflowing_quantities(sku))
    body = response.json()
    assert body["valid_rows"] == 0
    by_row = {e["row"]: e for e in body["errors"]}
    assert sorted(by_row) == list(range(2, 2 + len(hostile.OVERFLOWING_QUANTITIES)))
    assert [by_row[r]["value"] for r in sorted(by_row)] == hostile.OVERFLOWING_QUANTITIES
    assert "at most 1,000,000" in by_row[2]["reason"] and "not a number" in by_row[7]["reason"]


def test_unknown_products_get_hints_for_the_first_ones_only(api: httpx.Client) -> None:
    body = api.post(
        "/excel/preview", files={"file": ("u.csv", hostile.unknown_products(300), "text/csv")}
    ).json()
    reasons = [e["reason"] for e in body["errors"]]
    assert len(reasons) == MAX_LISTED_ISSUES and all(r.startswith("unknown product 'NOPE-") for r in reasons)
    assert body["error_rows"] == 300 and body["error_counts"] == {"product not in the catalogue": 300}
    assert sum("closest:" in r for r in reasons) <= 50


def test_many_bad_rows_are_counted_per_rule_and_the_first_listed(api: httpx.Client) -> None:
    """The answer and the stored record stay small however many rows are bad; the counts lose nothing."""
    rows = 20_000
    response = api.post(
        "/excel/preview", files={"file": ("bad.csv", hostile.rows_breaking_every_rule(rows), "text/csv")}
    )
    body = response.json()
    assert response.status_code == 200 and len(response.content) < 100_000
    assert body["total_rows"] == rows and body["error_rows"] == rows and body["valid_rows"] == 0
    assert set(body["error_counts"].values()) == {rows} and len(body["error_counts"]) == 3
    listed = [e["row"] for e in body["errors"]]
    assert len(listed) == MAX_LISTED_ISSUES and listed == sorted(listed) and listed[0] == 2
    assert max(listed) < 2 + MAX_LISTED_ISSUES  # the first rows, all their issues
    state = api.get(f"/excel/imports/{body['import_id']}")
    assert state.status_code == 200 and state.json()["error_rows"] == rows
    listing = api.get("/excel/imports")
    assert listing.status_code == 200 and len(listing.content) < 20_000


def test_bare_cr_rows_are_read(api: httpx.Client, sku: str) -> None:
    body = api.post("/excel/preview", files={"file": ("mac.csv", hostile.bare_cr(sku), "text/csv")}).json()
    assert (body["total_rows"], body["valid_rows"]) == (2, 2)
    assert [row["quantity"] for row in body["preview"]] == [2, 3]


def test_a_crafted_id_cannot_read_the_rows_blob(api: httpx.Client, sku: str) -> None:
    body = api.post("/excel/preview", files={"file": ("ok.csv", hostile.bare_cr(sku), "text/csv")}).json()
    for crafted in (f"{body['import_id']}&part=rows", "../" + body["import_id"], "x" * 5000):
        assert api.get(f"/excel/imports/{crafted}").status_code == 404


# --- fuzzing the readers: any bytes give a table or a clear refusal, never anything else ---

SANDBOX = Sandbox(preload=[read_table.__module__], concurrency=1)
FUZZ_LIMITS = Limits(memory_bytes=256 * 2**20, cpu_seconds=10, wall_seconds=30)


def _readable_or_refused(content: bytes) -> Table | None:
    try:
        return read_table(content, max_rows=1000)
    except (InvalidInput, PayloadTooLarge):
        return None


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12), max_size=6),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_csv_reader_never_fails_unexpectedly(rows: list[list[str]], delimiter: str, newline: str) -> None:
    text = newline.join(delimiter.join(cells) for cells in rows)
    _readable_or_refused(text.encode("utf-8"))


def _template() -> bytes:
    return hostile.raw_xlsx(
        '<row r="2"><c r="A2"><v>46000</v></c><c r="B2" t="s"><v>5</v></c></row>', strings=["S"]
    )


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_xlsx_reader_on_mutated_files_answers_cleanly_in_the_sandbox(data: st.DataObject) -> None:
    """Mutated workbooks go through the sandbox, as uploads do: a native abort costs the child only."""
    content = bytearray(_template())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(content) - 1))
        content[position] = data.draw(st.integers(0, 255))
    # A refusal with a reason, or a child stopped by its limits: both are clean answers.
    with contextlib.suppress(InvalidInput, PayloadTooLarge):
        anyio.run(SANDBOX.run, FUZZ_LIMITS, _readable_or_refused, bytes(content))


def test_the_fuzzed_template_itself_is_read() -> None:
    table = read_table(_template())
    assert table.kind == "xlsx" and table.rows[0] == hostile.HEADERS and table.rows[1][1] == "S"
