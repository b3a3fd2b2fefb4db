"""Event KPIs on hand-computed tables: rates, grouping by area and department, ranking, 同比 and 环比."""

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from domain.kpi import change, compare, comparison_periods, kpi_table, rank, valid_mask

NAT = pd.NaT


def ts(day: int, hour: int = 0, month: int = 11, year: int = 2026) -> pd.Timestamp:
    return pd.Timestamp(datetime(year, month, day, hour))


def frame(rows: list[tuple]) -> pd.DataFrame:
    cols = [
        "id",
        "grid_id",
        "department_id",
        "category",
        "status",
        "reported_at",
        "resolved_at",
        "closed_at",
        "rating",
        "is_overdue",
        "reporter_count",
    ]
    return pd.DataFrame(rows, columns=cols)


# Grid 11 and 12 are in village 1, grid 21 in village 2.
EVENTS = frame(
    [
        # id grid dept category status reported resolved closed rating overdue reporters
        (1, 11, 100, "urban", "archived", ts(1, 8), ts(1, 18), ts(3), "satisfied", False, 1),
        (2, 11, 100, "urban", "archived", ts(2, 8), ts(3, 8), ts(5), "unsatisfied", True, 2),
        (3, 12, 200, "dispute", "rated", ts(3, 8), ts(3, 12), NAT, "basically", False, 1),
        (4, 12, 200, "dispute", "in_progress", ts(4, 8), NAT, NAT, None, True, 1),
        (5, 21, 100, "urban", "archived", ts(5, 8), ts(5, 10), ts(8), None, False, 1),
        (6, 21, 100, "urban", "rejected", ts(6, 8), NAT, NAT, None, False, 1),
        (7, 21, 200, "urban", "archived", ts(6, 9), NAT, ts(7), None, False, 1),  # rejected, then archived
    ]
)
UNIT_OF = {11: 1, 12: 1, 21: 2}


def test_rejected_events_do_not_count_even_once_archived():
    assert valid_mask(EVENTS).tolist() == [True] * 5 + [False, False]


def test_the_whole_tables_kpis_are_the_hand_computed_ones():
    t = kpi_table(EVENTS, population=20_000)
    row = t.loc["全部"]
    assert row["events"] == 5
    assert row["reports"] == 6
    assert row["complaint_rate"] == pytest.approx(5 * 10_000 / 20_000)
    assert row["resolution_rate"] == pytest.approx(4 / 5)
    # rated: 满意, 不满意, 基本满意 → (满意 + 基本满意) / 3
    assert row["satisfaction_rate"] == pytest.approx(2 / 3)
    assert row["on_time_rate"] == pytest.approx(1 - 2 / 5)
    # handling hours of the resolved: 10, 24, 4, 2
    assert row["mean_handling_hours"] == pytest.approx((10 + 24 + 4 + 2) / 4)


@pytest.mark.parametrize("population", [np.int64(20_000), np.float32(20_000), 20_000.0])
def test_a_population_read_from_a_frame_counts_as_one(population):
    """A unit's population comes out of a frame as numpy's int64: it was taken for no number, and the
    report's 概况 showed no 投诉率 for any area."""
    assert kpi_table(EVENTS, population=population).loc["全部", "complaint_rate"] == pytest.approx(2.5)


def test_kpis_group_by_area_through_a_grid_to_unit_mapping():
    t = kpi_table(EVENTS, "unit_id", unit_of=UNIT_OF, population={1: 5_000, 2: 2_500})
    assert t.index.tolist() == [1, 2]
    assert t.loc[1, "events"] == 4 and t.loc[2, "events"] == 1
    assert t.loc[1, "complaint_rate"] == pytest.approx(8.0)
    assert t.loc[2, "complaint_rate"] == pytest.approx(4.0)
    assert t.loc[1, "resolution_rate"] == pytest.approx(3 / 4)
    assert np.isnan(t.loc[2, "satisfaction_rate"])  # nobody rated there


def test_kpis_group_by_department():
    t = kpi_table(EVENTS, "department_id")
    assert t.loc[100, "events"] == 3
    assert t.loc[200, "events"] == 2
    assert t.loc[200, "on_time_rate"] == pytest.approx(0.5)
    assert np.isnan(t.loc[100, "complaint_rate"])  # no population given


def test_an_empty_table_has_zero_events_and_no_rates():
    t = kpi_table(EVENTS.iloc[0:0])
    assert t.loc["全部", "events"] == 0
    assert np.isnan(t.loc["全部", "resolution_rate"])


def table_of(events: dict[str, int], rates: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"events": events, "resolution_rate": rates, "complaint_rate": rates})


def test_small_groups_are_ranked_after_the_others_and_every_group_shows_its_n():
    t = table_of(
        {"甲村": 120, "乙村": 40, "丙村": 12, "丁村": 35},
        {"甲村": 0.9, "乙村": 0.95, "丙村": 1.0, "丁村": 0.9},
    )
    r = rank(t, "resolution_rate", min_events=30)
    assert r.index.tolist() == ["乙村", "甲村", "丁村", "丙村"]
    assert r["rank"].tolist() == [1, 2, 2, 4]  # 丙村's 100 % of 12 events comes after, not first
    assert not r.loc["丙村", "ranked"] and r.loc["丙村", "rank_note"] == "样本少（N<30）"
    assert r.loc["甲村", "rank_note"] == "并列"
    assert r["events"].tolist() == [40, 120, 35, 12]
    assert (r["min_events"] == 30).all()


