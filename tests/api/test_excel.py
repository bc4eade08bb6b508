"""Excel import over HTTP: real files in, every problem named, nothing lost or imported twice."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import datetime

import httpx
import openpyxl
import pytest

from salesflow.config import Settings
from tests.servers import RedisProcess

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx(rows: list[list[object]], *, title_rows: int = 0, sheet: str = "Sales") -> bytes:
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = sheet
    for i in range(title_rows):
        ws.append([f"Shop export, page {i + 1}"])
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def skus(dev_api: httpx.Client) -> list[str]:
    rows = dev_api.get("/analytics/sales", params={"period": "quarterly"}).json()["kpis"]["top_products"]
    return [row["sku"] for row in rows]


def preview(api: httpx.Client, content: bytes, name: str = "sales.xlsx", **form: str) -> httpx.Response:
    return api.post("/excel/preview", files={"file": (name, content, XLSX)}, data=form)


def test_title_rows_french_headers_and_real_dates(dev_api: httpx.Client, skus: list[str]) -> None:
    content = xlsx(
        [
            ["Date de vente", "Référence", "Quantité", "Prix unitaire", "Remarque"],
            [datetime(2026, 3, 14, 10, 30), skus[0], 2, 1.25, "ok"],
            [datetime(2026, 3, 14), skus[1], 3, None, ""],
        ],
        title_rows=2,
    )
    response = preview(dev_api, content)
    body = response.json()
    assert response.status_code == 200, body
    assert body["total_rows"] == 2 and body["valid_rows"] == 2 and body["errors"] == []
    assert body["mapping"] == {
        "date": "Date de vente",
        "sku": "Référence",
        "quantity": "Quantité",
        "unit_price": "Prix unitaire",
    }
    assert body["ignored_columns"] == ["Remarque"]
    assert body["preview"][0]["date"] == "2026-03-14T10:30:00" and body["preview"][0]["unit_price"] == 1.25


def test_every_problem_is_named_with_its_spreadsheet_row(dev_api: httpx.Client, skus: list[str]) -> None:
    content = xlsx(
        [
            ["Date", "SKU", "Qty", "Price"],
            [datetime(2026, 3, 1), skus[0], 1.5, 2.0],
            [datetime(2026, 3, 1), skus[0], -2, 2.0],
            [datetime(2026, 3, 1), skus[0][:-1] + "X", 1, 2.0],
            [datetime(2026, 3, 1), skus[0], "abc", 2.0],
            [datetime(2026, 3, 1), skus[1], 1, 2.0],
        ]
    )
    body = preview(dev_api, content).json()
    errors = {(e["row"], e["column"]): e for e in body["errors"]}
    assert set(errors) == {(2, "Qty"), (3, "Qty"), (4, "SKU"), (5, "Qty")}
    assert "whole number" in errors[(2, "Qty")]["reason"] and errors[(2, "Qty")]["value"] == 1.5
    assert "negative quantity" in errors[(3, "Qty")]["reason"]
    assert "unknown product" in errors[(4, "SKU")]["reason"] and "closest" in errors[(4, "SKU")]["reason"]
    assert body["valid_rows"] == 1 and body["error_rows"] == 4


@pytest.mark.parametrize(
    ("encoding", "delimiter", "decimal"),
    [("utf-8", ",", "."), ("utf-8-sig", ";", ","), ("cp1252", "\t", ","), ("cp1252", ";", ",")],
)
def test_csv_in_each_encoding_and_delimiter(
    dev_api: httpx.Client, skus: list[str], encoding: str, delimiter: str, decimal: str
) -> None:
    price = f"1{decimal}50"
    text = f"Produit référence{delimiter}Quantité{delimiter}Prix\n{skus[0]}{delimiter}2{delimiter}{price}\n"
    text = text.replace("Produit référence", "Référence")
    body = preview(dev_api, text.encode(encoding), name="sales.csv").json()
    assert body["valid_rows"] == 1, body
    assert body["preview"][0]["unit_price"] == 1.5 and body["preview"][0]["quantity"] == 2


def test_ambiguous_text_dates_are_flagged_not_guessed(dev_api: httpx.Client, skus: list[str]) -> None:
    text = f"date,sku,qty\n03/04/2026,{skus[0]},1\n05/06/2026,{skus[0]},1\n".encode()
    body = preview(dev_api, text, name="s.csv").json()
    assert body["valid_rows"] == 0
    assert all("ambiguous date" in e["reason"] for e in body["errors"])
    fixed = preview(dev_api, text, name="s.csv", date_format="DD/MM/YYYY").json()
    assert fixed["valid_rows"] == 2 and fixed["preview"][0]["date"] == "2026-04-03T00:00:00"
    telling = f"date,sku,qty\n25/04/2026,{skus[0]},1\n05/06/2026,{skus[0]},1\n".encode()
    assert preview(dev_api, telling, name="s.csv").json()["preview"][1]["date"] == "2026-06-05T00:00:00"


def test_mixed_real_and_text_dates_warn(dev_api: httpx.Client, skus: list[str]) -> None:
    content = xlsx([["Date", "SKU", "Qty"], [datetime(2026, 3, 1), skus[0], 1], ["2026-03-02", skus[0], 1]])
    body = preview(dev_api, content).json()
    assert any("mixes real dates" in w["reason"] for w in body["warnings"])


def test_mapping_override_wins(dev_api: httpx.Client, skus: list[str]) -> None:
    content = xlsx([["When", "Item", "How many"], [datetime(2026, 3, 1), skus[0], 4]])
    assert preview(dev_api, content).status_code == 422
    body = preview(dev_api, content, mapping='{"date": "When", "sku": "Item", "quantity": "How many"}').json()
    assert body["valid_rows"] == 1 and body["preview"][0]["quantity"] == 4


@pytest.mark.parametrize(
    ("content", "name", "status", "fragment"),
    [
        (b"", "empty.csv", 422, "the file is empty"),
        (b"%PDF-1.4\x00\x01binary", "sales.xlsx", 422, "neither a spreadsheet nor CSV"),
        (b"PK\x03\x04not really a zip", "sales.xlsx", 422, "damaged zip"),
    ],
)
def test_bad_files_get_a_clear_4xx(
    dev_api: httpx.Client, content: bytes, name: str, status: int, fragment: str
) -> None:
    response = preview(dev_api, content, name=name)
    assert response.status_code == status
    assert fragment in str(response.json()["detail"])


def test_decompression_bomb_is_refused(dev_api: httpx.Client) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (210 * 1024 * 1024))
    response = preview(dev_api, buffer.getvalue())
    assert response.status_code == 422 and "decompression bomb" in str(response.json()["detail"])


def test_oversize_upload_is_413(
    serve: Callable[..., httpx.Client], make_settings: Callable[..., Settings], store_file
) -> None:
    api = serve(make_settings(dev_mode=True, java_jwt_secret=None, import_max_bytes=2048))
    response = preview(api, b"sku,qty\n" + b"X,1\n" * 2000, name="big.csv")  # under the streaming slack
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    streamed = preview(api, b"sku,qty\n" + b"X,1\n" * 40_000, name="huge.csv")  # refused while arriving
    assert streamed.status_code == 413 and "larger than" in streamed.json()["detail"]


def test_commit_writes_with_own_dates_and_prices_once(dev_api: httpx.Client, skus: list[str]) -> None:
    content = xlsx(
        [
            ["Date", "SKU", "Qty", "Price", "Invoice"],
            [datetime(2026, 1, 10, 9), skus[0], 2, 100.0, "F1"],
            [datetime(2026, 1, 10, 9), skus[1], 1, 50.0, "F1"],
            [datetime(2026, 1, 11, 9), skus[0], 1, 100.0, ""],
        ]
    )
    import_id = preview(dev_api, content).json()["import_id"]
    state = dev_api.post(f"/excel/imports/{import_id}/commit").json()
    assert state["status"] == "completed" and state["imported_rows"] == 3
    assert [b["sales"] for b in state["batches"]] == [2]  # invoice F1 is one sale, the other row another
    sales = dev_api.get(
        "/analytics/sales", params={"start_date": "2026-01-10", "end_date": "2026-01-11"}
    ).json()
    assert sales["kpis"]["total_revenue"] >= 350.0 and sales["daily"][0]["total_transactions"] >= 1
    again = dev_api.post(f"/excel/imports/{import_id}/commit")
    assert again.status_code == 409 and "already committed" in again.json()["detail"]
    same_file = preview(dev_api, content).json()["import_id"]
    repeat = dev_api.post(f"/excel/imports/{same_file}/commit")
    assert repeat.status_code == 409 and "same file" in repeat.json()["detail"]
    assert dev_api.get(f"/excel/imports/{import_id}").json()["status"] == "completed"
    assert dev_api.get("/excel/imports").json()["count"] == 2


def test_errors_block_a_commit_unless_skipped(dev_api: httpx.Client, skus: list[str]) -> None:
    content = xlsx([["SKU", "Qty"], [skus[0], 1], [skus[0], 0.5]])
    import_id = preview(dev_api, content).json()["import_id"]
    blocked = dev_api.post(f"/excel/imports/{import_id}/commit")
    assert blocked.status_code == 409 and "1 row(s) have errors" in blocked.json()["detail"]
    done = dev_api.post(f"/excel/imports/{import_id}/commit", json={"payload": {"skip_invalid": True}}).json()
    assert done["imported_rows"] == 1 and done["skipped_rows"] == 1


def test_one_shot_import_answers_with_a_message(dev_api: httpx.Client, skus: list[str]) -> None:
    content = xlsx([["SKU", "Qty"], [skus[0], 1], ["NOPE", 1]])
    body = dev_api.post("/excel/import-sales", files={"file": ("s.xlsx", content, XLSX)}).json()
    assert body["imported_rows"] == 1 and body["total_rows"] == 2 and len(body["errors"]) == 1
    assert "1 row(s) imported from s.xlsx" in body["message"]
    nothing = dev_api.post(
        "/excel/import-sales", files={"file": ("s.xlsx", xlsx([["SKU", "Qty"], ["NOPE", 1]]), XLSX)}
    )
    assert nothing.status_code == 422
    assert nothing.json()["detail"][0]["row"] == 2 and "nothing was imported" in nothing.json()["message"]


def test_template_downloads(dev_api: httpx.Client) -> None:
    xlsx_template = dev_api.get("/excel/template")
    assert xlsx_template.headers["content-disposition"] == 'attachment; filename="sales-import-template.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_template.content)).active
    assert sheet.title == "Sales"
    assert [c.value for c in sheet[1]] == ["date", "sku", "product", "quantity", "unit_price", "order"]
    assert [c.value for c in sheet[2]] == [
        "2026-03-14 10:30",
        "BEV-0001",
        "Sparkling Water Classic",
        2,
        1.25,
        "INV-1001",
    ]
    assert dev_api.get("/excel/template", params={"format": "csv"}).text.startswith("date,sku,product")


def test_a_clerk_uploads_a_manager_reviews_and_commits(
    serve: Callable[..., httpx.Client], prod_settings: Settings, tokens: dict[str, str], standin
) -> None:
    """A USER sees only their own imports and cannot commit; an ADMIN lists and commits everyone's."""
    _, state = standin
    api = serve(prod_settings)
    sku = state.store.products()["sku"].iloc[0]
    user, admin = ({"Authorization": f"Bearer {tokens[r]}"} for r in ("USER", "ADMIN"))
    content = xlsx([["SKU", "Qty"], [sku, 1]])
    upload = {"file": ("s.xlsx", content, XLSX)}
    clerks = api.post("/excel/preview", files=upload, headers=user).json()["import_id"]
    admins = api.post("/excel/preview", files={"file": ("a.xlsx", content, XLSX)}, headers=admin).json()
    assert any("dated now" in note for note in admins["notes"])

    assert api.post(f"/excel/imports/{clerks}/commit", headers=user).status_code == 403
    assert api.get(f"/excel/imports/{admins['import_id']}", headers=user).status_code == 404
    assert [i["import_id"] for i in api.get("/excel/imports", headers=user).json()["data"]] == [clerks]

    listed = api.get("/excel/imports", headers=admin).json()["data"]
    assert [(i["import_id"], i["uploaded_by"]) for i in listed] == [
        (admins["import_id"], "admin"),
        (clerks, "clerk"),
    ]
    assert api.get(f"/excel/imports/{clerks}", headers=admin).json()["status"] == "previewed"
    committed = api.post(f"/excel/imports/{clerks}/commit", headers=admin).json()
    assert committed["status"] == "completed" and committed["imported_rows"] == 1
    assert api.get(f"/excel/imports/{clerks}", headers=user).json()["status"] == "completed"


