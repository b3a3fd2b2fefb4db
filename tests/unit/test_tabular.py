"""Spreadsheet in and out: encodings detected, formula-leading cells neutralised on export."""

import io

import pandas as pd
import pytest

from services.tabular import (
    MAX_LISTED,
    RowError,
    TableError,
    cell_text,
    decode_csv,
    listed,
    read_sheet,
    read_table,
    safe_cell,
    to_csv,
    to_xlsx,
)


def test_gbk_and_utf8_with_bom_decode_to_the_same_text():
    text = "类别,标题\n城镇管理,占道\n"
    assert decode_csv(text.encode("gbk")) == decode_csv(("\ufeff" + text).encode("utf-8")) == text


def test_rows_keep_their_file_row_numbers_and_codes_stay_text():
    df = read_table("编码,名称\n330802001001,甲\n\n000123,乙\n".encode(), "x.csv", ["编码"])
    assert df["_row"].tolist() == [2, 4]  # the blank line 3 is no row, but its number counts
    assert df["编码"].tolist() == ["330802001001", "000123"]


def test_an_unknown_file_type_is_refused():
    with pytest.raises(TableError, match="仅支持"):
        read_table(b"x", "x.pdf", [])


@pytest.mark.parametrize("payload", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", '=HYPERLINK("http://x")'])
def test_formula_leading_cells_are_neutralised_in_exports(payload):
    assert safe_cell(payload) == "'" + payload
    frame = pd.DataFrame({"标题": [payload]})
    assert (
        pd.read_csv(io.BytesIO(to_csv(frame)), dtype=str, encoding="utf-8-sig").loc[0, "标题"]
        == "'" + payload
    )
    back = pd.read_excel(io.BytesIO(to_xlsx({"s": frame})), dtype=str)
    assert back.loc[0, "标题"] == "'" + payload


def test_plain_text_and_numbers_are_exported_unchanged():
    assert safe_cell("占道经营") == "占道经营" and safe_cell(-3) == -3


def test_a_formula_leading_header_is_neutralised_too():
    frame = pd.DataFrame({"=危险列": ['=HYPERLINK("x")', "ok"], "n": [1, 2]})
    text = to_csv(frame).decode("utf-8-sig")
    assert text.splitlines()[0] == "'=危险列,n" and "'=HYPERLINK" in text
    assert list(pd.read_excel(io.BytesIO(to_xlsx({"s": frame})), dtype=str).columns) == ["'=危险列", "n"]


def test_a_row_error_reads_as_the_row_the_field_and_why():
    assert str(RowError(3, "类别", "不是八类场所之一")) == "第 3 行「类别」：不是八类场所之一"


# -- one reader for every import: physical line numbers, ragged rows, every bad row listed ------------


def test_row_numbers_are_the_physical_lines_after_blank_lines_and_multi_line_cells():
    text = '编码,名称\r\n\r\n1,"第一行\r\n第二行\r\n第三行"\r\n\r\n2,乙\r\n'
    sheet = read_sheet(text.encode("gbk"), "x.csv", ["编码"])
    assert [n for n, _ in sheet.rows] == [3, 7]
    assert sheet.rows[0][1]["名称"] == "第一行\r\n第二行\r\n第三行" and sheet.problems == []


def test_a_header_after_blank_lines_is_still_the_header_with_its_own_line_number():
    sheet = read_sheet("\n\n编码,名称\n1,甲\n".encode(), "x.csv", ["编码"])
    assert sheet.header_row == 3 and sheet.rows == [(4, {"编码": "1", "名称": "甲"})]


def test_a_row_with_too_many_or_too_few_cells_is_an_error_of_its_row_and_the_others_are_read():
    text = "编码,名称,备注\n1,甲,\n2,乙,好,多余\n3,丙\n4,丁,,,\n5,戊,ok\n"
    sheet = read_sheet(text.encode(), "x.csv", ["编码"])
    assert [n for n, _ in sheet.rows] == [2, 5, 6]  # trailing empty cells lose nothing: row 5 is fine
    assert [(p.row, p.field) for p in sheet.problems] == [(3, "整行"), (4, "整行")]
    assert sheet.problems[0].reason.startswith("本行有 4 个单元格，多于表头的 3 列，多出的内容：“多余”")
    assert sheet.problems[1].reason.startswith("本行只有 2 个单元格，表头有 3 列")


def test_a_broken_quote_is_an_error_of_the_line_it_starts_on():
    sheet = read_sheet('编码,名称\n1,"甲"乙\n2,丙\n3,"没有闭合\n4,丁\n'.encode(), "x.csv", ["编码"])
    assert [n for n, _ in sheet.rows] == [3]
    reasons = {p.row: p.reason for p in sheet.problems}
    assert reasons[2].startswith("引号使用有误") and reasons[4].startswith("引号没有闭合")


def test_an_xlsx_value_under_no_header_is_an_error_and_short_rows_are_fine():
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["编码", "名称", "备注"])
    ws.append(["1", "甲"])  # short: the missing cells are empty
    ws.append(["2", "乙", "", "多余"])
    ws.append([13800000000, 28.9701, None])
    out = io.BytesIO()
    wb.save(out)
    sheet = read_sheet(out.getvalue(), "x.xlsx", ["编码"])
    assert sheet.rows == [
        (2, {"编码": "1", "名称": "甲", "备注": ""}),
        (4, {"编码": "13800000000", "名称": "28.9701", "备注": ""}),
    ]
    assert [(p.row, p.field) for p in sheet.problems] == [(3, "整行")]


