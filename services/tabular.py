"""Reading and writing the spreadsheets people exchange: CSV in UTF-8 (with or without BOM) or GBK, and XLSX.

One reader for every import (venues, events, accounts): :func:`read_sheet` gives each row with its
number as the file shows it (a CSV's physical line where the record starts, counting blank lines and
the lines inside quoted multi-line cells; an XLSX sheet's row), every cell as text (codes like
330802001001 must not become floats), and a :class:`RowError` in Chinese for every row that cannot be
read as the header says (too many or too few cells, a broken quote). Importers list every bad row,
capped at :data:`MAX_LISTED` with the total (:func:`listed`). Exports neutralise formula-leading cells
and headers so a spreadsheet never executes what a user typed.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import PurePath

import pandas as pd

from domain.intake import UNSTORABLE, unstorable

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
#: The largest file any import reads.
MAX_BYTES = 20 * 1024 * 1024
#: How many problems an import lists at most (the total is said in one more line).
MAX_LISTED = 200
#: The field of a problem of a whole row (its cells do not match the header).
WHOLE_ROW = "整行"


@dataclass(frozen=True)
class RowError:
    """One problem of an imported file: the row number as the user sees it in the file, the field, why.

    Row 0 is the file as a whole (its encoding, its type, how many problems were left out)."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        if self.row <= 0:
            return f"「{self.field}」：{self.reason}"
        return f"第 {self.row} 行「{self.field}」：{self.reason}"


class TableError(ValueError):
    """The file cannot be read at all (encoding, format, missing or repeated columns, nothing in it);
    ``problems`` holds the header's problems one by one when there are several."""

    def __init__(self, message: str, problems: Sequence[RowError] = ()):
        super().__init__(message)
        self.problems = list(problems)


@dataclass
class Sheet:
    """A file's header and its rows: (row number as in the file, header → text), blank rows left out.

    ``problems`` are the rows that could not be read as the header says; they are not in ``rows``."""

    header: list[str]
    header_row: int
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    problems: list[RowError] = field(default_factory=list)
    #: What the reader decided that the importer should say (the worksheet read of several, a tab as the
    #: separator), in Chinese.
    notes: list[str] = field(default_factory=list)

    def unknown_columns(self, known: Sequence[str]) -> list[str]:
        """The header's columns that are not in ``known`` (an importer reads only its own: the others
        are left out, and the user should know which)."""
        return [h for h in self.header if h and h not in known]


def decode_csv(data: bytes) -> str:
    """CSV bytes as text: UTF-8 (BOM or not) first, then GB18030 (a superset of GBK), else an error."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")


def cell_text(value: object) -> str:
    """One cell as text, as a person reads it in the sheet: 13800000000 not 13800000000.0, a date as
    2026-11-21 and a date-time (what Excel gives for any date cell) as 2026-11-21 09:30:00, to the second;
    surrounding spaces stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        rounded = (value + timedelta(microseconds=500_000)).replace(microsecond=0)
        return rounded.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    return str(value).strip()


