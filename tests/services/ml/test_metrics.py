"""The M4 metric code reproduces the official Weekly scores of Naive2 and SES from the official forecasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench.forecast_m4 import score

from salesflow.services.ml import metrics
from tests.builders import SHARED

M4 = SHARED / "data/m4"


def m4_weekly() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], pd.DataFrame]:
    if not (M4 / "Weekly-train.csv").exists():
        pytest.skip(f"M4 data not found under {M4} (set SHARED_DIR)")
    train = pd.read_csv(M4 / "Weekly-train.csv")
    test = pd.read_csv(M4 / "Weekly-test.csv")
    official = pd.read_csv(M4 / "m4_official_benchmark_forecasts_W_H_D4.csv")
    history = {row[0]: np.asarray(row[1:], dtype=float) for row in train.itertuples(index=False)}
    history = {k: v[~np.isnan(v)] for k, v in history.items()}
    actual = {row[0]: np.asarray(row[1:], dtype=float) for row in test.itertuples(index=False)}
    return history, actual, official


@pytest.mark.parametrize(
    ("method", "expected_smape", "expected_mase"), [("Naive2", 9.161, 2.777), ("SES", 9.012, 2.685)]
)
def test_official_weekly_scores_are_reproduced(
    method: str, expected_smape: float, expected_mase: float
) -> None:
    history, actual, official = m4_weekly()
    rows = official[(official["method"] == method) & official["id"].str.startswith("W")]
    assert len(rows) == 359
    smapes, mases = [], []
    for row in rows.itertuples(index=False):
        forecast = np.asarray(row[2:15], dtype=float)
        key = str(row.id)
        smapes.append(metrics.smape(actual[key], forecast))
        mases.append(metrics.mase(actual[key], forecast, history[key], season_length=1))
    assert round(float(np.mean(smapes)), 3) == expected_smape
    assert round(float(np.mean(mases)), 3) == expected_mase
    # The M4 bench averages both measures the same way, and gets the same figures.
    forecasts = {str(row.id): np.asarray(row[2:15], dtype=float) for row in rows.itertuples(index=False)}
    smape, mase, left_out = score(history, actual, forecasts, 1)
    assert (round(smape, 3), round(mase, 3), left_out) == (expected_smape, expected_mase, 0)


def test_owa_of_naive2_is_one_and_smaller_is_better() -> None:
    assert metrics.owa(9.161, 2.777, 9.161, 2.777) == 1.0
    assert metrics.owa(7.817, 2.356, 9.161, 2.777) == pytest.approx(0.851, abs=0.001)  # the M4 winner


def test_metrics_on_hand_worked_values() -> None:
    actual, forecast = np.array([10.0, 0.0, 5.0]), np.array([8.0, 0.0, 10.0])
    assert metrics.smape(actual, forecast) == pytest.approx((200 * 2 / 18 + 0 + 200 * 5 / 15) / 3)
    assert metrics.wape(actual, forecast) == pytest.approx(7 / 15 * 100)
    assert metrics.mae(actual, forecast) == pytest.approx(7 / 3)
    train = np.array([1.0, 3.0, 2.0, 6.0])  # naive errors 2, 1, 4 → scale 7/3
    assert metrics.mase(actual, forecast, train) == pytest.approx((7 / 3) / (7 / 3))
    assert np.isnan(metrics.mase(actual, forecast, np.array([4.0, 4.0])))


def test_the_m4_bench_runs_on_a_development_half(tmp_path: Path) -> None:
    """The bench's own command line (options included) on six weekly series: one JSON line with the scores."""
    import json
    import subprocess
    import sys

    if not (M4 / "Weekly-train.csv").exists():
        pytest.skip(f"M4 data not found under {M4}")
    train = pd.read_csv(M4 / "Weekly-train.csv").iloc[:6]
    test = pd.read_csv(M4 / "Weekly-test.csv").iloc[:6]
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    command = [sys.executable, "-m", "bench.forecast_m4", "--train", str(tmp_path / "train.csv")]
    command += ["--test", str(tmp_path / "test.csv"), "--season-length", "1", "--horizon", "13"]
    command += [
        "--out",
        str(tmp_path / "out.csv"),
        "--half",
        "dev",
        "--switch-ratio",
        "1.0",
        "--candidates",
        "theta+ets,theta",
        "--workers",
        "1",
    ]
    command += ["--naive2", str(M4 / "m4_official_benchmark_forecasts_W_H_D4.csv")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["series"] == 3 and figures["half"] == "dev" and figures["failed_series"] == 0
    assert 0 < figures["owa"] < 2 and 0 <= figures["coverage_95_pct"] <= 100
    assert figures["candidates"] == "theta+ets,theta"


def test_the_public_series_bench_scores_monthly_and_quarterly_data() -> None:
    """The bench's command line with one origin: a JSON line per frequency with every method's scores."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", "bench.forecast_public", "--origins", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["frequency"] for line in lines] == ["monthly", "quarterly"]
    for line in lines:
        assert all(0 < line[method]["mase"] < 10 for method in ("auto", "seasonal_naive", "theta"))
        assert 0 <= line["auto_coverage_95_pct"] <= 100
