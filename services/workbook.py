"""Streaming Excel (and CSV) writer for exports: safe to open, typed cells, flat memory.

Pure: no Streamlit, no database. The export service hands it the columns on screen and the
rows of the list's own query; this module turns them into a workbook row by row.

Safety (see docs/quality.md, "Export safety"):
- every user string is a string cell, so `=1+1` or `#N/A` can never become a formula or an
  error cell; strings that Excel would take for a formula on re-edit also carry the quote prefix;
- characters XML cannot hold are replaced with U+FFFD rather than crashing the export;
- text longer than an Excel cell can hold is shortened with a visible marker saying how much is
  missing, and the About sheet counts the shortened cells;
- Excel reads `_xHHHH_` inside any string as the character U+HHHH (OOXML's own escape), so a user
  who typed `_x0007_` got a control character back and `_x0041_` read as `A`: every `_x` is
  written as `_x005F_x` (an escaped underscore, then `x`), which Excel shows as typed
  (`excel_text`; openpyxl neither escapes nor decodes this form, so it is done here).

Speed: openpyxl builds a Cell object per value, binds each value twice and serialises it
through a general-purpose path that checks for formulas, comments and hyperlinks; profiling
10,000 rows x 17 columns showed four fifths of the time there. The data sheet's rows are
therefore written here as lxml elements straight into openpyxl's own write-only sheet stream:
openpyxl still writes the package, styles, sheet top and tail, and lxml still escapes every
string. The cells are the ones openpyxl would write (inline strings, numbers, styled dates);
only formula and error cells can no longer be produced at all, since no code path emits them.
"""

import contextlib
import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, NamedTuple, TextIO

from lxml.etree import Element, SubElement
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel

from services.clock import LONDON

PROTECTIVE_MARKING = "OFFICIAL-SENSITIVE — contains personal data"
ABOUT_SHEET_TITLE = "About this export"

# Excel's documented limit, counted in UTF-16 code units (an emoji counts twice).
EXCEL_CELL_LIMIT = 32_767
SHORTENED_LENGTH = 32_000
SHEET_TITLE_LIMIT = 31

# Characters XML 1.0 cannot hold. openpyxl's own ILLEGAL_CHARACTERS_RE covers only the C0
# controls; lxml also refuses lone surrogates and U+FFFE/U+FFFF, so they are listed here too.
XML_ILLEGAL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT_CHARACTER = "\ufffd"

# A leading = + - @ makes Excel (or a CSV reader) evaluate the text as a formula; a leading
# tab, CR or LF can hide such a character from the eye while it is still read as one.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")

# Excel stores dates as serial numbers; the number format is what shows them as dates.
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
DATE_FORMAT = "dd/mm/yyyy"
MONTH_FORMAT = "mm/yyyy"  # a month held as the date of its first day
HOURS_FORMAT = "0.0"

SHEET_TITLE_FORBIDDEN = re.compile(r"[\\/*?:\[\]]")
RESERVED_SHEET_TITLES = {"history", ABOUT_SHEET_TITLE.casefold()}


class ColumnKind(StrEnum):
    text = "text"
    identifier = "identifier"
    datetime = "datetime"
    date = "date"
    month = "month"  # a calendar month: an Excel date (its first day) shown as mm/yyyy
    number = "number"
    hours = "hours"
    yes_no = "yes_no"
    score = "score"  # an instrument's total: a number when every item was answered, else the words saying so


NUMBER_FORMATS = {
    ColumnKind.datetime: DATETIME_FORMAT,
    ColumnKind.date: DATE_FORMAT,
    ColumnKind.month: MONTH_FORMAT,
    ColumnKind.hours: HOURS_FORMAT,
}

DEFAULT_WIDTHS = {
    ColumnKind.text: 30,
    ColumnKind.identifier: 14,
    ColumnKind.datetime: 17,
    ColumnKind.date: 12,
    ColumnKind.month: 10,
    ColumnKind.number: 10,
    ColumnKind.hours: 9,
    ColumnKind.yes_no: 8,
    ColumnKind.score: 12,
}
# Room for the auto-filter's drop-down button beside the heading.
FILTER_BUTTON_WIDTH = 4
MAXIMUM_DEFAULT_WIDTH = 60