def cell_number(text: str) -> float | None:
    """A number as typed in a cell (a coordinate): full-width digits and point (a Chinese keyboard's) and
    spaces allowed; None when it is not a finite number."""
    try:
        x = float(unicodedata.normalize("NFKC", text).replace(" ", ""))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def read_sheet(
    data: bytes,
    filename: str,
    required: Sequence[str],
    *,
    max_bytes: int = MAX_BYTES,
    max_rows: int | None = None,
    aliases: Mapping[str, str] | None = None,
) -> Sheet:
    """The file's header (its first non-blank row) and rows; :class:`TableError` when it cannot be read
    at all. A row with cells beyond the header that hold text, or (CSV) with fewer cells than the
    header, or with a broken quote, is a problem of its row, in Chinese.

    The rows are read one at a time: a wrong header is refused before the rest is read, and a file of
    more than ``max_rows`` rows when the first row past the limit is met (a 400,000-row sheet took
    ~10 s and ~350 MB before its header was looked at).

    ``aliases``: other names of the importer's columns (another system's export: 工单编号 for 外部编号),
    read as the column they stand for when the file does not also have that column; each is said in
    :attr:`Sheet.notes`."""
    if len(data) > max_bytes:
        raise TableError(f"文件过大（{len(data) / 1048576:.1f} MB），上限 {max_bytes // 1048576} MB")
    suffix = PurePath(filename or "").suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm"):
        raise TableError("仅支持 CSV 或 XLSX 文件")
    broken: list[RowError] = []
    notes: list[str] = []
    strict = suffix == ".csv" and data[:4] != b"PK\x03\x04"  # an XLSX row has no "too few" cells
    if strict:
        text = decode_csv(data)
        first_line = next((line for line in text.splitlines() if line.strip()), "")
        separator = "\t" if "\t" in first_line and "," not in first_line else ","
        if separator == "\t":
            notes.append("文件以制表符分隔（而非逗号），已按制表符读取")
        records, broken = _csv_records(text, separator)
    else:
        records, notes = _xlsx_records(data, required)
    sheet: Sheet | None = None
    titles: list[tuple[int, list[str]]] = []
    grouped: tuple[int, TableError] | None = None  # the first row tried as the header, and why not

    def no_header(exc: TableError) -> TableError:
        if titles:  # said where the header should be, not seven 缺少此列 about a title
            first, text = titles[0][0], next(v for v in titles[0][1] if v)
            return TableError(
                f"第 {first} 行“{text[:30]}”不是表头，之后也没有找到表头：表头（{'、'.join(required)} …）"
                "须在标题行之下的第一行，请核对后重新上传",
                exc.problems,
            )
        return exc

    for n, cells in records:
        values = [cell_text(c) for c in cells]
        if not any(values):
            continue  # blank rows are not rows (their numbers still count)
        if sheet is None:
            if grouped is None and _title_row(values, required) and len(titles) < MAX_TITLE_ROWS:
                titles.append((n, values))  # 锦溪县场所清单 above the header
                continue
            try:
                sheet = _header(n, _aliased(values, aliases or {}, notes), required)
            except TableError as exc:
                if grouped is None:
                    # 多级表头 (基本信息 | 位置 | 负责人信息 merged over the columns): the header may be a row below
                    grouped = (n, exc)
                    continue
                if n - grouped[0] < MAX_TITLE_ROWS:  # the rows below it, tried as the header in turn
                    continue
                raise no_header(grouped[1]) from exc
            if grouped is not None:
                notes.append(f"第 {grouped[0]} 行为分组表头，已按第 {n} 行的列名读取")
            elif titles:
                title = next(v for v in titles[0][1] if v)
                notes.append(f"第 {titles[0][0]} 行“{title[:30]}”为标题，已按第 {n} 行的表头读取")
            continue
        if max_rows is not None and len(sheet.rows) + len(sheet.problems) >= max_rows:
            raise TableError(f"一次最多导入 {max_rows} 行（本文件超过此数），请分成多个文件")
        row, problem = _row(n, values, sheet.header, strict)
        if problem is not None:
            sheet.problems.append(problem)
        else:
            sheet.rows.append((n, row))
    if sheet is None and grouped is not None:  # no row below it has every column: the first is told
        raise no_header(grouped[1])
    if sheet is None and titles:  # only what looked like a title: it was the (wrong) header
        sheet = _header(titles[0][0], titles[0][1], required)
    if sheet is None:
        raise TableError("文件为空：第一行应为表头")
    sheet.problems += broken
    sheet.problems.sort(key=lambda p: p.row)
    sheet.notes = notes
    return sheet


#: Rows above the header a government sheet often has (a title, a date line), passed over.
MAX_TITLE_ROWS = 3


def _title_row(values: list[str], required: Sequence[str]) -> bool:
    """A title above the header: one or two filled cells (a merged title; 填报单位：… 日期：…), none of them
    a column the file must have, in a file that must have three columns or more (a header of one or
    two columns is not taken for a title)."""
    filled = [v.lstrip("\ufeff").strip() for v in values if v.strip()]
    return len(required) >= 3 and 1 <= len(filled) <= 2 and not any(f in required for f in filled)


def _aliased(values: list[str], aliases: Mapping[str, str], notes: list[str]) -> list[str]:
    """A header row with each alias read as its column (unless the file has that column too or the alias
    twice), and a note for each."""
    names = [v.lstrip("\ufeff").strip() for v in values]
    out = list(values)
    for i, name in enumerate(names):
        column = aliases.get(name)
        if column and column not in names and names.count(name) == 1 and column not in out:
            out[i] = column
            notes.append(f"列“{name}”按“{column}”读取")
    return out


