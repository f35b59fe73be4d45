"""The export writer: cells stay text, types are Excel's own, long or odd text never breaks it."""

import csv
import io
import math
import re
import tempfile
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from openpyxl.utils.escape import unescape

from bench.excel_writers import (
    compare_writers,
    synthetic_columns,
    synthetic_rows,
    write_with_workbook,
    write_with_xlsxwriter,
)
from services.workbook import (
    ABOUT_SHEET_TITLE,
    EXCEL_CELL_LIMIT,
    PROTECTIVE_MARKING,
    SHORTENED_LENGTH,
    ColumnKind,
    ExportColumn,
    safe_text,
    sheet_title,
    utf16_length,
    write_csv,
    write_workbook,
)

FORMULA_PAYLOADS = ["=1+1", '=HYPERLINK("http://x","y")', "+1", "-1+1", "@SUM(1)", "\t=1", "\r=1", "\n=1"]
ERROR_LOOKALIKES = ["#N/A", "#REF!", "#DIV/0!", "#VALUE!", "#NAME?", "#NULL!", "#NUM!"]
PAYLOADS = FORMULA_PAYLOADS + ERROR_LOOKALIKES
NAMES = ["O'Brien", "Siôn", "Nguyễn", "عمر", "Zoë 🙂", "👩🏽‍⚕️ nurse", "<script>alert(1)</script>"]

TEXT = ExportColumn("note", "Note", ColumnKind.text)
REFERENCE = ExportColumn("reference", "Reference", ColumnKind.identifier)


def export(columns, rows, about=(), **options) -> io.BytesIO:
    target = io.BytesIO()
    write_workbook(target, title="Requests", columns=columns, rows=rows, about=list(about), **options)
    target.seek(0)
    return target


def data_sheet(file: io.BytesIO):
    return load_workbook(file)["Requests"]


def about_sheet(file: io.BytesIO) -> dict:
    sheet = load_workbook(file)[ABOUT_SHEET_TITLE]
    return {row[0]: row[1] if len(row) > 1 else None for row in sheet.iter_rows(values_only=True) if row and row[0]}


def raw_sheet_xml(file: io.BytesIO) -> str:
    with zipfile.ZipFile(file) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode()


def quote_prefixed_style_ids(file: io.BytesIO) -> set[int]:
    with zipfile.ZipFile(file) as archive:
        styles = archive.read("xl/styles.xml").decode()
    cell_formats = re.search(r"<cellXfs[^>]*>(.*?)</cellXfs>", styles, re.S).group(1)
    formats = re.findall(r"<xf [^>]*?/?>", cell_formats)
    return {index for index, xf in enumerate(formats) if 'quotePrefix="1"' in xf}


def column_values(sheet, letter: str) -> list:
    return [cell.value for cell in sheet[letter][1:]]


# --- safety -------------------------------------------------------------------------------


def test_payloads_read_back_as_the_same_strings_in_string_cells():
    file = export([TEXT, REFERENCE], [[payload, payload] for payload in PAYLOADS])
    sheet = data_sheet(file)
    for letter in "AB":
        cells = sheet[letter][1:]
        assert [cell.value for cell in cells] == PAYLOADS
        assert {cell.data_type for cell in cells} == {"s"}


EXCEL_ESCAPES = ["_x0007_", "_x0041_", "a_x000D_b", "_X0041_", "_x005F_", "__x0041__", "my_xbox", "_x", "_x12"]


def test_text_that_looks_like_excels_own_escape_comes_back_as_typed():
    """Excel decodes `_xHHHH_` in any string (`_x0007_` was a bell, `_x0041_` an A): `_x` is written
    as `_x005F_x`. Read back as Excel reads it (openpyxl's `unescape` is that decoding), every
    string is what was typed, in data cells, headings and the About sheet."""
    heading = ExportColumn("note", "Note _x0041_", ColumnKind.text)
    file = export([heading, REFERENCE], [[text, text] for text in EXCEL_ESCAPES], about=[("Filter", "_x0007_")])
    sheet = data_sheet(file)
    assert unescape(sheet["A1"].value) == "Note _x0041_"
    for letter in "AB":
        assert [unescape(value) for value in column_values(sheet, letter)] == EXCEL_ESCAPES
    assert unescape(about_sheet(file)["Filter"]) == "_x0007_"
    file.seek(0)
    xml = raw_sheet_xml(file)
    assert "<t>_x005F_x0007_</t>" in xml and "<t>my_x005F_xbox</t>" in xml
    assert "<t>_X0041_</t>" in xml  # Excel decodes only a lower-case x


