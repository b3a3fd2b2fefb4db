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
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import openpyxl
import pandas as pd
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
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
    if not math.isfinite(v):  # NaN, or ±inf (a rate over nothing): an empty cell, never "inf" in the file
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
    """The workbook: on each sheet the title (row 1), the period (row 2), the header, the rows.

    Written as SpreadsheetML text directly (:func:`_sheet_xml`), not cell by cell through openpyxl: a
    city's 月报 (≈ 8,000 cells, 621 departments) took ~0.9 s in openpyxl's XML writer alone, ~0.05 s so.
    The file reads back in openpyxl and Excel with the same values, number formats, fonts, fills,
    merged titles, widths and frozen header (tests/integration/test_report_book.py)."""
    names = [_sheet_name(sheet.name, k) for k, sheet in enumerate(sheets)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        n = len(sheets)
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument'
            '.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument'
            '.spreadsheetml.styles+xml"/>'
            + "".join(
                f'<Override PartName="/xl/worksheets/sheet{k + 1}.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                for k in range(n)
            )
            + "</Types>",
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{_RELS}"><Relationship Id="rId1" Type="{_DOC}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}"><sheets>'
            + "".join(
                f'<sheet name="{_xml(name)}" sheetId="{k + 1}" r:id="rId{k + 1}"/>'
                for k, name in enumerate(names)
            )
            + "</sheets></workbook>",
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{_RELS}">'
            + "".join(
                f'<Relationship Id="rId{k + 1}" Type="{_DOC}/worksheet" Target="worksheets/sheet{k + 1}.xml"/>'
                for k in range(n)
            )
            + f'<Relationship Id="rId{n + 1}" Type="{_DOC}/styles" Target="styles.xml"/></Relationships>',
        )
        z.writestr("xl/styles.xml", _STYLES)
        for k, sheet in enumerate(sheets):
            z.writestr(f"xl/worksheets/sheet{k + 1}.xml", _sheet_xml(title, subtitle, sheet))
    return out.getvalue()


