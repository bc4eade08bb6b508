"""Report jobs over HTTP: lifecycle, ownership, content equal to the analytics routes, the frontend's call."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import anyio
import duckdb
import httpx
import openpyxl
import pytest
from prometheus_client import REGISTRY
from pypdf import PdfReader

from salesflow.background import sweep_once
from salesflow.config import Settings
from salesflow.errors import NotFound
from salesflow.integration.java_demo import StandinState
from salesflow.integration.jwt import DEV_USER
from salesflow.jobs.runtime import GENERATE_REPORT
from salesflow.models.reports import JobOutcome, ReportRequest, ReportType
from salesflow.resources import open_resources
from salesflow.services.reports.pipeline import RETRY_AFTER_BUSY_SECONDS
from tests.builders import pinned_clock
from tests.servers import UvicornThread, wait_until

FORMULA_NAME = '=HYPERLINK("http://example.invalid","click")'


def finished(api: httpx.Client, job_id: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    """Poll the job until it is completed or failed (a deadline, no fixed sleep)."""
    state: dict[str, object] = {}

    def done() -> bool:
        state.update(api.get(f"/reports/jobs/{job_id}", headers=headers).json())
        return state["status"] in ("completed", "failed")

    wait_until(done, timeout=120, interval=0.1, what=f"report job {job_id}")
    return state


@pytest.fixture
def renamed_store(store_file: Path) -> Path:
    """The demo store with its best seller renamed to something a spreadsheet would run as a formula."""
    connection = duckdb.connect(str(store_file))
    top = connection.execute(
        "SELECT product_id FROM sale_items GROUP BY product_id ORDER BY SUM(subtotal) DESC LIMIT 1"
    ).fetchone()
    assert top is not None
    connection.execute("UPDATE products SET name = ? WHERE id = ?", [FORMULA_NAME, top[0]])
    connection.close()
    return store_file


@pytest.fixture
def api(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], renamed_store
) -> httpx.Client:
    return serve(make_settings(dev_mode=True, java_jwt_secret=None))


def test_a_job_goes_from_queued_to_a_downloadable_pdf(api: httpx.Client) -> None:
    accepted = api.post("/reports/jobs", json={"report_type": "sales", "format": "pdf", "period": "monthly"})
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "queued" and len(body["job_id"]) == 32
    assert body["status_url"] == f"/api/v1/reports/jobs/{body['job_id']}"
    state = finished(api, body["job_id"])
    assert state["status"] == "completed" and state["error"] is None and state["attempts"] == 1
    assert state["download_url"] == body["download_url"]
    download = api.get(body["download_url"].removeprefix("/api/v1"))
    assert download.status_code == 200 and download.headers["content-type"] == "application/pdf"
    assert 'filename="salesflow_sales_monthly_' in download.headers["content-disposition"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(download.content)).pages)
    sales = api.get("/analytics/sales", params={"period": "monthly"}).json()
    assert "Sales report" in text and "Month to date" in text
    assert f"{sales['kpis']['total_revenue']:,.2f}" in text  # the route's own number
    assert "Page 1 of" in text
    listed = api.get("/reports/jobs").json()
    assert listed["total"] == 1 and listed["data"][0]["job_id"] == body["job_id"]


def test_the_excel_report_is_typed_charted_and_formula_safe(api: httpx.Client) -> None:
    body = api.post(
        "/reports/jobs", json={"report_type": "combined", "format": "excel", "period": "monthly"}
    ).json()
    assert finished(api, body["job_id"])["status"] == "completed"
    content = api.get(body["download_url"].removeprefix("/api/v1")).content
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    assert {"Summary", "Daily", "Top products", "Critical products", "Forecast", "Anomalies"} <= set(
        workbook.sheetnames
    )
    daily = workbook["Daily"]
    assert daily.freeze_panes == "A2" and daily.auto_filter.ref
    assert daily["A2"].is_date and daily["B2"].number_format == "#,##0.00"
    sales = api.get("/analytics/sales", params={"period": "monthly"}).json()
    assert [round(row[1].value, 2) for row in daily.iter_rows(min_row=2)] == [
        d["total_revenue"] for d in sales["daily"]
    ]
    top = workbook["Top products"]
    names = [row[1] for row in top.iter_rows(min_row=2)]
    assert any(cell.value == FORMULA_NAME and cell.data_type == "s" for cell in names)  # text, not a formula
    charts = [n for n in zipfile.ZipFile(io.BytesIO(content)).namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) >= 4  # daily, weekday, status counts, forecast: native Excel charts


def test_the_frontends_generate_call_answers_the_file(api: httpx.Client) -> None:
    response = api.post(
        "/reports/generate", json={"payload": {"report_type": "stock", "format": "pdf", "period": "daily"}}
    )
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="salesflow_stock_daily_') and disposition.endswith(
        '.pdf"'
    )
    assert "filename*" not in disposition  # the frontend parses the plain form only


def test_a_bad_window_is_refused_at_submission(api: httpx.Client) -> None:
    response = api.post(
        "/reports/jobs",
        json={"report_type": "sales", "format": "pdf", "start_date": "2026-03-10", "end_date": "2026-03-01"},
    )
    assert response.status_code == 422
    assert api.get("/reports/jobs").json()["total"] == 0


def test_only_the_owner_or_an_admin_sees_a_job(
    serve: Callable[..., httpx.Client], prod_settings: Settings, tokens: dict[str, str]
) -> None:
    api = serve(prod_settings)
    user, admin = ({"Authorization": f"Bearer {tokens[r]}"} for r in ("USER", "ADMIN"))
    clerks = api.post("/reports/jobs", json={"report_type": "stock", "format": "excel"}, headers=user).json()
    admins = api.post("/reports/jobs", json={"report_type": "stock", "format": "excel"}, headers=admin).json()
    assert finished(api, clerks["job_id"], user)["status"] == "completed"
    assert finished(api, admins["job_id"], admin)["status"] == "completed"
    for path in (f"/reports/jobs/{admins['job_id']}", f"/reports/jobs/{admins['job_id']}/download"):
        assert api.get(path, headers=user).status_code == 404  # not the clerk's: as if it did not exist
    assert api.get(f"/reports/jobs/{clerks['job_id']}/download", headers=admin).status_code == 200
    assert [j["job_id"] for j in api.get("/reports/jobs", headers=user).json()["data"]] == [clerks["job_id"]]
    assert api.get("/reports/jobs", headers=admin).json()["total"] == 2
    assert api.get("/reports/jobs/" + "0" * 32, headers=admin).status_code == 404
    for crafted in ("../" + clerks["job_id"], clerks["job_id"] + "&x=1", "x" * 5000, "%00"):
        assert api.get(f"/reports/jobs/{crafted}", headers=admin).status_code == 404
    for query in ({"limit": 0}, {"limit": 10**9}, {"offset": -1}, {"limit": "NaN"}):
        assert api.get("/reports/jobs", params=query, headers=admin).status_code == 422


def test_a_job_that_cannot_get_its_data_fails_with_the_reason(
    serve: Callable[..., httpx.Client],
    prod_settings: Settings,
    tokens: dict[str, str],
    standin: tuple[UvicornThread, object],
) -> None:
    server, _ = standin
    api = serve(prod_settings)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    server.stop()  # Java down before anything was loaded
    counted = {"task": GENERATE_REPORT, "status": JobOutcome.FAILED}
    failed_before = REGISTRY.get_sample_value("salesflow_jobs_total", counted) or 0.0
    body = api.post("/reports/jobs", json={"report_type": "sales", "format": "pdf"}, headers=admin).json()
    state = finished(api, body["job_id"], admin)
    assert state["status"] == "failed" and "Java" in str(state["error"])
    # The API serves from this process: its metrics are these. The task ends just after the job is marked.
    wait_until(
        lambda: (REGISTRY.get_sample_value("salesflow_jobs_total", counted) or 0.0) > failed_before,
        timeout=30,
        what="the failed job counted as failed",
    )
    assert api.get(f"/reports/jobs/{body['job_id']}/download", headers=admin).status_code == 404
    # Waited for by the frontend's call: our failure (500) with the job's reason, never the caller's 422.
    waited = api.post("/reports/generate", json={"report_type": "sales", "format": "pdf"}, headers=admin)
    assert waited.status_code == 500 and "Java" in waited.json()["detail"]
    assert "/api/v1/reports/jobs/" in waited.json()["detail"]


def test_a_report_not_ready_in_time_says_where_to_follow_it(
    serve: Callable[..., httpx.Client],
    prod_settings: Settings,
    tokens: dict[str, str],
    standin: tuple[UvicornThread, StandinState],
) -> None:
    """`POST /reports/generate` waits `REPORT_WAIT_SECONDS`; past it, a 503 with Retry-After (our own wait,
    not a Java timeout) naming the job, which goes on."""
    _, java = standin
    api = serve(prod_settings.replaced(report_wait_seconds=0.05, job_shutdown_grace_seconds=0))
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    java.delay_seconds = 5.0  # the job is still reading from Java when the wait ends
    waited = api.post("/reports/generate", json={"report_type": "sales", "format": "pdf"}, headers=admin)
    java.delay_seconds = 0
    assert waited.status_code == 503 and waited.headers["retry-after"] == str(RETRY_AFTER_BUSY_SECONDS)
    job_path = waited.json()["detail"].rsplit("follow ", 1)[1]
    assert finished(api, job_path.rsplit("/", 1)[1], admin)["status"] == "completed"


async def test_files_past_retention_are_removed_by_the_sweep(
    make_settings: Callable[..., Settings], store_file
) -> None:
    now = [pinned_clock()]
    async with open_resources(
        make_settings(dev_mode=True, java_jwt_secret=None, report_retention_days=30), clock=lambda: now[0]
    ) as resources:
        user = DEV_USER
        job = await resources.reports.submit(ReportRequest(report_type=ReportType.STOCK), user=user)
        with anyio.fail_after(120):
            done = await resources.reports.wait(job.id)
        assert done.status == "completed"
        assert (await resources.reports.file(job.id, user=user)).path.exists()
        now[0] += timedelta(days=29)
        assert await sweep_once(resources) == (0, 0)
        now[0] += timedelta(days=2)
        assert await sweep_once(resources) == (0, 1)
        with pytest.raises(NotFound, match="retention"):
            await resources.reports.file(job.id, user=user)
        assert await resources.reports.jobs.files_expired(now[0], limit=10) == []  # read once, not each pass
        now[0] += timedelta(days=resources.settings.storage.retention_days)
        await sweep_once(resources)  # the row itself goes with the state retention
        assert await resources.reports.jobs.get(job.id) is None


async def test_jobs_cut_short_by_a_stop_run_once_at_the_next_start(
    make_settings: Callable[..., Settings], serve: Callable[..., httpx.Client], store_file
) -> None:
    """The embedded shape with no grace: jobs running or queued when the process stops are queued in the state
    database, their interrupted attempts not counted, and the next start runs each once."""
    settings = make_settings(dev_mode=True, java_jwt_secret=None, job_shutdown_grace_seconds=0.0)
    async with open_resources(settings, clock=pinned_clock) as resources:
        jobs = [
            await resources.reports.submit(ReportRequest(report_type=ReportType.COMBINED), user=DEV_USER)
            for _ in range(3)
        ]
    async with open_resources(settings, clock=pinned_clock) as resources:
        assert sorted(await resources.reports.jobs.queued()) == sorted(job.id for job in jobs)
        assert [(await resources.reports.jobs.get(job.id)).attempts for job in jobs] == [0, 0, 0]  # type: ignore[union-attr]
    api = serve(settings)
    states = [await anyio.to_thread.run_sync(finished, api, job.id) for job in jobs]
    assert [(s["status"], s["attempts"]) for s in states] == [("completed", 1)] * 3


def test_one_user_has_a_bounded_number_of_reports_waiting(
    serve: Callable[..., httpx.Client],
    prod_settings: Settings,
    tokens: dict[str, str],
    standin: tuple[UvicornThread, StandinState],
) -> None:
    """A burst of one user's report jobs waits behind that user's limit, not in front of everyone's."""
    _, java = standin
    api = serve(prod_settings.replaced(report_jobs_per_user=2, job_shutdown_grace_seconds=0))
    user = {"Authorization": f"Bearer {tokens['USER']}"}
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    java.delay_seconds = 10.0  # the jobs are still reading from Java while the next ones are asked for
    request = {"report_type": "sales", "format": "excel"}
    assert [api.post("/reports/jobs", json=request, headers=user).status_code for _ in range(2)] == [202, 202]
    third = api.post("/reports/jobs", json=request, headers=user)
    assert third.status_code == 429 and third.headers["retry-after"] == str(RETRY_AFTER_BUSY_SECONDS)
    assert "at most 2 at once" in third.json()["detail"]
    assert api.post("/reports/jobs", json=request, headers=admin).status_code == 202  # others go on
    assert api.get("/reports/jobs", headers=user).json()["total"] == 2
    java.delay_seconds = 0  # the reads held end now, not after their 10 s