def test_csv_is_not_escaped_for_excel():
    target = io.StringIO()
    write_csv(target, [TEXT], [["_x0041_"]])
    assert target.getvalue().splitlines()[1] == "_x0041_"


def test_raw_sheet_xml_has_no_formula_and_no_error_cell():
    xml = raw_sheet_xml(export([TEXT, REFERENCE], [[payload, payload] for payload in PAYLOADS]))
    assert "<f>" not in xml and "<f " not in xml
    assert 't="e"' not in xml
    # Every data cell is an inline string: the only other type openpyxl could have chosen.
    assert set(re.findall(r'<c r="[A-Z]+\d+"[^>]* t="(\w+)"', xml)) == {"inlineStr"}


def test_formula_like_text_carries_the_quote_prefix_in_the_styles():
    file = export([TEXT], [[payload] for payload in PAYLOADS])
    quoted_styles = quote_prefixed_style_ids(file)
    assert quoted_styles, "no cell format with quotePrefix=1 in styles.xml"
    style_of_cell = {int(row): int(style) for row, style in re.findall(r'<c r="A(\d+)" s="(\d+)"', raw_sheet_xml(file))}
    for row, payload in enumerate(PAYLOADS, start=2):
        quoted = style_of_cell.get(row) in quoted_styles
        assert quoted == (payload in FORMULA_PAYLOADS), payload


def test_quote_prefix_is_what_openpyxl_reads_back():
    sheet = data_sheet(export([TEXT], [["=1+1"], ["#N/A"], ["plain"]]))
    assert [cell.quotePrefix for cell in sheet["A"][1:]] == [True, False, False]


@pytest.mark.parametrize(
    ("value", "quote_prefix"),
    [
        ("=1+1", True),
        ("+44 20 7946 0000", True),
        ("-", True),
        ("@home", True),
        ("\t=1", True),
        ("\r=1", True),
        ("\n=1", True),
        ("#N/A", False),
        ("a=b", False),
        ("", False),
    ],
)
def test_safe_text_flags_leading_formula_characters(value, quote_prefix):
    assert safe_text(value) == (value, quote_prefix, False)


def test_characters_xml_cannot_hold_are_replaced_not_fatal():
    dirty = "a\x00b\x08c\x0bd\x1fe\ufffef\uffffg\ud800h"
    sheet = data_sheet(export([TEXT], [[dirty], ["line one\nline two\ttabbed"]]))
    replaced = "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh"
    assert column_values(sheet, "A") == [replaced, "line one\nline two\ttabbed"]


def test_text_over_the_cell_limit_is_shortened_visibly_and_counted():
    long_note = "x" * 10_000 + "y" * 30_000
    file = export([TEXT], [[long_note], ["short"], ["z" * EXCEL_CELL_LIMIT]])
    written = column_values(data_sheet(file), "A")

    assert written[0].startswith(long_note[:SHORTENED_LENGTH])
    assert written[0].endswith("[…truncated: 8,000 more characters — see the record in the app]")
    assert len(written[0]) <= EXCEL_CELL_LIMIT
    assert written[1:] == ["short", "z" * EXCEL_CELL_LIMIT]
    assert about_sheet(file)["Cells shortened"] == 1


