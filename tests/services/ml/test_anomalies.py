"""The robust seasonal detector: finds what is injected, stays quiet on clean series."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from salesflow.config import closed_days
from salesflow.data import demo
from salesflow.data.sources.embedded import EmbeddedStore
from salesflow.models.alerts import Severity
from salesflow.models.ml import Bucket
from salesflow.services.ml.anomalies import (
    AnomalyRules,
    IsolationForestDetector,
    RobustSeasonalDetector,
    detect_anomalies,
    too_small_to_matter,
)
from salesflow.services.ml.series import Series
from salesflow.services.shop_calendar import QuietDay, ShopCalendar
from tests.builders import TODAY

WEEK = np.array([0.8, 0.9, 1.0, 1.0, 1.2, 1.6, 0.5])


def poisson_weekly(n: int, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(level * np.tile(WEEK, n // 7 + 1)[:n]).astype(float)


def test_injected_spike_drop_and_zero_are_found_and_typed() -> None:
    y = poisson_weekly(140, 80, seed=1)
    y[60], y[90], y[120] = y[60] * 4, y[90] * 0.25, 0
    series = Series(
        values=y,
        starts=[date(2026, 1, 1) + timedelta(days=i) for i in range(140)],
        bucket=Bucket.DAILY,
        first_future=date(2026, 5, 21),
    )
    found = {
        (a.date - date(2026, 1, 1)).days: a for a in detect_anomalies(series, "robust_seasonal").anomalies
    }
    assert set(found) == {60, 90, 120}
    assert (found[60].type, found[90].type, found[120].type) == ("HIGH_SPIKE", "DROP", "ZERO_DROP")
    assert found[60].score > 5 and found[90].score < -5
    assert "expected" in found[60].explanation and f"{found[60].value:.0f} sold" in found[60].explanation
    assert found[120].severity == Severity.HIGH


def test_clean_series_stay_quiet() -> None:
    flags = sum(
        int(RobustSeasonalDetector().fit(y).detect(y).sum())
        for y in (poisson_weekly(365, level, seed) for seed, level in enumerate([5, 20, 80, 300] * 5))
    )
    assert flags <= 2  # 20 clean series, 7,300 days: well under 0.1% false positives


def test_a_spike_is_found_among_few_points() -> None:
    """The earlier backend's z-score included the point in its own baseline: nothing under 11 points."""
    y = np.array(
        [10, 11, 9, 10, 12, 10, 9, 11, 10, 60, 10, 11, 9, 10, 11, 10, 9, 10, 11, 10, 10, 9], dtype=float
    )
    detector = RobustSeasonalDetector(season_length=1, min_history_seasons=3).fit(y)
    assert np.flatnonzero(detector.detect(y)).tolist() == [9]


def test_demo_store_injected_anomalies_are_found(store_file) -> None:
    store = EmbeddedStore(store_file)
    lines = store.sale_lines(
        np.datetime64("2000-01-01").astype(object), np.datetime64("2100-01-01").astype(object)
    )
    events = store.cursor().execute("SELECT day, kind FROM demo_events WHERE product_id = -1").df()
    store.close()
    daily = lines.groupby(lines["sold_at"].dt.normalize())["quantity"].sum()
    days = np.arange(daily.index.min(), daily.index.max() + np.timedelta64(1, "D"), np.timedelta64(1, "D"))
    y = daily.reindex(days, fill_value=0).to_numpy(dtype=float)
    detector = RobustSeasonalDetector().fit(y)
    flagged = {days[i].astype("datetime64[D]").item() for i in np.flatnonzero(detector.detect(y))}
    injected = set(events["day"].dt.date if hasattr(events["day"], "dt") else events["day"])
    assert injected <= flagged
    # Ordinary days flagged: about 0.04% over 730 anchor days (the test below); this pinned store has 2.
    assert len(flagged - injected) <= 2


