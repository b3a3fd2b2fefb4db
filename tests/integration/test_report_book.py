"""The 日报/周报/月报 XLSX as sent up, opened with openpyxl: title and period, fitted widths, numbers with
number formats (no text percentages, no apostrophes, no "-0.0"), competition ranks with small samples
after the others; and the on-screen preview of the same file."""

import io
from datetime import timedelta

import openpyxl
from openpyxl.utils import get_column_letter

from services import clock
from services.analytics import report_workbook
from services.report_book import (
    FORMATS,
    TITLE_ROWS,
    Col,
    Sheet,
    _text_width,
    number,
    read_book,
    shown,
    write_book,
)

HEADER = TITLE_ROWS + 1


def _book(township, kind: str, **kw) -> tuple[bytes, openpyxl.Workbook, str]:
    engine, user, units, anc, scope = township
    with engine.connect() as conn:
        data = report_workbook(
            conn,
            scope,
            kind=kind,
            day=clock.today() - timedelta(days=1),
            units=units,
            anc=anc,
            scope_unit_id=user.scope_unit_id,
            **kw,
        )
    return data, openpyxl.load_workbook(io.BytesIO(data)), str(units.at[user.scope_unit_id, "name"])


def _rows(ws) -> tuple[list[str], list[dict]]:
    header = [c.value for c in ws[HEADER]]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=HEADER + 1, values_only=True)]
    return header, rows


def _cells(ws) -> dict[str, list]:
    header = [c.value for c in ws[HEADER]]
    return {h: [row[j] for row in ws.iter_rows(min_row=HEADER + 1)] for j, h in enumerate(header)}


def test_every_sheet_has_a_title_with_area_and_report_and_the_period_under_it(township):
    _data, book, area = _book(township, "月报")
    assert book.sheetnames == ["概况", "各区域", "各部门", "预警"]
    day = clock.today() - timedelta(days=1)
    for ws in book.worksheets:
        assert ws["A1"].value == f"{area}月报 · {ws.title}"
        assert ws["A1"].font.bold
        assert ws["A2"].value.startswith(f"统计时段：{day - timedelta(days=29)} 至 {day}")
        assert f"A1:{get_column_letter(ws.max_column)}1" in {str(r) for r in ws.merged_cells.ranges}
        assert ws.freeze_panes == f"A{HEADER + 1}"
    overview = {r[0]: r[1] for r in book["概况"].iter_rows(min_row=HEADER + 1, values_only=True)}
    assert overview["统计区域"] == area and isinstance(overview["事件数"], int) and overview["事件数"] > 0


def test_numbers_and_percentages_are_numbers_with_formats_and_never_text(township):
    _data, book, _area = _book(township, "月报")
    kinds = {
        "排名": "int",
        "事件数(N)": "int",
        "投诉率(件/万人)": "dec2",
        "解决率": "pct",
        "满意率": "pct",
        "满意率环比": "pp",
        "按时办结率": "pct",
        "平均处置时长(小时)": "dec1",
        "事件数环比": "rel",
    }
    for name in ("各区域", "各部门"):
        cells = _cells(book[name])
        for header, kind in kinds.items():
            if name == "各部门" and header == "投诉率(件/万人)":
                assert header not in cells  # a department has no residents: no rate per 10,000
                continue
            filled = [c for c in cells[header] if c.value is not None]
            assert filled, (name, header)
            assert all(isinstance(c.value, int | float) for c in filled), (name, header)
            assert {c.number_format for c in cells[header]} == {FORMATS[kind]}, (name, header)
        # The percentage-point change reads like "+1.2个百分点" through its format, not as text.
        assert FORMATS["pp"] == '+0.0"个百分点";-0.0"个百分点";0.0"个百分点"'
    overview = {r[0].value: r[1] for r in book["概况"].iter_rows(min_row=HEADER + 1)}
    assert overview["满意率"].number_format == "0.0%" and isinstance(overview["满意率"].value, float | int)
    for ws in book.worksheets:
        for row in ws.iter_rows(min_row=HEADER):
            for c in row:
                if isinstance(c.value, str):
                    assert not c.value.startswith("'") and "%" not in c.value.replace("%）", ""), c.value
                    assert c.value != "-0.0" and "个百分点" not in c.value
                if isinstance(c.value, float) and c.value == 0:
                    assert str(c.value) == "0.0"  # never a negative zero, which Excel shows as "-0.0"


def test_columns_are_as_wide_as_their_longest_cell(township):
    _data, book, _area = _book(township, "月报")
    ws = book["各区域"]
    names = [r[1] for r in ws.iter_rows(min_row=HEADER + 1, values_only=True)]
    assert ws.column_dimensions["B"].width >= max(_text_width(n) for n in names) + 2
    assert ws.column_dimensions["C"].width >= _text_width("事件数(N)") + 2
    assert all(ws.column_dimensions[c].width <= 80 for c in "ABCDEFGHIJKLM")
    warn = book["预警"]
    if warn.max_row > HEADER:  # the evidence sentences wrap in a wide column instead of running on
        assert warn.column_dimensions["E"].width >= 40


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def test_ranks_are_competition_ranks_with_small_samples_after_the_others(township):
    _data, book, _area = _book(township, "周报", min_events=40)
    _header, rows = _rows(book["各区域"])
    ranked = [r for r in rows if r["排名"] is not None]
    big = [r for r in ranked if "样本少" not in (r["备注"] or "")]
    small = [r for r in ranked if "样本少" in (r["备注"] or "")]
    assert big and small  # a week of a township: some villages have fewer than 40 events
    assert all(r["事件数(N)"] >= 40 for r in big) and all(r["事件数(N)"] < 40 for r in small)
    assert max(r["排名"] for r in big) < min(r["排名"] for r in small)  # not flooding the top
    assert rows.index(big[-1]) < rows.index(small[0])  # listed in that order too
    for group, offset in ((big, 0), (small, len(big))):
        for r in group:
            better = sum(_better(round(o["满意率"], 3), round(r["满意率"], 3), True) for o in group)
            assert r["排名"] == offset + 1 + better, r  # "1, 1, 3": ties share, the next place skips
            shared = sum(o["排名"] == r["排名"] for o in group) > 1
            assert ("并列" in (r["备注"] or "")) == shared
    for r in rows:
        if r["排名"] is None:
            assert r["备注"] in ("无事件", "暂无评价")