def test_java_batch_failure_stops_with_an_account_and_resumes(
    serve: Callable[..., httpx.Client],
    make_settings: Callable[..., Settings],
    prod_settings: Settings,
    tokens: dict[str, str],
    standin,
) -> None:
    _, state = standin
    settings = prod_settings.replaced(import_batch_sales=2)
    api = serve(settings)
    admin = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    products = state.store.products()
    plenty = products.sort_values("stock_quantity", ascending=False)["sku"].tolist()
    scarce = products.loc[products["stock_quantity"] > 0].sort_values("stock_quantity")["sku"].iloc[0]
    scarce_stock = int(products.set_index("sku").loc[scarce, "stock_quantity"])
    rows = [[plenty[0], 1], [plenty[1], 1], [scarce, scarce_stock + 5], [plenty[2], 1], [plenty[3], 1]]
    content = xlsx([["SKU", "Qty"], *rows])
    import_id = api.post("/excel/preview", files={"file": ("s.xlsx", content, XLSX)}, headers=admin).json()[
        "import_id"
    ]
    stopped = api.post(f"/excel/imports/{import_id}/commit", headers=admin).json()
    assert stopped["status"] == "partial" and stopped["imported_rows"] == 2
    assert (
        "2 row(s) written, 3 not written" in stopped["message"] and "INSUFFICIENT_STOCK" in stopped["message"]
    )
    assert [b["status"] for b in stopped["batches"]] == ["written", "failed"]
    state.store.cursor().execute("UPDATE products SET stock_quantity = 1000 WHERE sku = ?", [scarce])
    resumed = api.post(f"/excel/imports/{import_id}/commit", headers=admin).json()
    assert resumed["status"] == "completed" and resumed["imported_rows"] == 5
    assert [b["index"] for b in resumed["batches"]] == [0, 1, 2]


def test_an_import_under_review_survives_a_redis_restart(
    serve: Callable[..., httpx.Client],
    prod_settings: Settings,
    redis_server: RedisProcess,
    tokens: dict[str, str],
    standin,
) -> None:
    """The clerk's upload waits for the manager in the state database: Redis losing everything (it keeps
    nothing on disk) loses no import; the manager still sees and commits it."""
    _, state = standin
    api = serve(prod_settings)
    clerk = {"Authorization": f"Bearer {tokens['USER']}"}
    manager = {"Authorization": f"Bearer {tokens['ADMIN']}"}
    sku = state.store.products()["sku"].iloc[0]
    files = {"file": ("s.xlsx", xlsx([["SKU", "Qty"], [sku, 1]]), XLSX)}
    preview = api.post("/excel/preview", files=files, headers=clerk)
    assert preview.status_code == 200, preview.text
    import_id = preview.json()["import_id"]
    redis_server.stop()
    redis_server.start()
    listed = api.get("/excel/imports", headers=manager).json()["data"]
    assert import_id in [item["import_id"] for item in listed]
    committed = api.post(f"/excel/imports/{import_id}/commit", headers=manager)
    assert committed.status_code == 200 and committed.json()["status"] == "completed", committed.text