def test_shortening_counts_utf16_units_and_never_splits_an_emoji():
    # 20,000 emoji are 20,000 Python characters but 40,000 of the UTF-16 units Excel counts.
    text, _quote_prefix, shortened = safe_text("🙂" * 20_000)
    assert shortened
    assert text.startswith("🙂" * (SHORTENED_LENGTH // 2) + " […truncated: 4,000 more characters")
    assert utf16_length(text) <= EXCEL_CELL_LIMIT
    text.encode("utf-8")  # raises on an unpaired surrogate


def test_shortened_text_that_starts_like_a_formula_keeps_its_quote_prefix():
    assert safe_text("=" + "a" * 40_000)[1:] == (True, True)


# --- types ---------------------------------------------------------------------------------


def test_datetimes_are_uk_local_excel_dates():
    column = ExportColumn("received_at", "Received", ColumnKind.datetime)
    summer = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    winter = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    stored_without_zone = datetime(2026, 7, 1, 12, 30)
    rows = [[summer, "1"], [winter, "2"], [stored_without_zone, "3"], [None, "4"]]
    cells = data_sheet(export([column, REFERENCE], rows))["A"][1:]

    assert [cell.value for cell in cells[:3]] == [
        datetime(2026, 7, 1, 13, 30),
        datetime(2026, 1, 15, 12, 30),
        datetime(2026, 7, 1, 13, 30),
    ]
    assert all(cell.is_date and "dd/mm/yyyy" in cell.number_format for cell in cells[:3])
    assert cells[3].value is None


def test_dates_are_excel_dates_and_a_late_utc_time_falls_on_the_london_day():
    column = ExportColumn("born_on", "Date of birth", ColumnKind.date)
    late_summer_evening = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    cells = data_sheet(export([column], [[date(1990, 2, 28)], [late_summer_evening]]))["A"][1:]
    assert [cell.value.date() for cell in cells] == [date(1990, 2, 28), date(2026, 7, 2)]
    assert {cell.number_format for cell in cells} == {"dd/mm/yyyy"}


def test_identifiers_keep_leading_zeros_as_text():
    cells = data_sheet(export([REFERENCE], [["0012345"], ["000"], [943_476_5919]]))["A"][1:]
    assert [cell.value for cell in cells] == ["0012345", "000", "9434765919"]
    assert {cell.data_type for cell in cells} == {"s"}


def test_yes_no_and_empty():
    column = ExportColumn("consented", "Consent", ColumnKind.yes_no)
    sheet = data_sheet(export([column, REFERENCE], [[True, "1"], [False, "2"], [None, "3"]]))
    assert column_values(sheet, "A") == ["Yes", "No", None]


def test_hours_are_numbers_of_hours():
    column = ExportColumn("response_time", "Hours to respond", ColumnKind.hours)
    cells = data_sheet(export([column], [[timedelta(hours=1, minutes=30)], [2.25], [timedelta(days=2)]]))["A"][1:]
    assert [cell.value for cell in cells] == [1.5, 2.25, 48]
    assert {cell.data_type for cell in cells} == {"n"}
    assert {cell.number_format for cell in cells} == {"0.0"}


def test_numbers_stay_numbers_and_non_finite_ones_are_left_empty():
    column = ExportColumn("score", "Score", ColumnKind.number)
    sheet = data_sheet(export([column, REFERENCE], [[7, "1"], [2.5, "2"], [math.nan, "3"], [math.inf, "4"]]))
    assert column_values(sheet, "A") == [7, 2.5, None, None]


def test_a_wrong_type_names_the_column():
    column = ExportColumn("score", "Score", ColumnKind.number)
    with pytest.raises(TypeError, match="'score'"):
        export([column], [["seven"]])


def test_names_round_trip_unchanged():
    sheet = data_sheet(export([TEXT], [[name] for name in NAMES]))
    assert column_values(sheet, "A") == NAMES


def test_rows_may_be_mappings_or_sequences_in_column_order():
    columns = [TEXT, REFERENCE]
    sheet = data_sheet(export(columns, [{"reference": "R1", "note": "by key", "unused": 1}, ("by position", "R2")]))
    assert [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        ["by key", "R1"],
        ["by position", "R2"],
    ]


def test_a_sequence_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError):
        export([TEXT, REFERENCE], [["only one value"]])


def test_an_export_that_fails_part_way_leaves_no_personal_data_on_disk(tmp_path, monkeypatch):
    # openpyxl streams a write-only sheet into a temporary file; point those at tmp_path to watch them.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def rows_then_lost_connection():
        yield ["Siôn O'Brien", "0012345"]
        raise ConnectionError("database went away")

    with pytest.raises(ConnectionError):
        export([TEXT, REFERENCE], rows_then_lost_connection())
    assert list(tmp_path.iterdir()) == []


# --- layout --------------------------------------------------------------------------------


def test_header_is_bold_frozen_and_filtered_and_columns_have_widths():
    columns = [TEXT, REFERENCE, ExportColumn("received_at", "Received", ColumnKind.datetime, width=21)]
    sheet = data_sheet(export(columns, [["a", "1", None], ["b", "2", None]]))

    assert [cell.value for cell in sheet[1]] == ["Note", "Reference", "Received"]
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:C3"
    assert sheet.column_dimensions["A"].width == 30
    assert sheet.column_dimensions["B"].width == 14
    assert sheet.column_dimensions["C"].width == 21


def test_about_sheet_states_the_export_its_size_and_marking():
    about = [("List", "Triage queue"), ("Filters", "Site: Anytown custody; urgent only"), ("Exported by", "=cmd")]
    file = export([TEXT], [["a"], ["b"], ["c"]], about=about)
    facts = about_sheet(file)

    assert facts["List"] == "Triage queue"
    assert facts["Filters"] == "Site: Anytown custody; urgent only"
    assert facts["Exported by"] == "=cmd"
    assert facts["Rows"] == 3
    assert facts["Cells shortened"] == 0
    assert PROTECTIVE_MARKING in facts

    workbook = load_workbook(file)
    assert workbook.sheetnames == ["Requests", ABOUT_SHEET_TITLE]
    for sheet in workbook:
        assert sheet.oddHeader.center.text == PROTECTIVE_MARKING


def test_about_sheet_xml_has_no_formula_either():
    file = export([TEXT], [], about=[("Filters", '=HYPERLINK("http://x","y")'), ("Note", "#REF!")])
    with zipfile.ZipFile(file) as archive:
        xml = archive.read("xl/worksheets/sheet2.xml").decode()
    assert "<f>" not in xml and 't="e"' not in xml


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Triage queue", "Triage queue"),
        ("Screenings: 01/04/2026 [urgent]?", "Screenings 01 04 2026 urgent"),
        ("A title that is far too long for any Excel sheet tab", "A title that is far too long fo"),
        ("'quoted'", "quoted"),
        ("History", "History (data)"),
        ("about this export", "about this export (data)"),
        (" / * ", "Export"),
    ],
)
def test_sheet_titles_follow_excel_rules(title, expected):
    assert sheet_title(title) == expected


