"""The 日报/周报/月报 workbook as it is sent up: a title row with the area and the report, the period
under it, fitted column widths, numbers and percentages stored as numbers with number formats (never
text like ``'+0.0个百分点``, never "-0.0"), and the ranking with ties and small samples done properly
(:mod:`domain.ranking`). :func:`read_book` gives the same workbook back as the tables an on-screen
preview shows, each cell as Excel would display it.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from domain import kpi
from domain.ranking import rank_for_report
from services.tabular import safe_cell

#: Number formats by column kind (Excel's own codes; the zero section has no sign).
FORMATS = {
    "int": "#,##0",
    "dec1": "0.0",
    "dec2": "0.00",
    "pct": "0.0%",
    "rel": "+0.0%;-0.0%;0.0%",
    "pp": '+0.0"个百分点";-0.0"个百分点";0.0"个百分点"',
}
#: The decimals each kind shows (of the stored value): a value that shows as zero is stored as 0.0.
SHOWN_DECIMALS = {"int": 0, "dec1": 1, "dec2": 2, "pct": 3, "rel": 3, "pp": 1}
TITLE_ROWS = 2  # the title and the period; the header is the row after them
WRAP_WIDTH = 80  # the widest column (the 预警 sentences wrap in it)


@dataclass(frozen=True)
class Col:
    header: str
    kind: str = "text"  # text or one of FORMATS


@dataclass(frozen=True)
class Cell:
    """A value whose kind differs from its column's (the 概况 sheet: one figure per row)."""

    value: object
    kind: str


@dataclass
class Sheet:
    name: str
    columns: list[Col]
    rows: list[list] = field(default_factory=list)


def number(value, kind: str):
    """``value`` as the cell stores it: None when missing, an int for ``int``, else a float that is
    exactly 0.0 whenever it would show as zero (no "-0.0")."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(v):
        return None
    if kind == "int":
        return round(v)
    if round(v, SHOWN_DECIMALS[kind]) == 0:
        return 0.0
    return v


def _text_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: wide (CJK) characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def shown(value, kind: str) -> str:
    """The cell as Excel displays it (for widths and for the on-screen preview)."""
    if value is None:
        return ""
    if kind == "text":
        return str(value)
    v = float(value)
    if kind == "int":
        return f"{int(v):,}"
    if kind in ("dec1", "dec2"):
        return f"{v:.{SHOWN_DECIMALS[kind]}f}"
    if kind == "pct":
        return f"{v * 100:.1f}%"
    if kind == "rel":
        return f"{v * 100:+.1f}%" if v else "0.0%"
    return f"{v:+.1f}个百分点" if v else "0.0个百分点"  # pp


def write_book(title: str, subtitle: str, sheets: Sequence[Sheet]) -> bytes:
    """The workbook: on each sheet the title (row 1), the period (row 2), the header, the rows."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    head_fill = PatternFill("solid", fgColor="DCE6F1")
    for sheet in sheets:
        ws = book.create_sheet(sheet.name[:31])
        ncol = len(sheet.columns)
        ws.append([f"{title} · {sheet.name}"])
        ws.append([subtitle])
        ws["A1"].font = Font(bold=True, size=14)
        ws["A2"].font = Font(color="555555")
        for r in (1, 2):
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=max(ncol, 1))
        ws.append([safe_cell(c.header) for c in sheet.columns])
        for cell in ws[TITLE_ROWS + 1]:
            cell.font = Font(bold=True)
            cell.fill = head_fill
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        widths = [_text_width(c.header) for c in sheet.columns]
        for raw in sheet.rows:
            kinds = [
                v.kind if isinstance(v, Cell) else c.kind for c, v in zip(sheet.columns, raw, strict=True)
            ]
            raw = [v.value if isinstance(v, Cell) else v for v in raw]
            values = [
                safe_cell(None if v is None else str(v)) if k == "text" else number(v, k)
                for k, v in zip(kinds, raw, strict=True)
            ]
            ws.append(values)
            row = ws.max_row
            for j, (k, v) in enumerate(zip(kinds, values, strict=True)):
                if k != "text":
                    ws.cell(row=row, column=j + 1).number_format = FORMATS[k]
                widths[j] = max(widths[j], _text_width(shown(v, k)))
        for j, w in enumerate(widths):
            letter = get_column_letter(j + 1)
            ws.column_dimensions[letter].width = min(max(w + 2, 6), WRAP_WIDTH)
            if w + 2 > WRAP_WIDTH:
                for (cell,) in ws.iter_rows(min_row=TITLE_ROWS + 2, min_col=j + 1, max_col=j + 1):
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = ws.cell(row=TITLE_ROWS + 2, column=1)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ------------------------------------------------------------------ the KPI tables