def _header(n: int, values: list[str], required: Sequence[str]) -> Sheet:
    header = [v.lstrip("\ufeff").strip() for v in values]
    missing = [c for c in required if c not in header]
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    problems = [RowError(n, c, "缺少此列") for c in missing] + [RowError(n, c, "列名重复") for c in repeated]
    if missing:
        raise TableError(f"缺少列：{'、'.join(missing)}", problems)
    if repeated:
        raise TableError(f"列名重复：{'、'.join(repeated)}", problems)
    return Sheet(header=header, header_row=n)


def _row(
    n: int, values: list[str], header: list[str], strict: bool
) -> tuple[dict[str, str], RowError | None]:
    """One row's cells by their header, or why the row cannot be read as the header says."""
    width = len(header)
    stray = [v for i, v in enumerate(values) if v and (i >= width or not header[i])]
    if stray:
        shown = "、".join(f"“{v[:20]}”" for v in stray[:3])
        if not strict:
            reason = f"没有列名的列里有内容：{shown}（请删除，或补上列名）"
        elif len(values) > width:
            reason = (
                f"本行有 {len(values)} 个单元格，多于表头的 {width} 列，多出的内容：{shown}"
                "（单元格里的逗号须用英文双引号括起来）"
            )
        else:
            reason = f"没有列名的列里有内容：{shown}（请删除，或补上列名）"
        return {}, RowError(n, WHOLE_ROW, reason)
    if strict and len(values) < width:
        return {}, RowError(
            n,
            WHOLE_ROW,
            f"本行只有 {len(values)} 个单元格，表头有 {width} 列（可能少了逗号，或引号没有成对）",
        )
    bad = next((h for i, h in enumerate(header) if h and i < len(values) and unstorable(values[i])), None)
    if bad is not None:
        return {}, RowError(n, bad, UNSTORABLE)
    return {h: (values[i] if i < len(values) else "") for i, h in enumerate(header) if h}, None


def _csv_records(text: str, separator: str = ",") -> tuple[Iterator[tuple[int, list[str]]], list[RowError]]:
    """The CSV's records with the physical line each starts on, and the problems of broken quotes."""
    broken: list[RowError] = []

    def records() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True, delimiter=separator)
        ended = 0
        while True:
            start = ended + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                at_end = "end of data" in str(exc)
                broken.append(
                    RowError(
                        start,
                        WHOLE_ROW,
                        "引号没有闭合：从本行起到文件末尾都被读成了一个单元格"
                        if at_end
                        else "引号使用有误：用引号括起的单元格，结束引号后应紧跟逗号或换行",
                    )
                )
                if at_end:
                    return
                ended = reader.line_num
                continue
            ended = reader.line_num
            yield start, cells

    return records(), broken


#: An XLSX up to this size is loaded whole, so that its merged cells are known (a value merged down
#: over several rows belongs to each of them); a larger one is streamed (read-only) without that.
WHOLE_LOAD_BYTES = 3 * 1024 * 1024
#: How many rows of a worksheet are looked at for the header when choosing the sheet to read.
HEADER_SEARCH_ROWS = 10