def test_the_page_ranks_on_the_value_as_shown_as_the_report_does():
    """95.04 % and 94.96 % both read 95.0 %: they share a place on screen as in the 月报."""
    from services.report_book import kpi_sheet

    t = table_of({"甲村": 50, "乙村": 50, "丙村": 50}, {"甲村": 0.9504, "乙村": 0.9496, "丙村": 0.90})
    r = rank(t, "resolution_rate")
    assert r["rank"].tolist() == [1, 1, 3]
    frame = t.assign(name=t.index)
    for c in ("satisfaction_rate", "on_time_rate", "mean_handling_hours"):
        frame[c] = float("nan")
    for c in ("satisfaction_rate_prev_change", "satisfaction_rate_yoy_change", "events_prev_change"):
        frame[c] = float("nan")
    frame["events_yoy_change"] = float("nan")
    sheet = kpi_sheet("排名", frame, "resolution_rate", 30)
    on_paper = {row[1]: row[0] for row in sheet.rows}
    assert on_paper == dict(zip(r.index, r["rank"].tolist(), strict=True))


def test_a_lower_complaint_rate_ranks_better():
    t = table_of({"甲村": 50, "乙村": 50}, {"甲村": 3.0, "乙村": 1.0})
    assert rank(t, "complaint_rate")["rank"].tolist() == [1, 2]
    assert rank(t, "complaint_rate").index.tolist() == ["乙村", "甲村"]


def test_the_year_ago_and_previous_periods_are_the_same_length():
    p = comparison_periods(ts(3), ts(3, month=12))  # not from the first of a month: days for days
    assert p.year_ago == (ts(3, year=2025), ts(3, month=12, year=2025))
    assert p.previous == (ts(3, month=10) + pd.Timedelta(days=1), ts(3))  # October has 31 days
    leap = comparison_periods(pd.Timestamp("2028-02-29"), pd.Timestamp("2028-03-01"))
    assert leap.year_ago[0] == pd.Timestamp("2027-02-28")


@pytest.mark.parametrize(
    ("start", "end", "previous", "year_ago"),
    [
        # a 月报: the whole month against the whole month before and the same month a year earlier
        ("2026-11-01", "2026-12-01", ("2026-10-01", "2026-11-01"), ("2025-11-01", "2025-12-01")),
        ("2026-10-01", "2026-11-01", ("2026-09-01", "2026-10-01"), ("2025-10-01", "2025-11-01")),
        ("2028-03-01", "2028-04-01", ("2028-02-01", "2028-03-01"), ("2027-03-01", "2027-04-01")),
        ("2028-02-01", "2028-03-01", ("2028-01-01", "2028-02-01"), ("2027-02-01", "2027-03-01")),
        # the month so far: the same days of the month before
        ("2026-12-01", "2026-12-04", ("2026-11-01", "2026-11-04"), ("2025-12-01", "2025-12-04")),
    ],
)
def test_a_month_is_compared_with_the_month_before_not_the_days_before(start, end, previous, year_ago):
    p = comparison_periods(pd.Timestamp(start), pd.Timestamp(end))
    assert p.previous == tuple(pd.Timestamp(x) for x in previous)
    assert p.year_ago == tuple(pd.Timestamp(x) for x in year_ago)


def test_a_period_must_end_after_it_starts():
    with pytest.raises(ValueError, match="结束时间必须晚于开始时间"):
        comparison_periods(ts(2), ts(1))


def test_year_on_year_and_period_on_period_changes():
    rows = []
    n = 0
    # Nov 2026: 4 events, 3 resolved; Oct 2026 (previous 30 days from 2 Oct): 2 events, 2 resolved;
    # Nov 2025: 5 events, 5 resolved.
    for when, k, resolved in ((ts(10), 4, 3), (ts(10, month=10), 2, 2), (ts(10, year=2025), 5, 5)):
        for i in range(k):
            n += 1
            done = i < resolved
            rows.append(
                (
                    n,
                    11,
                    100,
                    "urban",
                    "archived" if done else "in_progress",
                    when,
                    when + pd.Timedelta(hours=2) if done else NAT,
                    NAT,
                    None,
                    False,
                    1,
                )
            )
    c = compare(frame(rows), ts(1), ts(1, month=12), population=10_000).loc["全部"]
    assert c["events"] == 4 and c["events_yoy"] == 5 and c["events_prev"] == 2
    assert c["events_yoy_change"] == pytest.approx(-0.2)
    assert c["events_prev_change"] == pytest.approx(1.0)
    assert c["complaint_rate"] == pytest.approx(4.0)
    # shares change in percentage points: 75% vs 100% → −25 points
    assert c["resolution_rate_yoy_change"] == pytest.approx(-0.25)
    assert c["resolution_rate_prev_change"] == pytest.approx(-0.25)


def test_a_group_missing_from_the_base_period_has_no_change():
    rows = [(1, 11, 100, "urban", "archived", ts(10), ts(10, 5), NAT, None, False, 1)]
    c = compare(frame(rows), ts(1), ts(1, month=12), "grid_id")
    assert c.loc[11, "events_yoy"] == 0
    assert np.isnan(c.loc[11, "events_yoy_change"])


def test_changes_are_relative_for_counts_and_differences_for_shares():
    assert change([12.0], [10.0], share=False).tolist() == pytest.approx([0.2])
    assert change([0.9], [0.8], share=True).tolist() == pytest.approx([0.1])
    assert np.isnan(change([3.0], [0.0], share=False).iloc[0])
