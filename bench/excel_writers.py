"""How the export writer compares with xlsxwriter and CSV on the same converted rows.

Run from the repository root:  python -m bench.excel_writers [ROWS ...]   (default 1000 10000)

Rows are generated before each measurement, so both the time and the memory are the writer's
alone. Peak memory is tracemalloc's: Python allocations only, not lxml's or zlib's C buffers,
and it is measured in a separate run because tracing slows Python down. Time is the median of
a few untraced runs. Output goes to a temporary file on disk, so the file's own bytes are not
counted as memory either.
"""

import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import xlsxwriter

from services.workbook import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    HOURS_FORMAT,
    ColumnKind,
    ExportColumn,
    SafeText,
    column_width,
    convert_value,
    safe_text,
    write_csv,
    write_workbook,
)

# Roughly the mix of a screenings list: mostly text, a few times and dates, some numbers.
KIND_PATTERN = [
    ColumnKind.identifier,
    ColumnKind.datetime,
    ColumnKind.text,
    ColumnKind.text,
    ColumnKind.date,
    ColumnKind.text,
    ColumnKind.yes_no,
    ColumnKind.number,
    ColumnKind.text,
    ColumnKind.hours,
    ColumnKind.text,
    ColumnKind.datetime,
    ColumnKind.identifier,
    ColumnKind.text,
    ColumnKind.yes_no,
    ColumnKind.number,
    ColumnKind.text,
]
WORDS = ["custody", "court", "probation", "urgent", "advice", "O'Brien", "Siôn", "Nguyễn", "=1+1", "#N/A", "-"]
START = datetime(2026, 1, 1, tzinfo=UTC)


def synthetic_columns(count: int) -> list[ExportColumn]:
    return [
        ExportColumn(f"column_{index}", f"Column {index}", KIND_PATTERN[index % len(KIND_PATTERN)])
        for index in range(count)
    ]


def synthetic_value(kind: ColumnKind, randomness: random.Random) -> object:
    match kind:
        case ColumnKind.text:
            return " ".join(randomness.choices(WORDS, k=randomness.randint(1, 6)))
        case ColumnKind.identifier:
            return f"{randomness.randrange(10**7):07d}"
        case ColumnKind.datetime:
            return START + timedelta(minutes=randomness.randrange(525_600))
        case ColumnKind.date:
            return date(1950, 1, 1) + timedelta(days=randomness.randrange(20_000))
        case ColumnKind.number:
            return randomness.randrange(100)
        case ColumnKind.hours:
            return timedelta(minutes=randomness.randrange(10_000))
        case ColumnKind.yes_no:
            return randomness.random() < 0.5
    raise ValueError(kind)


def synthetic_rows(columns: Sequence[ExportColumn], count: int, seed: int = 9) -> list[tuple]:
    randomness = random.Random(seed)
    return [tuple(synthetic_value(column.kind, randomness) for column in columns) for _ in range(count)]


def write_with_workbook(path: Path, columns: Sequence[ExportColumn], rows: list[tuple]) -> None:
    write_workbook(path, title="Benchmark", columns=columns, rows=rows, about=[("List", "Benchmark")])


def write_with_xlsxwriter(path: Path, columns: Sequence[ExportColumn], rows: list[tuple]) -> None:
    """The same converted values and layout, written by xlsxwriter in constant-memory mode."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Benchmark")
    formats = {
        ColumnKind.datetime: workbook.add_format({"num_format": DATETIME_FORMAT}),
        ColumnKind.date: workbook.add_format({"num_format": DATE_FORMAT}),
        ColumnKind.hours: workbook.add_format({"num_format": HOURS_FORMAT}),
    }
    quoted = workbook.add_format({"quote_prefix": True})
    bold = workbook.add_format({"bold": True})
    for position, column in enumerate(columns):
        sheet.set_column(position, position, column_width(column))
    sheet.freeze_panes(1, 0)
    for position, column in enumerate(columns):
        sheet.write_string(0, position, safe_text(column.heading).text, bold)

    for row_number, row in enumerate(rows, start=1):
        for position, (column, value) in enumerate(zip(columns, row, strict=True)):
            converted = convert_value(column, value)
            if converted is None:
                continue
            if isinstance(converted, SafeText):
                sheet.write_string(row_number, position, converted.text, quoted if converted.quote_prefix else None)
            elif column.kind in (ColumnKind.datetime, ColumnKind.date):
                sheet.write_datetime(row_number, position, converted, formats[column.kind])
            else:
                sheet.write_number(row_number, position, converted, formats.get(column.kind))
    sheet.autofilter(0, 0, len(rows), len(columns) - 1)
    workbook.close()


def write_with_csv(path: Path, columns: Sequence[ExportColumn], rows: list[tuple]) -> None:
    write_csv(path, columns, rows)


WRITERS: dict[str, Callable[[Path, Sequence[ExportColumn], list[tuple]], None]] = {
    "workbook": write_with_workbook,
    "xlsxwriter": write_with_xlsxwriter,
    "csv": write_with_csv,
}


def seconds_taken(writer: Callable, path: Path, columns: Sequence[ExportColumn], rows: list[tuple]) -> float:
    started = time.perf_counter()
    writer(path, columns, rows)
    return time.perf_counter() - started


def peak_mebibytes(writer: Callable, path: Path, columns: Sequence[ExportColumn], rows: list[tuple]) -> float:
    tracemalloc.start()
    try:
        writer(path, columns, rows)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def compare_writers(row_counts: Sequence[int] = (1000, 10000), columns: int = 17, repeats: int = 3) -> list[dict]:
    """One dict per row count: seconds (median) and peak MiB for each writer, and the time ratios."""
    export_columns = synthetic_columns(columns)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for row_count in row_counts:
            rows = synthetic_rows(export_columns, row_count)
            result: dict = {"rows": row_count, "columns": columns}
            for name, writer in WRITERS.items():
                path = Path(folder) / f"{name}.{'csv' if name == 'csv' else 'xlsx'}"
                timings = [seconds_taken(writer, path, export_columns, rows) for _ in range(repeats)]
                result[f"{name}_seconds"] = statistics.median(timings)
                result[f"{name}_peak_mib"] = peak_mebibytes(writer, path, export_columns, rows)
                result[f"{name}_bytes"] = path.stat().st_size
            result["workbook_to_xlsxwriter"] = result["workbook_seconds"] / result["xlsxwriter_seconds"]
            result["workbook_to_csv"] = result["workbook_seconds"] / result["csv_seconds"]
            results.append(result)
    return results


def print_table(results: list[dict]) -> None:
    print(
        f"{'rows':>8} {'cols':>4} | {'workbook s':>10} {'MiB':>6} | {'xlsxwriter s':>12} {'MiB':>6} | "
        f"{'csv s':>6} {'MiB':>6} | {'wb/xlsxwriter':>13} {'wb/csv':>7}"
    )
    for result in results:
        print(
            f"{result['rows']:>8} {result['columns']:>4} | "
            f"{result['workbook_seconds']:>10.2f} {result['workbook_peak_mib']:>6.1f} | "
            f"{result['xlsxwriter_seconds']:>12.2f} {result['xlsxwriter_peak_mib']:>6.1f} | "
            f"{result['csv_seconds']:>6.2f} {result['csv_peak_mib']:>6.1f} | "
            f"{result['workbook_to_xlsxwriter']:>12.2f}x {result['workbook_to_csv']:>6.1f}x"
        )


if __name__ == "__main__":
    requested = tuple(int(argument) for argument in sys.argv[1:]) or (1000, 10000)
    print_table(compare_writers(requested))