def shop_daily_units(history: demo.DemoHistory, start: date, days: int) -> np.ndarray:
    sold_at = history.sales.set_index("id")["sale_date"].loc[history.items["sale_id"]].to_numpy()
    day = (sold_at.astype("datetime64[D]") - np.datetime64(start, "D")).astype(np.int64)
    return np.bincount(day, weights=history.items["quantity"].to_numpy(), minlength=days).astype(float)


def test_injected_shop_anomalies_are_found_whatever_the_anchor_date() -> None:
    """The demo's "today" moves the injected days across weekdays, seasons and promotions: over 70
    consecutive anchors each one is flagged, and other days stay as rare as on clean data (the detector
    flags about 0.03% of ordinary days; 730 anchors were checked when the injection was sized)."""
    days, missed, others = 120, [], 0
    for offset in range(70):
        today = TODAY + timedelta(days=offset)
        start = today - timedelta(days=days - 1)
        catalog = demo.build_catalog(n_products=40, start=start, days=days, seed=7)
        history = demo.generate_history(catalog, first_day=0, n_days=days, total_days=days)
        y = shop_daily_units(history, start, days)
        flags = np.flatnonzero(RobustSeasonalDetector().fit(y).detect(y))
        flagged = {start + timedelta(days=int(i)) for i in flags}
        shop_wide = set(history.events.loc[history.events["product_id"] == -1, "day"])
        missed += [(today, day) for day in shop_wide - flagged]
        others += len(flagged - set(history.events["day"]))
    assert missed == []
    assert others <= 0.0015 * 70 * days


def test_isolation_forest_strategy_flags_the_spike() -> None:
    y = poisson_weekly(140, 80, seed=2)
    y[70] = y[70] * 5
    assert 70 in np.flatnonzero(IsolationForestDetector().fit(y).detect(y)).tolist()


def test_a_yearly_event_is_expected_but_a_one_off_is_flagged() -> None:
    y = poisson_weekly(3 * 364, 80, seed=5)
    for year in range(3):
        y[300 + 364 * year] *= 3  # the same day every year (weekday-aligned): a known event
    y[500] *= 3  # once
    flagged = set(np.flatnonzero(RobustSeasonalDetector().fit(y).detect(y)).tolist())
    assert 500 in flagged
    assert not flagged & {300, 664, 1028}
    assert 500 + 364 not in flagged  # last year's one-off does not make this year's normal day look odd


def daily(values: np.ndarray, first: date = date(2025, 1, 6)) -> Series:
    return Series(
        values=values,
        starts=[first + timedelta(days=i) for i in range(len(values))],
        bucket=Bucket.DAILY,
        first_future=first + timedelta(days=len(values)),
    )


def test_a_statistically_unusual_but_small_change_is_not_an_anomaly() -> None:
    """The real frontend showed "1.0× the 6,397 expected" flagged high: on a large count, a few percent is
    many standard deviations and means nothing to a shop manager."""
    y = poisson_weekly(140, 6000, seed=3)
    y[100] *= 1.12  # ~9 standard deviations of the count noise, 12%
    y[120] *= 1.6
    statistical = detect_anomalies(daily(y), "robust_seasonal")
    assert {(a.date - date(2025, 1, 6)).days for a in statistical.anomalies} >= {100, 120}
    practical = detect_anomalies(daily(y), "robust_seasonal", rules=AnomalyRules())
    assert [(a.date - date(2025, 1, 6)).days for a in practical.anomalies] == [120]
    few = poisson_weekly(140, 3, seed=4)
    few[100] = 12  # unusual for 3 a day, but 9 units: under the 5-unit minimum only if the gap is smaller
    assert all(
        abs(a.value - a.expected) >= 5
        for a in detect_anomalies(daily(few), "robust_seasonal", rules=AnomalyRules()).anomalies
    )