KPI_COLUMNS = [
    Col("排名", "int"),
    Col("名称"),
    Col("事件数(N)", "int"),
    Col("投诉率(件/万人)", "dec2"),
    Col("解决率", "pct"),
    Col("满意率", "pct"),
    Col("满意率环比", "pp"),
    Col("满意率同比", "pp"),
    Col("按时办结率", "pct"),
    Col("平均处置时长(小时)", "dec1"),
    Col("事件数环比", "rel"),
    Col("事件数同比", "rel"),
    Col("备注"),
]
#: The decimals a ranked metric is compared at (as the report shows it): ties are ties on paper.
RANK_DECIMALS = {"complaint_rate": 2, "mean_handling_hours": 1}
#: Why a unit with events has no value of the metric.
NO_VALUE = {"satisfaction_rate": "暂无评价", "on_time_rate": "暂无办结", "mean_handling_hours": "暂无办结"}


def kpi_sheet(
    name: str, table: pd.DataFrame, metric: str, min_events: int, *, per_resident: bool = True
) -> Sheet:
    """A KPI table (:func:`services.analytics.kpi_by`) ranked for the report: competition ranking on
    ``metric`` as shown, units under ``min_events`` events ranked after the others with the note 样本少,
    units without events unranked (备注 无事件). ``per_resident=False`` (departments, who have no
    residents) leaves out the 投诉率 column."""
    higher = kpi.METRICS[metric][1] if metric in kpi.METRICS else True
    places = rank_for_report(
        table[metric].astype("float64").tolist(),
        table["events"].astype("int64").tolist(),
        min_size=min_events,
        higher_is_better=higher,
        decimals=RANK_DECIMALS.get(metric, 3),
        no_value_note=NO_VALUE.get(metric, "无数据"),
    )
    rows = []
    for (_, r), p in zip(table.iterrows(), places, strict=True):
        pp = [
            r[c] * 100 if pd.notna(r[c]) else None
            for c in ("satisfaction_rate_prev_change", "satisfaction_rate_yoy_change")
        ]
        rows.append(
            [
                p.rank,
                r["name"],
                r["events"],
                r["complaint_rate"],
                r["resolution_rate"],
                r["satisfaction_rate"],
                *pp,
                r["on_time_rate"],
                r["mean_handling_hours"],
                r["events_prev_change"],
                r["events_yoy_change"],
                p.note,
            ]
        )
    rows.sort(key=lambda row: (row[0] is None, row[0] or 0, -(row[2] or 0)))
    if per_resident:
        return Sheet(name, KPI_COLUMNS, rows)
    return Sheet(name, KPI_COLUMNS[:3] + KPI_COLUMNS[4:], [r[:3] + r[4:] for r in rows])


# ------------------------------------------------------------------ the preview


@dataclass(frozen=True)
class PreviewSheet:
    name: str
    title: str
    subtitle: str
    table: pd.DataFrame  # every cell as Excel shows it


def _kind_of(fmt: str) -> str:
    return next((k for k, f in FORMATS.items() if f == fmt), "text")


def read_book(data: bytes, max_rows: int = 200) -> list[PreviewSheet]:
    """A report workbook as it reads on screen: per sheet its title, period line and table (as shown)."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    out = []
    for ws in book.worksheets:
        title = str(ws.cell(row=1, column=1).value or "")
        subtitle = str(ws.cell(row=2, column=1).value or "")
        header = [str(c.value) for c in ws[TITLE_ROWS + 1]]
        rows = []
        for row in ws.iter_rows(min_row=TITLE_ROWS + 2, max_row=TITLE_ROWS + 1 + max_rows):
            rows.append(
                [shown(c.value, _kind_of(c.number_format)) if c.value is not None else "" for c in row]
            )
        out.append(PreviewSheet(ws.title, title, subtitle, pd.DataFrame(rows, columns=header)))
    return out