def test_missing_or_repeated_columns_refuse_the_file_naming_each_column():
    with pytest.raises(TableError, match="缺少列：编码") as missing:
        read_sheet("名称\n甲\n".encode(), "x.csv", ["编码"])
    assert missing.value.problems == [RowError(1, "编码", "缺少此列")]
    with pytest.raises(TableError, match="列名重复：名称"):
        read_sheet("编码,名称,名称\n1,甲,乙\n".encode(), "x.csv", ["编码"])
    with pytest.raises(TableError, match="文件为空"):
        read_sheet(b"\n\n", "x.csv", ["编码"])


def test_every_bad_row_is_listed_up_to_the_cap_and_then_the_total():
    problems = [RowError(n, "整行", "坏") for n in range(500, 1, -1)]
    shown = listed(problems)
    assert len(shown) == MAX_LISTED + 1 and shown[0].row == 2 and shown[MAX_LISTED - 1].row == MAX_LISTED + 1
    assert str(shown[-1]) == f"「合计」：共 499 处问题，以上仅列出前 {MAX_LISTED} 处"
    assert listed(problems[:3]) == sorted(problems[:3], key=lambda p: p.row)


def test_cells_read_as_a_person_sees_them():
    from datetime import date, datetime

    assert cell_text(13800000000.0) == "13800000000" and cell_text(28.9701) == "28.9701"
    assert cell_text(datetime(2026, 11, 21, 9, 29, 59, 999_700)) == "2026-11-21 09:30:00"
    assert (
        cell_text(date(2026, 11, 21)) == "2026-11-21" and cell_text(None) == "" and cell_text(" 甲 ") == "甲"
    )


def _xlsx(rows: list[list]) -> bytes:

    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_sheet_is_read_row_by_row_and_left_at_a_wrong_header_or_past_the_row_limit(monkeypatch):
    """A 400,000-row workbook with a wrong header was read whole (~10 s, ~350 MB) before its header was
    looked at; now the reading stops at the header, or at the first row past the limit."""
    from services import tabular

    read: list[int] = []
    rows_of = tabular._xlsx_rows

    def counted(wb, ws):
        for n, cells in rows_of(wb, ws):
            read.append(n)
            yield n, cells

    monkeypatch.setattr(tabular, "_xlsx_rows", counted)
    body = [[f"甲{i}", str(i)] for i in range(3000)]
    with pytest.raises(TableError, match="缺少列"):
        read_sheet(_xlsx([["错的", "表头"], *body]), "x.xlsx", ["编码"])
    assert read == [1, 2, 3, 4]  # and the rows a grouped header may stand above (MAX_TITLE_ROWS)
    read.clear()
    with pytest.raises(TableError, match="一次最多导入 100 行"):
        read_sheet(_xlsx([["编码", "名称"], *body]), "x.xlsx", ["编码"], max_rows=100)
    assert len(read) == 102  # the header, 100 rows, and the one past the limit
    assert (
        len(read_sheet(_xlsx([["编码", "名称"], *body[:100]]), "x.xlsx", ["编码"], max_rows=100).rows) == 100
    )


def test_a_title_row_above_the_header_is_passed_over_and_a_missing_header_says_where_it_should_be():
    """Government sheets often carry a title (a merged 锦溪县场所清单) above the header: it was read as the
    header and every column was said to be missing."""
    required = ["名称", "类别", "地址"]
    sheet = read_sheet(
        "锦溪县场所清单,,\n名称,类别,地址\n老王杂货店,沿街店铺,方城路1号\n".encode(), "x.csv", required
    )
    assert sheet.header_row == 2 and sheet.rows == [
        (3, {"名称": "老王杂货店", "类别": "沿街店铺", "地址": "方城路1号"})
    ]
    with pytest.raises(TableError, match="第 1 行“锦溪县场所清单”不是表头"):
        read_sheet("锦溪县场所清单,,\n店名,类型,位置\n".encode(), "x.csv", required)
    with pytest.raises(TableError, match="缺少列"):  # a wrong header alone is told as before
        read_sheet("店名\n".encode(), "x.csv", required)