def test_write_book_stores_what_shows_as_zero_as_zero_and_keeps_user_text_inert():
    sheet = Sheet("各区域", [Col("名称"), Col("满意率环比", "pp"), Col("事件数环比", "rel")])
    sheet.rows = [["=HYPERLINK(1)", -0.04, -0.0004], ["甲村", 1.25, 0.5], ["乙村", None, None]]
    book = openpyxl.load_workbook(io.BytesIO(write_book("测试街道日报", "统计时段：2026-11-20", [sheet])))
    ws = book["各区域"]
    assert ws.cell(row=HEADER + 1, column=1).value == "'=HYPERLINK(1)"  # a formula typed by a user stays text
    assert [ws.cell(row=HEADER + 1, column=j).value for j in (2, 3)] == [0.0, 0.0]
    assert ws.cell(row=HEADER + 2, column=2).value == 1.25
    assert ws.cell(row=HEADER + 3, column=2).value is None


def test_the_preview_shows_each_sheet_as_excel_would(township):
    data, book, area = _book(township, "月报")
    sheets = read_book(data)
    assert [s.name for s in sheets] == book.sheetnames
    areas = sheets[1]
    assert areas.title == f"{area}月报 · 各区域" and areas.subtitle.startswith("统计时段：")
    assert list(areas.table.columns)[:3] == ["排名", "名称", "事件数(N)"]
    first = book["各区域"].cell(row=HEADER + 1, column=6).value  # 满意率 of the first row
    assert areas.table.iloc[0]["满意率"] == f"{first * 100:.1f}%"
    assert all(v.endswith("个百分点") or v == "" for v in areas.table["满意率环比"])


def test_a_change_that_rounds_to_zero_reads_zero_not_minus_zero():
    assert shown(number(-0.0004, "pp"), "pp") == "0.0个百分点"
    assert shown(number(-0.00004, "rel"), "rel") == "0.0%"
    assert shown(number(-0.012, "rel"), "rel") == "-1.2%"
    assert shown(number(2.36, "pp"), "pp") == "+2.4个百分点"
    assert number(float("nan"), "pct") is None and number(None, "int") is None


def test_the_written_parts_are_well_formed_and_hold_no_value_excel_would_repair():
    """The workbook is written as text (decision 0039): every part parses as XML; a rate over nothing
    (±inf) is an empty cell, never "inf"; a one-column sheet merges nothing; a font's children keep the
    schema's order (size before colour), which Excel enforces and openpyxl's reader does not."""
    import xml.etree.ElementTree as ET
    import zipfile

    wide = Sheet("各区域", [Col("名称"), Col("事件数环比", "rel"), Col("满意率", "pct")])
    wide.rows = [["甲村", float("inf"), float("-inf")], ["乙村\x07", 0.5, 0.9]]
    narrow = Sheet("说明", [Col("说明")])
    narrow.rows = [["仅一列"]]
    data = write_book("测试街道日报", "统计时段：2026-11-20", [wide, narrow])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    for body in parts.values():
        ET.fromstring(body)  # raises on malformed XML
    assert b"inf" not in parts["xl/worksheets/sheet1.xml"]
    assert b"mergeCell" in parts["xl/worksheets/sheet1.xml"]
    assert b"mergeCell" not in parts["xl/worksheets/sheet2.xml"]
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    order = [
        "b",
        "i",
        "strike",
        "condense",
        "extend",
        "outline",
        "shadow",
        "u",
        "vertAlign",
        "sz",
        "color",
        "name",
    ]
    for font in ET.fromstring(parts["xl/styles.xml"]).iter(f"{ns}font"):
        tags = [child.tag.removeprefix(ns) for child in font]
        assert tags == sorted(tags, key=order.index), tags
    ws = openpyxl.load_workbook(io.BytesIO(data))["各区域"]
    assert [ws.cell(row=HEADER + 1, column=j).value for j in (2, 3)] == [None, None]
    assert ws.cell(row=HEADER + 2, column=1).value == "乙村"  # a control character XML cannot hold is dropped


def test_an_area_named_like_a_formula_titles_its_sheets_as_text():
    """A unit named "=HYPERLINK(…)" (an imported boundary file's name) titles every sheet: the title is
    text, never a formula the spreadsheet would run (openpyxl's writer stored it as one)."""
    sheet = Sheet("各区域", [Col("名称"), Col("事件数", "int")])
    sheet.rows = [["甲村", 3]]
    data = write_book('=HYPERLINK("http://x","点")街道月报', "统计时段：2026-11-01 至 2026-11-30", [sheet])
    ws = openpyxl.load_workbook(io.BytesIO(data))["各区域"]
    assert ws["A1"].data_type == "s" and ws["A1"].value.startswith("=HYPERLINK")