def _xlsx_records(data: bytes, required: Sequence[str] = ()) -> tuple[Iterator[tuple[int, list]], list[str]]:
    """The rows of the worksheet to read, with their sheet row numbers, and what was decided: of the
    visible sheets, the first whose header (within its first rows) has every required column, else the
    first visible one. A hidden sheet (an old list kept in the workbook) is never read."""
    from openpyxl import load_workbook

    whole = len(data) <= WHOLE_LOAD_BYTES
    try:
        wb = load_workbook(io.BytesIO(data), read_only=not whole, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        raise TableError("无法读取 XLSX 文件（文件损坏或不是 Excel 工作簿）") from exc
    try:
        visible = [ws for ws in wb.worksheets if ws.sheet_state == "visible"]
        if not visible:
            raise TableError("工作簿中没有可见的工作表，请取消隐藏要导入的工作表")
        chosen = next((ws for ws in visible if _has_header(ws, required)), visible[0])
    except TableError:
        wb.close()
        raise
    except (KeyError, ValueError, TypeError, OSError) as exc:
        wb.close()
        raise TableError("无法读取 XLSX 文件（工作表已损坏）") from exc
    notes = []
    if len(wb.worksheets) > 1:
        skipped = [ws.title + ("（隐藏）" if ws.sheet_state != "visible" else "") for ws in wb.worksheets]
        skipped = [t for ws, t in zip(wb.worksheets, skipped, strict=True) if ws is not chosen]
        notes.append(f"已读取工作表“{chosen.title}”；未读取：{'、'.join(skipped)}")
    return _xlsx_rows(wb, chosen), notes


def _has_header(ws, required: Sequence[str]) -> bool:
    """Whether one of the sheet's first rows holds every required column name."""
    if not required:
        return True
    for row in ws.iter_rows(max_row=HEADER_SEARCH_ROWS, values_only=True):
        names = {cell_text(v).lstrip("\ufeff") for v in row}
        if all(c in names for c in required):
            return True
    return False


def _xlsx_rows(wb, ws) -> Iterator[tuple[int, list]]:
    """A worksheet, row by row (the caller may stop early; the workbook is closed then); a value merged
    down over several rows is each row's (a sheet loaded whole knows its merged cells)."""
    try:
        down: dict[int, list[tuple[int, object]]] = {}  # row → (column, value merged down into it)
        if hasattr(ws, "merged_cells"):  # loaded whole
            for merged in ws.merged_cells.ranges:
                if merged.max_row > merged.min_row:  # merged down: each row shows the value
                    value = ws.cell(merged.min_row, merged.min_col).value
                    for r in range(merged.min_row + 1, merged.max_row + 1):
                        down.setdefault(r, []).append((merged.min_col, value))
        else:
            ws.reset_dimensions()  # some writers store a wrong sheet size: read what is there
        for row in ws.iter_rows():
            number = next((c.row for c in row if getattr(c, "row", None) is not None), None)
            if number is not None:
                values = [c.value for c in row]
                for col, value in down.get(number, ()):
                    if col - 1 < len(values):
                        values[col - 1] = value
                yield number, values
    except (KeyError, ValueError, TypeError, OSError) as exc:  # a sheet damaged past its first rows
        raise TableError("无法读取 XLSX 文件（工作表已损坏）") from exc
    finally:
        wb.close()


def listed(problems: Sequence[RowError], limit: int = MAX_LISTED) -> list[RowError]:
    """The problems in row order, at most ``limit`` of them and then one line with the total."""
    ordered = sorted(problems, key=lambda p: p.row)
    if len(ordered) <= limit:
        return ordered
    return [*ordered[:limit], RowError(0, "合计", f"共 {len(ordered)} 处问题，以上仅列出前 {limit} 处")]


def read_table(data: bytes, filename: str, required: list[str]) -> pd.DataFrame:
    """:func:`read_sheet` as a frame of text with a ``_row`` column (a row that cannot be read as the
    header says is a :class:`TableError` here: importers use :func:`read_sheet` and list them)."""
    sheet = read_sheet(data, filename, required)
    if sheet.problems:
        raise TableError("；".join(map(str, sheet.problems[:MAX_LISTED])), sheet.problems)
    columns = ["_row", *(h for h in sheet.header if h)]
    return pd.DataFrame([{"_row": n, **row} for n, row in sheet.rows], columns=columns)


def safe_cell(value):
    """A cell as it may be exported: text starting with = + - @ gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def _safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and header passed through :func:`safe_cell`."""
    out = frame.map(safe_cell)
    out.columns = [safe_cell(str(c)) for c in frame.columns]
    return out


def to_xlsx(sheets: dict[str, pd.DataFrame]) -> bytes:
    """An XLSX workbook of the given sheets, every text cell and header passed through :func:`safe_cell`."""
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            _safe(frame).to_excel(writer, sheet_name=name[:31], index=False)
    return out.getvalue()


def import_template(sheet: str, notes: dict[str, str], example_code: str | None = None) -> bytes:
    """An import's XLSX template: the sheet ``sheet`` with the columns (``notes``' keys, in order) as its header,
    and a 说明 sheet saying what each column takes; ``{example}`` in a note becomes ``example_code`` (a
    code of the user's own area, not the demo's)."""
    example = example_code or "本地区的区划编码"
    explained = pd.DataFrame(
        {"列": list(notes), "说明": [n.replace("{example}", example) for n in notes.values()]}
    )
    return to_xlsx({sheet: pd.DataFrame(columns=list(notes)), "说明": explained})


def to_csv(frame: pd.DataFrame) -> bytes:
    """CSV in UTF-8 with BOM (so Excel opens Chinese correctly), cells and headers neutralised."""
    return _safe(frame).to_csv(index=False).encode("utf-8-sig")