def _xml(text: str) -> str:
    """Text as XML character data: escaped, without the control characters XML cannot hold."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(text: str) -> str:
    return _xml(text).replace('"', "&quot;")


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
#: The number formats' ids in styles.xml (custom formats start at 164).
_FORMAT_IDS = {kind: 164 + k for k, kind in enumerate(FORMATS)}
#: Cell styles (``s``): 0 plain, 1 title, 2 period line, 3 header, 4 wrapped text, then per number
#: format two: plain and wrapped (a number in a column wide enough to wrap).
_TITLE, _PERIOD, _HEADER, _WRAPPED = 1, 2, 3, 4


def _number_style(kind: str, wrap: bool) -> int:
    return 5 + 2 * list(FORMATS).index(kind) + int(wrap)


_WRAP = '<alignment vertical="top" wrapText="1"/>'
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<styleSheet xmlns="{_MAIN}">'
    f'<numFmts count="{len(FORMATS)}">'
    + "".join(
        f'<numFmt numFmtId="{_FORMAT_IDS[k]}" formatCode="{_xml_attr(f)}"/>' for k, f in FORMATS.items()
    )
    + "</numFmts>"
    '<fonts count="4"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="14"/><name val="Calibri"/></font>'
    '<font><sz val="11"/><color rgb="00555555"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill><fill><patternFill patternType="solid"><fgColor rgb="00DCE6F1"/><bgColor rgb="00DCE6F1"/>'
    "</patternFill></fill></fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    f'<cellXfs count="{5 + 2 * len(FORMATS)}">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="3" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1" '
    'applyAlignment="1"><alignment horizontal="center" vertical="center" wrapText="1"/></xf>'
    f'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">{_WRAP}</xf>'
    + "".join(
        f'<xf numFmtId="{_FORMAT_IDS[k]}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        f'<xf numFmtId="{_FORMAT_IDS[k]}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
        f'applyAlignment="1">{_WRAP}</xf>'
        for k in FORMATS
    )
    + '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _sheet_name(name: str, k: int) -> str:
    return name[:31] or f"Sheet{k + 1}"


def _text_cell(ref: str, text: str, style: int) -> str:
    space = ' xml:space="preserve"' if text != text.strip() else ""
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{_xml(text)}</t></is></c>'


def _sheet_xml(title: str, subtitle: str, sheet: Sheet) -> str:
    """One worksheet's XML: title, period, header, the rows (numbers with their kind's format), widths
    fitted to the longest cell shown, the widest columns wrapped, the header frozen."""
    ncol = max(len(sheet.columns), 1)
    letters = [get_column_letter(j + 1) for j in range(ncol)]
    widths = [_text_width(c.header) for c in sheet.columns]
    body: list[list[tuple[str, object]]] = []
    for raw in sheet.rows:
        kinds = [v.kind if isinstance(v, Cell) else c.kind for c, v in zip(sheet.columns, raw, strict=True)]
        raw = [v.value if isinstance(v, Cell) else v for v in raw]
        values = [
            safe_cell(None if v is None else str(v)) if k == "text" else number(v, k)
            for k, v in zip(kinds, raw, strict=True)
        ]
        for j, (k, v) in enumerate(zip(kinds, values, strict=True)):
            widths[j] = max(widths[j], _text_width(shown(v, k)))
        body.append(list(zip(kinds, values, strict=True)))
    wrap = [w + 2 > WRAP_WIDTH for w in widths]
    rows = [
        f'<row r="1">{_text_cell("A1", f"{title} · {sheet.name}", _TITLE)}</row>',
        f'<row r="2">{_text_cell("A2", subtitle, _PERIOD)}</row>',
        f'<row r="{TITLE_ROWS + 1}">'
        + "".join(
            _text_cell(f"{letters[j]}{TITLE_ROWS + 1}", str(safe_cell(c.header)), _HEADER)
            for j, c in enumerate(sheet.columns)
        )
        + "</row>",
    ]
    for i, cells in enumerate(body):
        r = TITLE_ROWS + 2 + i
        parts = []
        for j, (k, v) in enumerate(cells):
            ref = f"{letters[j]}{r}"
            if v is None:  # an empty number keeps its column's format, as openpyxl wrote it
                if k != "text":
                    parts.append(f'<c r="{ref}" s="{_number_style(k, wrap[j])}"/>')
                continue
            if k == "text":
                parts.append(_text_cell(ref, str(v), _WRAPPED if wrap[j] else 0))
            else:
                parts.append(f'<c r="{ref}" s="{_number_style(k, wrap[j])}"><v>{v!r}</v></c>')
        rows.append(f'<row r="{r}">{"".join(parts)}</row>')
    cols = "".join(
        f'<col min="{j + 1}" max="{j + 1}" width="{min(max(w + 2, 6), WRAP_WIDTH)}" customWidth="1"/>'
        for j, w in enumerate(widths)
    )
    last = letters[ncol - 1]
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<worksheet xmlns="{_MAIN}" xmlns:r="{_DOC}">'
        '<sheetViews><sheetView workbookViewId="0">'
        f'<pane ySplit="{TITLE_ROWS + 1}" topLeftCell="A{TITLE_ROWS + 2}" activePane="bottomLeft" state="frozen"/>'
        "</sheetView></sheetViews>"
        + (f"<cols>{cols}</cols>" if cols else "")
        + f"<sheetData>{''.join(rows)}</sheetData>"
        + (  # a one-column sheet has nothing to merge (Excel repairs a one-cell merge)
            f'<mergeCells count="2"><mergeCell ref="A1:{last}1"/><mergeCell ref="A2:{last}2"/></mergeCells>'
            if ncol > 1
            else ""
        )
        + "</worksheet>"
    )


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


#: Said beside 投诉率 when the unit's population was estimated by the boundary import (the report's and
#: the page's 备注 alike: :func:`noted`).
ESTIMATED = "人口为估算"


def noted(rank_note: object, row: pd.Series) -> str:
    """A row's 备注: its ranking note, and 人口为估算 when its unit's population was estimated (area
    tables carry ``population_estimated``)."""
    flag = row.get("population_estimated", False)
    parts = (rank_note if isinstance(rank_note, str) else "", ESTIMATED if pd.notna(flag) and flag else "")
    return "；".join(x for x in parts if x)


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
        decimals=kpi.RANK_DECIMALS.get(metric, 3),
        no_value_note=kpi.NO_VALUE_NOTES.get(metric, "无数据"),
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
                noted(p.note, r) if per_resident else p.note,
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
        last = min(ws.max_row, TITLE_ROWS + 1 + max_rows)  # the sheet's rows, not blank ones past its end
        for row in ws.iter_rows(min_row=TITLE_ROWS + 2, max_row=last):
            rows.append(
                [shown(c.value, _kind_of(c.number_format)) if c.value is not None else "" for c in row]
            )
        out.append(PreviewSheet(ws.title, title, subtitle, pd.DataFrame(rows, columns=header)))
    return out
