"""Reading and writing the spreadsheets people exchange: CSV in UTF-8 (with or without BOM) or GBK, and XLSX.

Imports read every cell as text (codes like 330802001001 must not become floats); exports
neutralise formula-leading cells so a spreadsheet never executes what a user typed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pandas as pd

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RowError:
    """One problem of an imported file: the row number as the user sees it in the file, the field, why."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"第 {self.row} 行「{self.field}」：{self.reason}"


class TableError(ValueError):
    """The file cannot be read at all (encoding, format, missing columns)."""


def decode_csv(data: bytes) -> str:
    """CSV bytes as text: UTF-8 (BOM or not) first, then GB18030 (a superset of GBK), else an error."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")


def read_table(data: bytes, filename: str, required: list[str]) -> pd.DataFrame:
    """The file's rows as text, columns stripped; a ``_row`` column holds each row's number in the file.

    CSV header is line 1 and XLSX header is row 1, so the first data row is row 2 in both.
    """
    name = filename.lower()
    if name.endswith((".xlsx", ".xlsm")):
        try:
            df = pd.read_excel(io.BytesIO(data), dtype=str, engine="openpyxl", keep_default_na=False)
        except Exception as exc:  # a broken workbook is the user's file, reported not raised
            raise TableError(f"无法读取 Excel 文件：{exc}") from exc
    elif name.endswith(".csv"):
        text = decode_csv(data)
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, csv.Error) as exc:
            raise TableError(f"CSV 格式错误：{exc}") from exc
    else:
        raise TableError("仅支持 .csv 或 .xlsx 文件")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(f"缺少列：{'、'.join(missing)}")
    df = df.apply(lambda col: col.astype(str).str.strip())
    df = df[~(df == "").all(axis=1)]  # blank lines at the end of a sheet are not rows
    df.insert(0, "_row", df.index + 2)
    return df.reset_index(drop=True)


def safe_cell(value):
    """A cell as it may be exported: text starting with = + - @ gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def to_xlsx(sheets: dict[str, pd.DataFrame]) -> bytes:
    """An XLSX workbook of the given sheets, every text cell passed through :func:`safe_cell`."""
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.map(safe_cell).to_excel(writer, sheet_name=name[:31], index=False)
    return out.getvalue()


def to_csv(frame: pd.DataFrame) -> bytes:
    """CSV in UTF-8 with BOM (so Excel opens Chinese correctly), cells neutralised."""
    return frame.map(safe_cell).to_csv(index=False).encode("utf-8-sig")