def test_yesterday_is_judged_on_the_days_before_it() -> None:
    """The alerts' (causal) mode: a zero day, a 3× spike and a halving at the end of the series are found,
    and a day's verdict does not change when later days arrive."""
    for level, change in ((20, 0.0), (20, 3.0), (80, 0.35)):
        found = 0
        for seed in range(20):
            y = poisson_weekly(200, level, seed=100 + seed)
            y[-1] = np.round(y[-1] * change)
            detector = RobustSeasonalDetector(causal=True, min_change=0.3, min_gap=5).fit(y)
            found += bool(detector.detect(y)[-1])
        assert found >= 19, (level, change, found)
    y = poisson_weekly(200, 20, seed=9)
    y[150] = 0
    before = RobustSeasonalDetector(causal=True).fit(y[:151])
    after = RobustSeasonalDetector(causal=True).fit(y)
    assert np.allclose(before.scores_, after.scores_[:151]) and before.detect(y[:151])[150]


def test_holidays_and_closures_are_expected_and_named() -> None:
    start = date(2025, 12, 1)  # a Monday; Christmas 2025 is a Thursday
    y = poisson_weekly(70, 50, seed=11)
    days = [start + timedelta(days=i) for i in range(70)]
    closed = [i for i, d in enumerate(days) if date(2025, 12, 25) <= d <= date(2025, 12, 28)]
    y[closed] = 0  # shut from Christmas to the Sunday after
    y[days.index(date(2026, 1, 1))] *= 3  # a New Year's Day rush
    y[days.index(date(2026, 1, 21))] = 0  # an ordinary Wednesday: not expected
    series = Series(values=y, starts=days, bucket=Bucket.DAILY, first_future=days[-1] + timedelta(days=1))
    plain = {a.date for a in detect_anomalies(series, "robust_seasonal", rules=AnomalyRules()).anomalies}
    assert {date(2025, 12, 25), date(2026, 1, 21)} <= plain
    calendar = ShopCalendar(country="GB", closed_weekdays=frozenset())
    found = detect_anomalies(series, "robust_seasonal", rules=AnomalyRules(calendar=calendar)).anomalies
    by_day = {a.date: a for a in found}
    assert not {
        d for d in by_day if date(2025, 12, 25) <= d <= date(2025, 12, 28)
    }  # a closure around Christmas
    assert date(2026, 1, 21) in by_day and by_day[date(2026, 1, 21)].type == "ZERO_DROP"
    assert by_day[date(2026, 1, 1)].type == "HIGH_SPIKE"
    assert "New Year's Day, a public holiday" in by_day[date(2026, 1, 1)].explanation


def test_the_shop_calendar_reads_its_settings() -> None:
    calendar = ShopCalendar.from_settings(
        country="FR",
        subdivision=None,
        closed_dates=closed_days("2026-08-10..2026-08-12"),
        closed_weekdays=["sun"],
    )
    assert calendar.quiet(date(2026, 8, 11)) == QuietDay("a planned closure", closed=True)
    sunday = calendar.quiet(date(2026, 3, 15))
    assert sunday is not None and sunday.closed and "Sunday" in sunday.reason
    bastille = calendar.quiet(date(2026, 7, 14))
    assert bastille is not None and not bastille.closed and "public holiday" in bastille.reason
    assert calendar.quiet(date(2026, 3, 18)) is None
    # A week holding a closing weekday is every week: only holidays and closures make a week quiet.
    weeks = calendar.expected_buckets([date(2026, 3, 9), date(2026, 7, 13)], 7, np.array([100.0, 100.0]))
    assert list(weeks) == [1] and "2026-07-14" in weeks[1].reason


def test_a_series_too_small_to_matter_is_never_flagged_in_its_judged_days() -> None:
    """The alerts skip slow sellers whose recent numbers cannot reach the minimum gap; the shortcut must never
    skip one that the detector would flag."""
    skipped = 0
    for seed in range(200):
        y = poisson_weekly(300, 0.2 + (seed % 4) * 0.4, seed=seed)
        if seed % 3 == 0:
            y[-1 - seed % 7] += 6  # one day a customer buys six: reaches the gap
        flags = RobustSeasonalDetector(causal=True, min_change=0.3, min_gap=5).fit(y).detect(y)[-7:]
        if too_small_to_matter(y, min_gap=5, judged=7):
            skipped += 1
            assert not flags.any(), seed
    assert 50 < skipped < 200
