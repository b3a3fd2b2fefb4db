"""Leaders' analytics on the tiny demo: KPIs by area with N and ranks, reports as XLSX, warnings with evidence."""

import io
from datetime import datetime, timedelta

import openpyxl
import pandas as pd
import pytest

from domain import kpi
from services import clock
from services.analytics import alerts_frame, kpi_by, kpi_sums, load_events, report_workbook, warnings


@pytest.mark.parametrize("key", ["grid_id", "lead_department_id"])
def test_the_stores_sums_give_the_same_kpis_as_the_rows(township, key):
    engine, _user, _units, _anc, scope = township
    end = datetime.combine(clock.today() + timedelta(days=1), datetime.min.time())
    start = end - timedelta(days=120)
    with engine.connect() as conn:
        from_rows = kpi.kpi_table(load_events(conn, scope, start, end), key)
        from_sums = kpi.kpi_from_sums(kpi_sums(conn, scope, start, end, key), key)
    assert (
        from_rows["events"].sum() > 1000 and from_rows["resolved"].sum() > 0 and from_rows["rated"].sum() > 0
    )
    from_sums.index = from_sums.index.astype(from_rows.index.dtype)
    pd.testing.assert_frame_equal(from_sums, from_rows, check_dtype=False, rtol=1e-9)


def test_kpis_by_village_show_n_and_rank_small_groups_after_the_large_ones(township):
    engine, user, units, anc, scope = township
    end = datetime.combine(clock.today(), datetime.min.time())
    with engine.connect() as conn:
        table = kpi_by(
            conn,
            scope,
            end - timedelta(days=30),
            end,
            group="area",
            units=units,
            anc=anc,
            scope_unit_id=user.scope_unit_id,
            min_events=40,
        )
    assert len(table) == 25  # the demo town's villages and communities
    assert table["events"].sum() > 0
    small, ranked = table[table["events"] < 40], table[table["ranked"]]
    assert not small["ranked"].any() and small["rank_note"].str.contains("样本少").all()
    assert ranked["rank"].min() == 1
    assert small["rank"].dropna().min() > ranked["rank"].max()  # after every large enough group


def test_the_monthly_report_is_an_xlsx_with_overview_areas_departments_and_warnings(township):
    engine, user, units, anc, scope = township
    with engine.connect() as conn:
        data = report_workbook(
            conn,
            scope,
            kind="月报",
            day=clock.today(),
            units=units,
            anc=anc,
            scope_unit_id=user.scope_unit_id,
        )
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["概况", "各区域", "各部门", "预警"]
    assert wb["概况"]["A4"].value == "统计区域"  # under the title, the period and the header


def test_warnings_find_the_injected_spike_and_mass_report_with_evidence(township, seeded_store):
    engine, _user, units, _anc, scope = township
    manifest = seeded_store[1]
    found = {}
    with engine.connect() as conn:
        for entry in manifest["anomalies"]:
            start = datetime.fromisoformat(entry["start"]).date()
            if start > clock.today():
                continue
            for d in (start, start + timedelta(days=1)):
                alerts = warnings(conn, scope, d, units)
                if any(a.kind.value == entry["kind_en"] for a in alerts):
                    found[entry["kind_en"]] = alerts_frame(alerts, units)
                    break
    assert {"spike", "mass"} <= set(found)
    assert all(frame["依据"].str.len().min() > 10 for frame in found.values())


def test_a_department_of_the_scope_without_events_is_listed_as_such_not_left_out(township):
    """Areas without events are listed (无事件); a department of the township with none is too."""
    from sqlalchemy import insert

    from db.models import Department
    from tests.rollback import rolled_back

    engine, user, units, anc, scope = township
    end = datetime.combine(clock.today(), datetime.min.time())
    with rolled_back(engine) as (_uow, conn):
        quiet = conn.execute(
            insert(Department).returning(Department.id),
            {
                "code": "D-QUIET",
                "name": "测试：无事件的部门",
                "kind": "测试科",
                "unit_id": user.scope_unit_id,
            },
        ).scalar_one()
        table = kpi_by(
            conn,
            scope,
            end - timedelta(days=30),
            end,
            group="department",
            units=units,
            anc=anc,
            scope_unit_id=user.scope_unit_id,
        )
    assert quiet in table.index
    row = table.loc[quiet]
    assert row["name"] == "测试：无事件的部门" and row["events"] == 0 and row["rank_note"] == "无事件"
    assert pd.isna(row["rank"])