REQUIRED = ["名称", "类别", "地址"]


def test_a_hidden_first_sheet_is_never_read_and_the_sheet_read_is_named():
    """A workbook kept an old list as a hidden first sheet: its rows were imported, silently."""
    from openpyxl import Workbook

    wb = Workbook()
    old = wb.active
    old.title = "旧清单"
    old.append(REQUIRED)
    old.append(["旧店", "沿街店铺", "旧路1号"])
    old.sheet_state = "hidden"
    notes = wb.create_sheet("说明")
    notes.append(["列", "说明"])
    listed = wb.create_sheet("场所清单")
    listed.append(REQUIRED)
    listed.append(["新店", "沿街店铺", "新路2号"])
    out = io.BytesIO()
    wb.save(out)
    sheet = read_sheet(out.getvalue(), "x.xlsx", REQUIRED)
    assert [r["名称"] for _n, r in sheet.rows] == ["新店"]  # the visible sheet that has the header
    assert sheet.notes == ["已读取工作表“场所清单”；未读取：旧清单（隐藏）、说明"]


def test_a_two_cell_line_above_the_header_is_a_title_too():
    """填报单位：… 日期：… under the title: seven 缺少此列 on row 2 were said, the header being on row 3."""
    sheet = read_sheet(
        "锦溪县场所清单,,\n填报单位：城关镇,日期：2026-11-21,\n名称,类别,地址\n老王杂货店,沿街店铺,方城路1号\n".encode(),
        "x.csv",
        REQUIRED,
    )
    assert sheet.header_row == 3 and [n for n, _r in sheet.rows] == [4]


def test_a_value_merged_down_over_rows_belongs_to_each_row():
    """类别 merged over rows 2–4 was said to be empty on rows 3 and 4, though every row shows it."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(REQUIRED)
    for i in range(3):
        ws.append([f"店{i}", "沿街店铺" if i == 0 else None, f"路{i}号"])
    ws.merge_cells("B2:B4")
    ws.append(["店3", "学校", "路3号"])
    out = io.BytesIO()
    wb.save(out)
    sheet = read_sheet(out.getvalue(), "x.xlsx", REQUIRED)
    assert [r["类别"] for _n, r in sheet.rows] == ["沿街店铺", "沿街店铺", "沿街店铺", "学校"]
    assert sheet.notes == []  # one sheet: nothing to say


def test_a_tab_separated_csv_is_read_by_its_tabs_and_says_so():
    sheet = read_sheet("名称\t类别\t地址\n老王杂货店\t沿街店铺\t方城路1号,东\n".encode(), "x.csv", REQUIRED)
    assert sheet.rows == [(2, {"名称": "老王杂货店", "类别": "沿街店铺", "地址": "方城路1号,东"})]
    assert sheet.notes == ["文件以制表符分隔（而非逗号），已按制表符读取"]
    assert sheet.unknown_columns(["名称", "类别"]) == ["地址"]


def test_a_grouped_header_above_the_columns_is_passed_over():
    """多级表头: 基本信息 | 位置 | 负责人信息 merged over the columns, the column names on the row below (a name
    merged down over both rows belongs to the second too). Every column was said to be missing on row 1."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["基本信息", None, None, "位置", None, "负责人信息", None])
    ws.append([None, "类别", "地址", "纬度", "经度", "负责人", "联系电话"])
    ws.append(["老王杂货店", "沿街店铺", "方城路1号", "29.01", "121.9", "王某", "13800000000"])
    for merged in ("B1:C1", "D1:E1", "F1:G1"):
        ws.merge_cells(merged)
    ws["A1"] = "名称"  # 名称 merged down over the two header rows
    ws.merge_cells("A1:A2")
    out = io.BytesIO()
    wb.save(out)
    required = ["名称", "类别", "地址", "纬度", "经度", "负责人"]
    sheet = read_sheet(out.getvalue(), "x.xlsx", required)
    assert sheet.header_row == 2 and [n for n, _r in sheet.rows] == [3]
    assert sheet.rows[0][1]["名称"] == "老王杂货店" and sheet.notes == [
        "第 1 行为分组表头，已按第 2 行的列名读取"
    ]
    grouped = "基本信息,,,位置,,负责人信息,\n名称,类别,地址,纬度,经度,负责人,联系电话\n老王杂货店,沿街店铺,方城路1号,29.01,121.9,王某,\n"
    assert read_sheet(grouped.encode("gbk"), "x.csv", required).header_row == 2
    with pytest.raises(TableError, match="缺少列"):  # no row below it has every column: the first is told
        read_sheet("基本信息,,,位置,,负责人信息,\n店名,类型,地点,,,,\n".encode(), "x.csv", required)