# --- streaming -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_count", "expected_calls"),
    [(2_500, [1_000, 2_000, 2_500]), (2_000, [1_000, 2_000]), (0, [0])],
)
def test_progress_is_reported_every_so_many_rows_and_at_the_end(row_count, expected_calls):
    calls = []
    export([TEXT], (["row"] for _ in range(row_count)), progress=calls.append, progress_every=1_000)
    assert calls == expected_calls


def test_ten_thousand_rows_stream_from_a_generator():
    columns = [
        TEXT,
        REFERENCE,
        ExportColumn("received_at", "Received", ColumnKind.datetime),
        ExportColumn("urgent", "Urgent", ColumnKind.yes_no),
        ExportColumn("hours", "Hours", ColumnKind.hours),
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = (
        (f"note {index}", f"{index:07d}", start + timedelta(hours=index), index % 2 == 0, timedelta(minutes=index))
        for index in range(10_000)
    )
    target = io.BytesIO()
    assert write_workbook(target, title="Requests", columns=columns, rows=rows, about=[]) == 10_000

    sheet = load_workbook(target, read_only=True)["Requests"]
    last_row = list(sheet.iter_rows(min_row=10_001, values_only=True))
    assert last_row == [("note 9999", "0009999", datetime(2027, 2, 21, 15, 0), "No", 9999 / 60)]


# --- CSV (benchmark comparison) ------------------------------------------------------------


def test_csv_uses_the_same_conversions_and_neutralises_formulas():
    columns = [TEXT, ExportColumn("received_at", "Received", ColumnKind.datetime)]
    summer = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    rows = [[payload, None] for payload in PAYLOADS] + [[name, summer] for name in NAMES]
    target = io.StringIO(newline="")
    assert write_csv(target, columns, rows) == len(rows)

    read_back = list(csv.reader(io.StringIO(target.getvalue(), newline="")))
    assert read_back[0] == ["Note", "Received"]
    notes = [row[0] for row in read_back[1:]]
    expected_payloads = [f"'{payload}" if payload in FORMULA_PAYLOADS else payload for payload in PAYLOADS]
    assert notes == expected_payloads + NAMES
    assert read_back[-1][1] == "2026-07-01 13:30:00"


# --- benchmark -----------------------------------------------------------------------------


def test_benchmark_writers_write_the_same_cells(tmp_path):
    columns = synthetic_columns(17)
    rows = synthetic_rows(columns, 50)
    write_with_workbook(tmp_path / "workbook.xlsx", columns, rows)
    write_with_xlsxwriter(tmp_path / "xlsxwriter.xlsx", columns, rows)

    def cells(path):
        sheet = load_workbook(path)["Benchmark"]
        return [[(cell.value, cell.number_format, cell.quotePrefix) for cell in row] for row in sheet.iter_rows()]

    assert cells(tmp_path / "workbook.xlsx") == cells(tmp_path / "xlsxwriter.xlsx")


def test_benchmark_reports_each_writer_and_the_ratios():
    (result,) = compare_writers((20,), columns=17, repeats=1)
    assert result["rows"] == 20
    for key in ("workbook_seconds", "xlsxwriter_peak_mib", "csv_seconds", "workbook_to_xlsxwriter", "workbook_to_csv"):
        assert result[key] > 0


# --- the fast row path writes what openpyxl's own cells would ------------------------------


def openpyxl_reference(columns, rows) -> io.BytesIO:
    """The same sheet written cell by cell through openpyxl's public write-only API."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    from services.workbook import NUMBER_FORMATS, SafeText, convert_value

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Requests")
    sheet.append([column.heading for column in columns])
    for row in rows:
        cells = []
        for column, value in zip(columns, row, strict=True):
            converted = convert_value(column, value)
            if converted is None:
                cells.append(None)
                continue
            cell = WriteOnlyCell(sheet)
            if isinstance(converted, SafeText):
                cell.value = converted.text
                cell.data_type = "s"
                cell.quotePrefix = converted.quote_prefix
            else:
                if column.kind in NUMBER_FORMATS:
                    cell.number_format = NUMBER_FORMATS[column.kind]
                cell.value = converted
            cells.append(cell)
        sheet.append(cells)
    target = io.BytesIO()
    workbook.save(target)
    target.seek(0)
    return target


def test_rows_read_back_exactly_as_openpyxls_own_cells_would():
    columns = [
        TEXT,
        REFERENCE,
        ExportColumn("received_at", "Received", ColumnKind.datetime),
        ExportColumn("born_on", "Born", ColumnKind.date),
        ExportColumn("score", "Score", ColumnKind.number),
        ExportColumn("hours", "Hours", ColumnKind.hours),
        ExportColumn("urgent", "Urgent", ColumnKind.yes_no),
    ]
    moment = datetime(2026, 3, 29, 0, 59, 59, 500_000, tzinfo=UTC)  # the second before BST begins
    rows = [
        [payload, "007", moment, date(1900, 1, 1), 12_345_678_901, timedelta(minutes=1), True] for payload in PAYLOADS
    ]
    rows += [[name, name, moment, date(2026, 12, 31), 7, 2.5, True] for name in NAMES]
    rows += [
        ["  spaced  ", None, datetime(1899, 12, 31, tzinfo=UTC), date(2000, 2, 29), 0.1 + 0.2, 1 / 3, False],
        ["a & b < c > d \"e\" 'f' ]]>", "x", None, None, -0.0, 1e-20, None],
    ]

    def cells(file):
        sheet = load_workbook(file)["Requests"]
        return [
            [(cell.value, cell.data_type, cell.number_format, cell.quotePrefix) for cell in row]
            for row in sheet.iter_rows()
        ]

    fast = cells(export(columns, rows))
    reference = cells(openpyxl_reference(columns, rows))
    # The heading row differs only in being bold; every data cell is the same.
    assert fast[1:] == reference[1:]
    assert [cell[0] for cell in fast[0]] == [cell[0] for cell in reference[0]]


def test_several_sheets_with_distinct_excel_names_and_one_about_sheet():
    from services.workbook import DataSheet, unique_sheet_titles, write_sheets

    assert unique_sheet_titles(["Requests", "requests", "A" * 40, "A" * 40]) == [
        "Requests", "requests (2)", "A" * 31, "A" * 27 + " (2)"]
    target = io.BytesIO()
    written = write_sheets(target, [DataSheet("Requests", [TEXT], [["=1+1"], ["b"]]),
                                    DataSheet("requests", [REFERENCE], [["007"]])], about=[("Period", "May")])
    target.seek(0)
    workbook = load_workbook(target)
    assert workbook.sheetnames == ["Requests", "requests (2)", ABOUT_SHEET_TITLE]
    assert [cell.value for cell in workbook["requests (2)"]["A"]] == ["Reference", "007"]
    assert workbook["Requests"].auto_filter.ref == "A1:A3"
    assert written == (3, 0)