@dataclass(frozen=True)
class ExportColumn:
    key: str
    heading: str
    kind: ColumnKind
    width: int | None = None


def excel_text(text: str) -> str:
    """Text as stored in the sheet's XML, so that Excel shows it as typed: `_x` becomes `_x005F_x`."""
    return text.replace("_x", "_x005F_x") if "_x" in text else text


class SafeText(NamedTuple):
    """Text ready for a cell: what to write, whether to quote-prefix it, whether it was cut."""

    text: str
    quote_prefix: bool
    shortened: bool


def safe_text(value: str) -> SafeText:
    """Make a user's string safe to put in a spreadsheet cell without changing what it says."""
    text = XML_ILLEGAL_CHARACTERS.sub(REPLACEMENT_CHARACTER, value)
    shortened = False
    # Only a string of more than half the limit in code points can exceed it in UTF-16 units;
    # skipping the encode for the rest keeps ordinary cells cheap.
    if len(text) > EXCEL_CELL_LIMIT // 2 and utf16_length(text) > EXCEL_CELL_LIMIT:
        text = shorten(text)
        shortened = True
    return SafeText(text, text.startswith(FORMULA_TRIGGERS), shortened)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str) -> str:
    """The first SHORTENED_LENGTH UTF-16 units of text, then a marker saying how much is missing."""
    # Decoding with errors="ignore" drops half a surrogate pair left at the cut, so an emoji is
    # never split into an unpaired (and unwritable) surrogate.
    kept = text.encode("utf-16-le")[: 2 * SHORTENED_LENGTH].decode("utf-16-le", errors="ignore")
    missing = len(text) - len(kept)
    return f"{kept} […truncated: {missing:,} more characters — see the record in the app]"


def london_local(moment: datetime) -> datetime:
    """UK wall-clock time without tzinfo, since Excel cells cannot hold a timezone."""
    # Times are stored in UTC (architecture.md, "Time"); SQLite hands them back without tzinfo.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LONDON).replace(tzinfo=None)


ExcelValue = SafeText | int | float | Decimal | datetime | date | None

YES = SafeText("Yes", quote_prefix=False, shortened=False)
NO = SafeText("No", quote_prefix=False, shortened=False)


def convert_value(column: ExportColumn, value: object) -> ExcelValue:
    """The value a cell of this column should hold; text comes back as SafeText."""
    if value is None:
        return None
    converter = CONVERTERS[column.kind]
    try:
        return converter(value)
    except TypeError as error:
        raise TypeError(f"export column {column.key!r} ({column.kind}): {error}") from None


def convert_text(value: object) -> SafeText:
    return safe_text(value if isinstance(value, str) else str(value))


