"""Spreadsheet in and out: encodings detected, formula-leading cells neutralised on export."""

import io

import pandas as pd
import pytest

from services.tabular import TableError, decode_csv, read_table, safe_cell, to_csv, to_xlsx


def test_gbk_and_utf8_with_bom_decode_to_the_same_text():
    text = "类别,标题\n城镇管理,占道\n"
    assert decode_csv(text.encode("gbk")) == decode_csv(("\ufeff" + text).encode("utf-8")) == text


def test_rows_keep_their_file_row_numbers_and_codes_stay_text():
    df = read_table("编码,名称\n330802001001,甲\n\n000123,乙\n".encode(), "x.csv", ["编码"])
    assert df["_row"].tolist() == [2, 3]  # pandas skips the blank line; numbering follows the data rows
    assert df["编码"].tolist() == ["330802001001", "000123"]


def test_an_unknown_file_type_is_refused():
    with pytest.raises(TableError, match="仅支持"):
        read_table(b"x", "x.pdf", [])


@pytest.mark.parametrize("payload", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "=HYPERLINK(\"http://x\")"])
def test_formula_leading_cells_are_neutralised_in_exports(payload):
    assert safe_cell(payload) == "'" + payload
    frame = pd.DataFrame({"标题": [payload]})
    assert pd.read_csv(io.BytesIO(to_csv(frame)), dtype=str, encoding="utf-8-sig").loc[0, "标题"] == "'" + payload
    back = pd.read_excel(io.BytesIO(to_xlsx({"s": frame})), dtype=str)
    assert back.loc[0, "标题"] == "'" + payload


def test_plain_text_and_numbers_are_exported_unchanged():
    assert safe_cell("占道经营") == "占道经营" and safe_cell(-3) == -3
