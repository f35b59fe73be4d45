"""A partial questionnaire never reads as a total: every place a score is shown or exported says so.

A PHQ-9 with 6 of 9 items answered (sum 18, marked not completed) sits, by its sum, in the
moderately severe band. It must read "18 (partial, 6 of 9)" with no band in the screenings list,
the person record, the Excel export (a text cell, while a full total stays a number), the sharing
summary, and be left out of the scores-over-time chart; every band-based view counts only totals
of every item. Runs on SQLite and PostgreSQL.
"""

import io

from openpyxl import load_workbook
from sqlmodel import select

from models import InstrumentResult
from services import db, export, instruments, person_record, screening
from services.screening import InstrumentAnswers, Instruments
from tests.test_export import granted_export
from tests.test_screening import complete, save, valid_screening

PARTIAL = {f"item{number}": 3 for number in range(1, 7)} | {"item7": None, "item8": None, "item9": None}
FULL_GAD7 = {f"item{number}": 2 for number in range(1, 8)}  # 14: moderate


def partial_screening(engine, staff) -> int:
    screening_id = valid_screening(engine, staff)
    save(engine, staff, screening_id, screening.save_instruments, Instruments(scored={
        instruments.PHQ9.code: InstrumentAnswers(answers=PARTIAL, not_completed=True,
                                                 not_completed_reason="Too distressed to go on"),
        instruments.GAD7.code: InstrumentAnswers(answers=FULL_GAD7),
    }))
    complete(engine, staff, screening_id)
    return screening_id


def test_the_stored_result_keeps_every_answer_and_how_many_were_given(engine, staff):
    screening_id = partial_screening(engine, staff)
    with db.reading(engine) as session:
        row = session.exec(select(InstrumentResult).where(InstrumentResult.screening_id == screening_id,
                                                          InstrumentResult.instrument == "phq9")).one()
    assert (row.total, row.answered, row.complete, row.band) == (18, 6, False, None)
    assert row.answers == {item: answer for item, answer in PARTIAL.items() if answer is not None}


def test_the_screenings_list_and_the_person_record_say_partial_and_show_no_band(engine, staff):
    screening_id = partial_screening(engine, staff)
    with db.writing(engine) as session:
        rows = screening.list_screenings(session, staff.practitioner, screening.ScreeningFilters())
        person_id = session.get(screening.Screening, screening_id).person_id
        record = person_record.open_record(session, staff.practitioner, person_id)
    for row in (rows[0], record.screenings[0]):
        assert (row["phq9_total"], row["phq9_band"]) == ("18 (partial, 6 of 9)", None)
        assert (row["gad7_total"], row["gad7_band"]) == ("14", "moderate")
    assert [(point.instrument, point.total) for point in record.scores] == [("GAD-7", 14)]  # no partial point


def test_the_export_writes_a_partial_as_words_and_a_full_total_as_a_number(engine, staff):
    partial_screening(engine, staff)
    lead = granted_export(engine, staff.team_lead)
    target = io.BytesIO()
    with db.writing(engine) as session:  # an export is audited
        export.export_list(session, lead, "screenings", None, None, target=target)
    target.seek(0)
    sheet = load_workbook(target, read_only=True).worksheets[0]
    header, first = [list(row) for row in sheet.iter_rows(min_row=1, max_row=2, values_only=True)]
    cells = dict(zip(header, first, strict=True))
    assert cells["PHQ-9 total"] == "18 (partial, 6 of 9)" and cells["PHQ-9 band"] is None
    assert cells["GAD-7 total"] == 14 and cells["GAD-7 band"] == "moderate"


def test_the_sharing_summary_names_no_band_for_a_partial(engine, staff):
    screening_id = partial_screening(engine, staff)
    with db.writing(engine) as session:  # opening the summary is audited
        summary = screening.sharing_summary(session, staff.practitioner, screening_id)
    results = dict(summary.instrument_results)
    assert results[screening.label("phq9")] == "not completed" and results[screening.label("gad7")] == "moderate"