def convert_datetime(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    return london_local(value)


def convert_date(value: object) -> date:
    # A datetime is a date too: take the day it was in London, not in UTC.
    if isinstance(value, datetime):
        return london_local(value).date()
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value


def convert_month(value: object) -> date:
    """The first day of the month the value falls in (a London date), for a mm/yyyy cell."""
    return convert_date(value).replace(day=1)


def convert_number(value: object) -> int | float | Decimal | None:
    if not isinstance(value, int | float | Decimal):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    # Excel has no NaN or infinity; openpyxl would write a file Excel reports as corrupt.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def convert_hours(value: object) -> int | float | Decimal | None:
    if isinstance(value, timedelta):
        return value.total_seconds() / 3600
    return convert_number(value)


def convert_score(value: object):
    """A total of every item (its digits) as a number; a partial sum ("18 (partial, 6 of 9)") as that text."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return convert_text(value) if isinstance(value, str) else convert_number(value)


def convert_yes_no(value: object) -> SafeText:
    return YES if value else NO


CONVERTERS: dict[ColumnKind, Callable[[object], ExcelValue]] = {
    ColumnKind.text: convert_text,
    ColumnKind.identifier: convert_text,
    ColumnKind.datetime: convert_datetime,
    ColumnKind.date: convert_date,
    ColumnKind.month: convert_month,
    ColumnKind.number: convert_number,
    ColumnKind.hours: convert_hours,
    ColumnKind.yes_no: convert_yes_no,
    ColumnKind.score: convert_score,
}


def row_values(columns: Sequence[ExportColumn], row: Sequence | Mapping) -> Iterable[tuple[ExportColumn, object]]:
    """Pair each column with its value; a mapping row is read by key, a sequence by position."""
    if isinstance(row, Mapping):
        return ((column, row[column.key]) for column in columns)
    return zip(columns, row, strict=True)


def sheet_title(title: str) -> str:
    """A sheet name Excel accepts: at most 31 characters, none of \\ / * ? : [ ], no edge quote."""
    name = SHEET_TITLE_FORBIDDEN.sub(" ", XML_ILLEGAL_CHARACTERS.sub("", title))
    name = " ".join(name.split())[:SHEET_TITLE_LIMIT].strip(" '")
    if not name:
        return "Export"
    if name.casefold() in RESERVED_SHEET_TITLES:
        return f"{name} (data)"
    return name


def column_width(column: ExportColumn) -> int:
    if column.width is not None:
        return column.width
    heading_width = len(column.heading) + FILTER_BUTTON_WIDTH
    return min(max(DEFAULT_WIDTHS[column.kind], heading_width), MAXIMUM_DEFAULT_WIDTH)


def text_cell(sheet, text: SafeText, *, bold: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, excel_text(text.text))
    # Set after the value: openpyxl infers "f" for a leading "=" and "e" for "#N/A" when the
    # value is assigned, and only an explicit "s" keeps the text a string.
    cell.data_type = "s"
    if text.quote_prefix:
        cell.quotePrefix = True
    if bold:
        cell.font = Font(bold=True)
    return cell


XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


def style_id(sheet, *, bold: bool = False, quote_prefix: bool = False, number_format: str | None = None) -> str:
    """Register a cell format with the workbook and return its index, as a cell's `s` attribute."""
    cell = WriteOnlyCell(sheet)
    if bold:
        cell.font = Font(bold=True)
    if quote_prefix:
        cell.quotePrefix = True
    if number_format is not None:
        cell.number_format = number_format
    return str(cell.style_id)


class RowWriter:
    """Turns one row of values into a sheet row element, counting the text cells it shortened.

    Text is always an inline string (`t="inlineStr"`), everything else a number (`t="n"`, dates
    as Excel serial numbers with a date format): there is no way for a value to become a formula
    or an error cell.
    """

    def __init__(self, sheet, columns: Sequence[ExportColumn]):
        self.columns = columns
        self.letters = [get_column_letter(position) for position in range(1, len(columns) + 1)]
        self.quoted = style_id(sheet, quote_prefix=True)
        self.heading = style_id(sheet, bold=True)
        self.heading_quoted = style_id(sheet, bold=True, quote_prefix=True)
        self.formats = {kind: style_id(sheet, number_format=code) for kind, code in NUMBER_FORMATS.items()}
        self.epoch = sheet.parent.epoch
        self.shortened_cells = 0
        # Per column, once: its cell reference letter, its converter and its number format's style.
        self.plan = [
            (letter, column, CONVERTERS[column.kind], self.formats.get(column.kind))
            for letter, column in zip(self.letters, columns, strict=True)
        ]

    def heading_row(self) -> Element:
        row = Element("row", r="1")
        for letter, column in zip(self.letters, self.columns, strict=True):
            text = safe_text(column.heading)
            self.add_text(row, f"{letter}1", text, self.heading_quoted if text.quote_prefix else self.heading)
        return row

    def row(self, values: Sequence | Mapping, row_number: int) -> Element:
        """One sheet row. The busiest code of an export: per-column work is looked up once, in `plan`."""
        number = str(row_number)
        row = Element("row", r=number)
        if isinstance(values, Mapping):
            values = [values[column.key] for column in self.columns]
        for (letter, column, convert, style), value in zip(self.plan, values, strict=True):
            if value is None:
                continue
            try:
                converted = convert(value)
            except TypeError:
                convert_value(column, value)  # raises the same error, naming the column
                raise
            if converted is None:
                continue
            if type(converted) is SafeText:
                self.shortened_cells += converted.shortened
                self.add_text(row, letter + number, converted, self.quoted if converted.quote_prefix else None)
            else:
                self.add_number(row, letter + number, style, converted)
        return row

    @staticmethod
    def add_text(row: Element, reference: str, safe: SafeText, style: str | None) -> None:
        # Attributes in openpyxl's order: r, s, t.
        if style is None:
            cell = SubElement(row, "c", {"r": reference, "t": "inlineStr"})
        else:
            cell = SubElement(row, "c", {"r": reference, "s": style, "t": "inlineStr"})
        element = SubElement(SubElement(cell, "is"), "t")
        text = safe.text
        if text[:1].isspace() or text[-1:].isspace():  # as openpyxl: text != text.strip()
            element.set(XML_SPACE, "preserve")
        element.text = excel_text(text)  # lxml escapes it for XML; excel_text for Excel's _xHHHH_

    def add_number(self, row: Element, reference: str, style: str | None, value) -> None:
        if style is None:
            cell = SubElement(row, "c", {"r": reference, "t": "n"})
        else:
            cell = SubElement(row, "c", {"r": reference, "s": style, "t": "n"})
        if isinstance(value, date):  # a datetime is a date too
            value = to_excel(value, self.epoch)
        # The representation openpyxl itself writes for numbers.
        SubElement(cell, "v").text = f"{value:.16g}"


class WrittenWorkbook(NamedTuple):
    rows: int
    shortened_cells: int


def write_workbook(
    target: BinaryIO | str | Path,
    *,
    title: str,
    columns: Sequence[ExportColumn],
    rows: Iterable[Sequence | Mapping],
    about: Sequence[tuple[str, str]],
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> int:
    """Write rows to an .xlsx one at a time and return how many were written.

    The first sheet holds the data under a bold, frozen, filtered header; the second says what
    the export is (the `about` pairs), how many rows and shortened cells it has, and its marking.
    `progress(rows_written)` is called every `progress_every` rows and once at the end.
    """
    return write_counted_workbook(
        target, title=title, columns=columns, rows=rows, about=about, progress=progress, progress_every=progress_every
    ).rows


def write_counted_workbook(
    target: BinaryIO | str | Path,
    *,
    title: str,
    columns: Sequence[ExportColumn],
    rows: Iterable[Sequence | Mapping],
    about: Sequence[tuple[str, str]],
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> WrittenWorkbook:
    """As write_workbook, returning the rows written and the text cells that had to be shortened."""
    return write_sheets(target, [DataSheet(title, columns, rows)], about=about, progress=progress,
                        progress_every=progress_every)


@dataclass(frozen=True)
class DataSheet:
    title: str
    columns: Sequence[ExportColumn]
    rows: Iterable[Sequence | Mapping]


def write_sheets(
    target: BinaryIO | str | Path,
    sheets: Sequence[DataSheet],
    *,
    about: Sequence[tuple[str, str]],
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> WrittenWorkbook:
    """One data sheet per entry (each laid out as write_workbook's), then the About sheet.

    The About sheet's row count is the total over the sheets; `progress` counts each sheet's rows.
    """
    if progress_every < 1:
        raise ValueError("progress_every must be at least 1")
    workbook = Workbook(write_only=True)
    rows_written = shortened_cells = 0
    try:
        for sheet, title in zip(sheets, unique_sheet_titles([sheet.title for sheet in sheets]), strict=True):
            data_sheet = workbook.create_sheet(title)
            prepare_data_sheet(data_sheet, sheet.columns)
            writer = RowWriter(data_sheet, sheet.columns)
            written = stream_rows(data_sheet, writer, sheet.rows, progress, progress_every)
            # The filter range is written after the rows, so it can cover exactly the rows written.
            data_sheet.auto_filter.ref = f"A1:{get_column_letter(max(len(sheet.columns), 1))}{written + 1}"
            rows_written += written
            shortened_cells += writer.shortened_cells
    except BaseException:
        discard(workbook)
        raise
    write_about_sheet(workbook, about, rows_written, shortened_cells)
    workbook.save(target)
    return WrittenWorkbook(rows_written, shortened_cells)


def unique_sheet_titles(titles: Sequence[str]) -> list[str]:
    """Excel-valid sheet names, made distinct (Excel compares them without case) by a number."""
    taken: set[str] = set()
    result = []
    for title in titles:
        name = base = sheet_title(title)
        number = 2
        while name.casefold() in taken:
            suffix = f" ({number})"
            name = base[: SHEET_TITLE_LIMIT - len(suffix)].rstrip(" '") + suffix
            number += 1
        taken.add(name.casefold())
        result.append(name)
    return result


def stream_rows(sheet, writer: RowWriter, rows: Iterable, progress: Callable[[int], None] | None, every: int) -> int:
    """Write the heading and the rows into the sheet's own stream, between its top and its tail.

    This is what `WriteOnlyWorksheet.append` does for each row, less the Cell objects; openpyxl
    3.1.5's write-only sheet keeps its writer in `_writer` and its row generator in `_rows`.
    """
    sheet._get_writer()
    stream = sheet._writer.xf
    xml = stream.send(True)
    rows_written = 0
    try:
        with xml.element("sheetData"):
            xml.write(writer.heading_row())
            for row in rows:
                xml.write(writer.row(row, rows_written + 2))
                rows_written += 1
                if progress is not None and rows_written % every == 0:
                    progress(rows_written)
    finally:
        stream.send(None)  # hand the stream back, so the sheet's tail (or a discard) can follow
        # Tell the sheet its rows are written; otherwise closing it would write an empty sheetData.
        sheet._rows = iter_nothing()
    if progress is not None and (rows_written == 0 or rows_written % every):
        progress(rows_written)
    return rows_written


def iter_nothing():
    yield from ()


def discard(workbook: Workbook) -> None:
    """Remove the temporary files of an export that failed part-way.

    A write-only sheet streams its rows to a temporary file that openpyxl deletes only when the
    workbook is saved or the process exits, which for a server is never: personal data would be
    left on disk. Saving into a throw-away buffer is openpyxl's public way to close and delete them.
    """
    # The export's own error is the one worth raising; a second one from a half-written sheet is not.
    with contextlib.suppress(Exception):
        workbook.save(io.BytesIO())


def prepare_data_sheet(sheet, columns: Sequence[ExportColumn]) -> None:
    # A write-only sheet writes its column widths and panes before the first row, so they are set now.
    for position, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(position)].width = column_width(column)
    sheet.freeze_panes = "A2"
    mark_printed_pages(sheet)


def mark_printed_pages(sheet) -> None:
    # A printout leaves the app's screen behind; the marking goes with every page.
    sheet.oddHeader.center.text = PROTECTIVE_MARKING


def write_about_sheet(workbook: Workbook, about: Sequence[tuple[str, str]], rows: int, shortened_cells: int) -> None:
    sheet = workbook.create_sheet(ABOUT_SHEET_TITLE)
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 80
    mark_printed_pages(sheet)
    for label, value in about:
        sheet.append([text_cell(sheet, safe_text(label), bold=True), text_cell(sheet, safe_text(str(value)))])
    sheet.append([text_cell(sheet, safe_text("Rows"), bold=True), rows])
    sheet.append([text_cell(sheet, safe_text("Cells shortened"), bold=True), shortened_cells])
    if shortened_cells:
        explanation = (
            f"Excel cells hold at most {EXCEL_CELL_LIMIT:,} characters. Longer text shows its first "
            f"{SHORTENED_LENGTH:,} characters and ends with a note of how many more are in the app."
        )
        sheet.append([None, text_cell(sheet, safe_text(explanation))])
    sheet.append([])
    sheet.append([text_cell(sheet, safe_text(PROTECTIVE_MARKING), bold=True)])


def csv_value(value: ExcelValue) -> object:
    if isinstance(value, SafeText):
        # CSV has no string cells: a leading quote is the only way to stop a formula.
        return f"'{value.text}" if value.quote_prefix else value.text
    return value


def write_csv(target: TextIO | str | Path, columns: Sequence[ExportColumn], rows: Iterable[Sequence | Mapping]) -> int:
    """The same conversions as write_workbook, as CSV; for comparison in the benchmark."""
    if isinstance(target, str | Path):
        # The byte-order mark makes Excel read the file as UTF-8, so names keep their accents.
        with open(target, "w", newline="", encoding="utf-8-sig") as file:
            return write_csv(file, columns, rows)
    writer = csv.writer(target)
    writer.writerow([csv_value(safe_text(column.heading)) for column in columns])
    rows_written = 0
    for row in rows:
        writer.writerow([csv_value(convert_value(column, value)) for column, value in row_values(columns, row)])
        rows_written += 1
    return rows_written
