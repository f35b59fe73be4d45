"""The monthly national return (MHSDS tables) and its data-quality report, against a hand-built month.

The reporting month is October 2026, London time: 01/10/2026 00:00 BST (30/09 23:00 UTC) to
01/11/2026 00:00 GMT (the same instant in UTC). Clocks went back on Sunday 25/10/2026 at 02:00 BST,
so 01:00–02:00 London time happened twice that night. "Now" is 05/11/2026 12:00 UTC.

People (team T unless said):
| person | born       | NHS number             | gender | ethnic | LD / autism (latest screening saying) |
|--------|------------|------------------------|--------|--------|---------------------------------------|
| P1     | 17/05/1980 | 9434765919 (valid)     | 1      | A      | 5 / 2 (S1; S6 later says nothing)     |
| P2     | 01/03/2012 | none, not known (a child of 14) | 2 | Z  | none                                  |
| P3     | 01/01/1990 | 9434765918 (fails check digit, as an import could hold) | X | none | none (S2 says nothing) |
| P4     | 01/06/2019 | 4010232137 (valid; aged 7: an impossible date of birth) | 1 | 99 | U / 5 (S4, September) |
| P6     | 01/01/1970 | none                   | 1      | A      | —  (only a request closed in September) |
| PO     | other team                                                                                   |

Requests (received London time, with UTC where it differs; source; urgency; person; closed):
- Q5: 10/09 10:00 BST; probation E3; routine; P4; closed 01/10 00:30 BST (30/09 23:30 UTC), a
  closure reason the team mapped to 02
- Q4: 15/09 10:00 BST; probation E3; routine; nobody; open
- Q1: 01/10 00:30 BST (30/09 23:30 UTC); police E1; urgent; P1; closed 02/10 10:00 BST, reason
  "Screened" (no national code)
- Q3: 25/10 01:30 GMT, the second 01:30 (01:30 UTC); street triage, a local source with no
  national code; routine; P3; open
- Q2: 31/10 23:59 GMT; courts E2; emergency; P2; open
- Q7: 20/09; police; P6; closed 30/09 23:00 BST, before the month began
- Q8: 01/11 00:00 GMT; police; P1: after the month
- QO: the other team's, 20/10

Screenings: S1 (Q1, 01/10 02:00 BST, face to face 01, attended 5, PHQ-9 complete 12, GAD-7 partial,
BJMHS complete); S6 (Q1, 05/10 11:00 BST, telephone 02, "0 not yet happened"); S2 (Q3, 25/10 01:45
GMT, no mechanism, did not attend 3, draft); S3 (Q2, 01/11 00:20 GMT: next month); S4 (Q5, 12/09:
last month, LD U, autism 5); SO (other team, October).
Onward referrals: O1 (S1, 03/10, housing); O2 (P3, no screening, 31/10, crisis team); O3 (S1, 01/11:
next month); OO (other team, October).
"""

import csv
import io
import zipfile
from datetime import UTC, date, datetime, time

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from models import AuditEvent, CodeItem, InstrumentResult, OnwardReferral, Person, Request, Screening
from models.codes import CodeList, EthnicCategory, GenderIdentity
from services import administration, clock, db, national_return
from services.errors import InputErrors, PermissionDenied
from services.national_return import Quality, ReturnMonth
from tests.conftest import Staff, make_staff

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
OCTOBER = ReturnMonth(2026, 10)


def utc(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def london(year, month, day, hour, minute=0) -> datetime:
    return clock.from_london(date(year, month, day), time(hour, minute))


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


def build_month(engine, staff: Staff) -> dict[str, int]:
    ids: dict[str, int] = {}
    site = staff.sites[0].id
    with db.writing(engine) as session:
        session.add(CodeItem(list_name=CodeList.SOURCE_OF_REFERRAL, code="street_triage", label="Street triage",
                             national_code=None))
        session.add(CodeItem(list_name=CodeList.CLOSURE_REASON, code="mapped", label="Mapped by the team",
                             national_code="02"))

        def person(name, born, nhs_number, status, gender, ethnic, team_id=staff.team.id):
            row = Person(team_id=team_id, given_name=name, family_name="Test", date_of_birth=born,
                         nhs_number=nhs_number, nhs_number_status=status, gender_identity=gender,
                         ethnic_category=ethnic, given_name_key=name.lower(), family_name_key="test")
            session.add(row)
            session.flush()
            ids[name] = row.id

        person("P1", date(1980, 5, 17), "9434765919", "present", "1", "A")
        person("P2", date(2012, 3, 1), None, "not_known", "2", "Z")
        person("P3", date(1990, 1, 1), "9434765918", "present", "X", None)
        person("P4", date(2019, 6, 1), "4010232137", "present", "1", "99")
        person("P6", date(1970, 1, 1), None, "not_known", "1", "A")
        person("PO", date(1985, 1, 1), None, "not_known", "1", "A", team_id=staff.other_team.id)

        def request(name, received, source, urgency, person_name, *, closed_at=None, reason=None,
                    team_id=staff.team.id, site_id=site):
            row = Request(reference=f"R-{name}", team_id=team_id, site_id=site_id, received_at=received,
                          source_of_referral=source, requester_name="PC Officer", request_type="screening",
                          urgency=urgency, reason="Concern", status="closed" if closed_at else "new",
                          due_at=received, person_id=ids[person_name] if person_name else None,
                          closed_at=closed_at, closure_reason=reason, created_by_id=staff.practitioner.id)
            session.add(row)
            session.flush()
            ids[name] = row.id

        request("Q5", london(2026, 9, 10, 10), "probation", "routine", "P4", closed_at=utc(2026, 9, 30, 23, 30),
                reason="mapped")
        request("Q4", london(2026, 9, 15, 10), "probation", "routine", None)
        request("Q1", london(2026, 10, 1, 0, 30), "police", "urgent", "P1", closed_at=london(2026, 10, 2, 10),
                reason="screened")
        request("Q3", utc(2026, 10, 25, 1, 30), "street_triage", "routine", "P3")
        request("Q2", london(2026, 10, 31, 23, 59), "courts", "emergency", "P2")
        request("Q7", london(2026, 9, 20, 10), "police", "urgent", "P6", closed_at=utc(2026, 9, 30, 22),
                reason="screened")
        request("Q8", london(2026, 11, 1, 0), "police", "urgent", "P1")
        request("QO", london(2026, 10, 20, 10), "police", "urgent", "PO", team_id=staff.other_team.id,
                site_id=staff.sites[2].id)

        def screening(name, request_name, at, *, mechanism=None, attendance=None, status="complete",
                      learning_disability=None, autism=None, team_id=staff.team.id):
            request_row = session.get(Request, ids[request_name])
            row = Screening(team_id=team_id, person_id=request_row.person_id, request_id=request_row.id,
                            practitioner_id=staff.practitioner.id, status=status, screened_at=at,
                            contact_mechanism=mechanism, attendance=attendance,
                            learning_disability_status=learning_disability, autism_status=autism)
            session.add(row)
            session.flush()
            ids[name] = row.id

        screening("S1", "Q1", london(2026, 10, 1, 2), mechanism="01", attendance="5", learning_disability="5",
                  autism="2")
        screening("S6", "Q1", london(2026, 10, 5, 11), mechanism="02", attendance="0")
        screening("S2", "Q3", utc(2026, 10, 25, 1, 45), attendance="3", status="draft")
        screening("S3", "Q2", utc(2026, 11, 1, 0, 20), mechanism="01", attendance="5")
        screening("S4", "Q5", london(2026, 9, 12, 11), mechanism="01", attendance="5", learning_disability="U",
                  autism="5")
        screening("SO", "QO", london(2026, 10, 20, 12), mechanism="01", attendance="5",
                  team_id=staff.other_team.id)

        def result(screening_name, instrument, total, complete):
            session.add(InstrumentResult(screening_id=ids[screening_name], instrument=instrument,
                                         scoring_version="test", answers={}, total=total, complete=complete))

        result("S1", "phq9", 12, True)
        result("S1", "gad7", 7, False)  # partial: not reported
        result("S1", "bjmhs", 3, True)  # no confirmed national code: not reported
        result("SO", "phq9", 20, True)

        def onward(name, person_name, screening_name, on, service, team_id=staff.team.id):
            row = OnwardReferral(team_id=team_id, person_id=ids[person_name],
                                 screening_id=ids[screening_name] if screening_name else None,
                                 service=service, referred_on=on, status="made")
            session.add(row)
            session.flush()
            ids[name] = row.id

        onward("O1", "P1", "S1", date(2026, 10, 3), "housing")
        onward("O2", "P3", None, date(2026, 10, 31), "crisis_team")
        onward("O3", "P1", "S1", date(2026, 11, 1), "housing")
        onward("OO", "PO", "SO", date(2026, 10, 20), "housing", team_id=staff.other_team.id)
    return ids


@pytest.fixture
def month(engine, now):
    staff = make_staff(engine)
    return staff, build_month(engine, staff)


def built(engine, user, chosen=OCTOBER) -> national_return.NationalReturn:
    with db.reading(engine) as session:
        return national_return.build_return(session, user, chosen)


def table(result, name) -> list[dict]:
    return [dict(row) for row in next(found for found in result.tables if found.name == name).rows]


def test_the_month_runs_from_london_midnight_to_london_midnight():
    assert OCTOBER.utc_range() == (utc(2026, 9, 30, 23), utc(2026, 11, 1, 0))
    assert ReturnMonth(2026, 3).utc_range() == (utc(2026, 3, 1, 0), utc(2026, 3, 31, 23))
    assert OCTOBER.label == "October 2026" and OCTOBER.code == "2026-10"


def test_the_patient_index_is_everyone_with_activity_in_the_month(engine, month):
    staff, ids = month
    rows = table(built(engine, staff.team_lead), "MHS001MPI")
    assert rows == [
        {"LocalPatientId": str(ids["P1"]), "NHSNumber": "9434765919", "NHSNumberStatus": "02",
         "PersonBirthDate": date(1980, 5, 17), "GenderIDCode": "1", "EthnicCategory": "A",
         "LearningDisabilityStatus": "5", "AutismStatus": "2"},
        {"LocalPatientId": str(ids["P2"]), "NHSNumber": None, "NHSNumberStatus": "03",
         "PersonBirthDate": date(2012, 3, 1), "GenderIDCode": "2", "EthnicCategory": "Z",
         "LearningDisabilityStatus": None, "AutismStatus": None},
        {"LocalPatientId": str(ids["P3"]), "NHSNumber": "9434765918", "NHSNumberStatus": "02",
         "PersonBirthDate": date(1990, 1, 1), "GenderIDCode": "X", "EthnicCategory": None,
         "LearningDisabilityStatus": None, "AutismStatus": None},
        {"LocalPatientId": str(ids["P4"]), "NHSNumber": "4010232137", "NHSNumberStatus": "02",
         "PersonBirthDate": date(2019, 6, 1), "GenderIDCode": "1", "EthnicCategory": "99",
         "LearningDisabilityStatus": "U", "AutismStatus": "5"},
    ]


def test_referrals_are_the_requests_open_in_the_month_in_london_time(engine, month):
    staff, ids = month
    result = built(engine, staff.team_lead)
    patient = {name: str(ids[name]) for name in ("P1", "P2", "P3", "P4")}
    assert table(result, "MHS101Referral") == [
        {"ServiceRequestId": "R-Q5", "LocalPatientId": patient["P4"], "ReferralRequestReceivedDate": date(2026, 9, 10),
         "ReferralRequestReceivedTime": "10:00:00", "SourceOfReferralMH": "E3", "ClinRespPriorityType": "3",
         "ServDischDate": date(2026, 10, 1), "ServDischTime": "00:30:00"},
        {"ServiceRequestId": "R-Q4", "LocalPatientId": None, "ReferralRequestReceivedDate": date(2026, 9, 15),
         "ReferralRequestReceivedTime": "10:00:00", "SourceOfReferralMH": "E3", "ClinRespPriorityType": "3",
         "ServDischDate": None, "ServDischTime": None},
        {"ServiceRequestId": "R-Q1", "LocalPatientId": patient["P1"], "ReferralRequestReceivedDate": date(2026, 10, 1),
         "ReferralRequestReceivedTime": "00:30:00", "SourceOfReferralMH": "E1", "ClinRespPriorityType": "2",
         "ServDischDate": date(2026, 10, 2), "ServDischTime": "10:00:00"},
        {"ServiceRequestId": "R-Q3", "LocalPatientId": patient["P3"], "ReferralRequestReceivedDate": date(2026, 10, 25),
         "ReferralRequestReceivedTime": "01:30:00", "SourceOfReferralMH": None, "ClinRespPriorityType": "3",
         "ServDischDate": None, "ServDischTime": None},
        {"ServiceRequestId": "R-Q2", "LocalPatientId": patient["P2"], "ReferralRequestReceivedDate": date(2026, 10, 31),
         "ReferralRequestReceivedTime": "23:59:00", "SourceOfReferralMH": "E2", "ClinRespPriorityType": "1",
         "ServDischDate": None, "ServDischTime": None},
    ]
    assert table(result, "MHS102ServiceTypeReferredTo") == [
        {"ServiceRequestId": "R-Q5", "ServTeamTypeRefToMH": "D02", "ReferClosureDate": date(2026, 10, 1),
         "ReferClosureTime": "00:30:00", "ReferClosReason": "02"},
        {"ServiceRequestId": "R-Q4", "ServTeamTypeRefToMH": "D02", "ReferClosureDate": None,
         "ReferClosureTime": None, "ReferClosReason": None},
        {"ServiceRequestId": "R-Q1", "ServTeamTypeRefToMH": "D02", "ReferClosureDate": date(2026, 10, 2),
         "ReferClosureTime": "10:00:00", "ReferClosReason": None},
        {"ServiceRequestId": "R-Q3", "ServTeamTypeRefToMH": "D02", "ReferClosureDate": None,
         "ReferClosureTime": None, "ReferClosReason": None},
        {"ServiceRequestId": "R-Q2", "ServTeamTypeRefToMH": "D02", "ReferClosureDate": None,
         "ReferClosureTime": None, "ReferClosReason": None},
    ]


def test_a_request_closed_after_the_month_is_still_open_in_it(engine, month, now):
    staff, ids = month
    with db.writing(engine) as session:
        session.get(Request, ids["Q4"]).closed_at = utc(2026, 11, 2, 9)
    rows = {row["ServiceRequestId"]: row for row in table(built(engine, staff.team_lead), "MHS101Referral")}
    assert rows["R-Q4"]["ServDischDate"] is None  # closed in November: October's return shows it open


def test_care_contacts_are_the_screenings_dated_in_the_month(engine, month):
    staff, ids = month
    result = built(engine, staff.team_lead)
    assert table(result, "MHS201CareContact") == [
        {"CareContactId": str(ids["S1"]), "ServiceRequestId": "R-Q1", "CareContDate": date(2026, 10, 1),
         "CareContTime": "02:00:00", "ConsMechanismMH": "01", "AttendOrDNACode": "5"},
        {"CareContactId": str(ids["S6"]), "ServiceRequestId": "R-Q1", "CareContDate": date(2026, 10, 5),
         "CareContTime": "11:00:00", "ConsMechanismMH": "02", "AttendOrDNACode": "0"},
        {"CareContactId": str(ids["S2"]), "ServiceRequestId": "R-Q3", "CareContDate": date(2026, 10, 25),
         "CareContTime": "01:45:00", "ConsMechanismMH": None, "AttendOrDNACode": "3"},
    ]
    assert table(result, "MHS105OnwardReferral") == [
        {"ServiceRequestId": "R-Q1", "OnwardReferDate": date(2026, 10, 3), "LocalOnwardService": "housing"},
        {"ServiceRequestId": None, "OnwardReferDate": date(2026, 10, 31), "LocalOnwardService": "crisis_team"},
    ]
    assert table(result, "MHS606CodedScoreAssessmentRefer") == [
        {"ServiceRequestId": "R-Q1", "CodedAssToolType": "720433000", "PersScore": 12,
         "AssToolCompTimestamp": "2026-10-01T02:00:00+01:00"},
    ]


def test_every_data_quality_count_as_worked_out_by_hand(engine, month):
    staff, _ = month
    counted = {line.check.key: (line.counts[Quality.VALID], line.counts[Quality.NOT_STATED],
                                line.counts[Quality.INVALID], line.counts[Quality.MISSING])
               for line in built(engine, staff.team_lead).quality}
    assert counted == {
        "nhs_number": (2, 0, 1, 1),  # P1, P4 valid; P3 fails its check digit; P2 has none
        "birth_date": (3, 0, 1, 0),  # P4 would be 7
        "gender_identity": (3, 1, 0, 0),  # P3: X not known
        "ethnic_category": (1, 2, 0, 1),  # P2 Z, P4 99; P3 none
        "learning_disability_status": (1, 1, 0, 2),  # P1 5 (from S1, not S6); P4 U; P2, P3 none
        "autism_status": (2, 0, 0, 2),
        "referral_person": (4, 0, 0, 1),  # Q4 names nobody
        "source_of_referral": (4, 0, 0, 1),  # street triage has no national code
        "closure_reason": (1, 0, 0, 1),  # closed in October: Q5 mapped, Q1 "Screened" not
        "contact_mechanism": (2, 0, 0, 1),  # S2 none
        "attendance": (2, 0, 1, 0),  # S1 5, S2 3 (did not attend is an outcome); S6 0
        "onward_referral_request": (1, 0, 0, 1),  # O2 made outside a screening
    }


def test_each_report_line_lists_the_records_it_did_not_count_as_valid(engine, month):
    staff, ids = month
    with db.reading(engine) as session:
        def to_fix(key):
            return [(found.kind, found.record_id, found.reference, found.quality)
                    for found in national_return.records_to_fix(session, staff.team_lead, OCTOBER, key)]

        assert to_fix("nhs_number") == sorted([("person", ids["P2"], None, Quality.MISSING),
                                              ("person", ids["P3"], None, Quality.INVALID)], key=lambda row: row[1])
        assert to_fix("source_of_referral") == [("request", ids["Q3"], "R-Q3", Quality.MISSING)]
        assert to_fix("closure_reason") == [("request", ids["Q1"], "R-Q1", Quality.MISSING)]
        assert to_fix("attendance") == [("screening", ids["S6"], "R-Q1", Quality.INVALID)]
        assert to_fix("onward_referral_request") == [("person", ids["P3"], None, Quality.MISSING)]
        lines = national_return.quality_report(session, staff.team_lead, OCTOBER)
        for line in lines:  # the list and the count come from one definition
            assert len(national_return.records_to_fix(session, staff.team_lead, OCTOBER, line.check.key)) \
                <= line.to_fix


def test_every_coded_column_holds_only_national_codes(engine, month):
    staff, _ = month
    result = built(engine, staff.team_lead)
    national = {
        "NHSNumberStatus": {f"{number:02d}" for number in range(1, 9)},
        "GenderIDCode": set(GenderIdentity.choices()),
        "EthnicCategory": set(EthnicCategory.choices()),
        "SourceOfReferralMH": set(national_return.SOURCE_OF_REFERRAL_CODES),
        "ClinRespPriorityType": {"1", "2", "3", "4"},
        "ServTeamTypeRefToMH": {"D02"},
        "ReferClosReason": set(national_return.REFERRAL_CLOSURE_REASON_CODES),
        "CodedAssToolType": set(national_return.ASSESSMENT_TOOL_CODES.values()),
    }
    seen = set()
    for found in result.tables:
        for row in found.rows:
            for column, allowed in national.items():
                if row.get(column) is not None:
                    seen.add(column)
                    assert row[column] in allowed, (found.name, column, row[column])
    assert seen == set(national)


def test_a_month_with_no_activity_is_valid_and_empty(engine, month, tmp_path):
    staff, _ = month
    august = ReturnMonth(2026, 8)
    result = built(engine, staff.team_lead, august)
    assert result.rows == 0 and all(line.records == 0 and line.share(Quality.VALID) is None
                                    for line in result.quality)
    with db.reading(engine) as session:
        national_return.write_workbook(session, staff.team_lead, august, target=tmp_path / "empty.xlsx")
        national_return.write_csv_zip(session, staff.team_lead, august, target=tmp_path / "empty.zip")
    workbook = load_workbook(tmp_path / "empty.xlsx")
    assert workbook["MHS101Referral"].max_row == 1  # the headings only
    with zipfile.ZipFile(tmp_path / "empty.zip") as archive:
        referral_lines = archive.read("MHS101Referral.csv").decode().splitlines()
    assert referral_lines == ["ServiceRequestId,LocalPatientId,ReferralRequestReceivedDate,"
                              "ReferralRequestReceivedTime,SourceOfReferralMH,ClinRespPriorityType,ServDischDate,"
                              "ServDischTime"]


def test_the_workbook_and_the_csv_files_hold_the_same_tables(engine, month, tmp_path):
    staff, _ = month
    with db.reading(engine) as session:
        result = national_return.write_workbook(session, staff.team_lead, OCTOBER, target=tmp_path / "r.xlsx")
        national_return.write_csv_zip(session, staff.team_lead, OCTOBER, target=tmp_path / "r.zip")
    workbook = load_workbook(tmp_path / "r.xlsx")
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        names = archive.namelist()
        for found in result.tables:
            sheet_rows = list(workbook[found.name].iter_rows(values_only=True))
            csv_rows = list(csv.reader(io.StringIO(archive.read(f"{found.name}.csv").decode())))
            assert sheet_rows[0] == tuple(csv_rows[0]) == tuple(column.heading for column in found.columns)
            assert len(sheet_rows) == len(csv_rows) == len(found.rows) + 1
        quality_csv = list(csv.DictReader(io.StringIO(archive.read("data_quality.csv").decode())))
    assert names == [*(found.name + ".csv" for found in result.tables), "data_quality.csv"]
    referrals = list(csv.DictReader(io.StringIO(zipfile.ZipFile(tmp_path / "r.zip").read("MHS101Referral.csv")
                                                .decode())))
    assert referrals[0]["ReferralRequestReceivedDate"] == "2026-09-10"  # ISO dates in the national files
    sheet = workbook["MHS101Referral"]
    assert sheet["C2"].value == datetime(2026, 9, 10) and sheet["C2"].number_format == "dd/mm/yyyy"
    assert sheet["E2"].value == "E3" and sheet["B3"].value is None
    nhs = {row["Check"]: row for row in quality_csv}["NHS number"]
    assert (nhs["Records"], nhs["Valid"], nhs["Invalid"], nhs["Missing"], nhs["Valid (%)"]) == ("4", "2", "1", "1",
                                                                                              "50.0")
    assert workbook["Data quality"].max_row == len(national_return.CHECKS) + 1


def test_each_export_is_audited_with_the_month_and_the_tables(engine, month, tmp_path):
    staff, _ = month
    with db.reading(engine) as session:
        national_return.write_workbook(session, staff.team_lead, OCTOBER, target=tmp_path / "r.xlsx")
    with db.reading(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.entity == "national_return")).all()
    assert [(row.action, row.outcome, row.user_id) for row in rows] == [("export", "success", staff.team_lead.id)]
    assert rows[0].detail == ("National return October 2026 (workbook): MHS001MPI 4; MHS101Referral 5; "
                              "MHS102ServiceTypeReferredTo 5; MHS201CareContact 3; MHS105OnwardReferral 2; "
                              "MHS606CodedScoreAssessmentRefer 1")


@pytest.mark.parametrize("who", ["practitioner", "administrator"])
def test_without_the_export_permission_nothing_is_written_and_the_refusal_is_audited(engine, month, tmp_path, who):
    staff, _ = month
    user = getattr(staff, who)  # administrators export only once another administrator grants it
    target = tmp_path / "refused.xlsx"
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        national_return.write_workbook(session, user, OCTOBER, target=target)
    assert not target.exists()
    with db.reading(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.entity == "national_return")).all()
    assert [(row.action, row.outcome, row.user_id) for row in rows] == [("export", "denied", user.id)]


def test_a_practitioner_cannot_see_the_data_quality_report(engine, month):
    staff, _ = month
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        national_return.quality_report(session, staff.practitioner, OCTOBER)


@pytest.mark.parametrize("text, message", [
    ("2026-13", "Give the month as year-month, for example 2026-11 (not '2026-13')."),
    ("11/2026", "Give the month as year-month, for example 2026-11 (not '11/2026')."),
    ("", "Give the month as year-month, for example 2026-11 (not '')."),
    ("2026-11-01", "Give the month as year-month, for example 2026-11 (not '2026-11-01')."),
    ("2026-12", "December 2026 has not started yet: choose a month up to this one."),
    ("1999-12", "Choose a month from 2000 onwards."),
])
def test_a_bad_month_is_refused_with_a_reason(now, text, message):
    with pytest.raises(InputErrors) as refused:
        ReturnMonth.parse(text)
    assert refused.value.errors == {"month": message}


def test_twelve_months_of_data_quality_oldest_first(engine, month):
    staff, _ = month
    with db.reading(engine) as session:
        rows = national_return.quality_by_month(session, staff.team_lead, today=date(2026, 11, 5))
    # December 2025 to November 2026: the month under way is the last, so a slip shows as it happens
    assert [row["month"] for row in rows[::len(national_return.CHECKS)]] == [
        date(2025, 12, 1), *(date(2026, number, 1) for number in range(1, 12))]
    october = {row["check"]: row for row in rows if row["month"] == date(2026, 10, 1)}
    assert (october["nhs_number"]["records"], october["nhs_number"]["share_valid"]) == (4, 0.5)
    september = {row["check"]: row for row in rows if row["month"] == date(2026, 9, 1)}
    # Q5, Q4 and Q7; Q1 came at 00:30 on 1 October London time (23:30 UTC on 30/09): October's
    assert (september["referral_person"]["records"], september["referral_person"]["valid"]) == (3, 2)


def test_a_closure_reason_mapped_in_service_settings_is_reported_from_then_on(engine, month):
    staff, ids = month
    with db.reading(engine) as session:
        screened = session.exec(select(CodeItem).where(CodeItem.list_name == CodeList.CLOSURE_REASON,
                                                       CodeItem.code == "screened")).one()
    with db.writing(engine) as session:
        administration.set_national_code(session, staff.administrator, screened.id, screened.version, "01")
    result = built(engine, staff.team_lead)
    closures = {row["ServiceRequestId"]: row["ReferClosReason"] for row in table(result, "MHS102ServiceTypeReferredTo")}
    assert (closures["R-Q1"], closures["R-Q5"]) == ("01", "02")
    line = next(line for line in result.quality if line.check.key == "closure_reason")
    assert (line.counts[Quality.VALID], line.counts[Quality.MISSING]) == (2, 0)


def test_the_command_writes_both_files_as_the_named_user(sqlite_engine, sqlite_staff, now, tmp_path, capsys):
    import manage

    build_month(sqlite_engine, sqlite_staff)
    manage.main(["national-return", "--month", "2026-10", "--username", "lead", "--output", str(tmp_path / "out")])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["mhsds-return-2026-10.xlsx",
                                                                        "mhsds-return-2026-10.zip"]
    printed = capsys.readouterr().out
    assert "October 2026: MHS001MPI 4; MHS101Referral 5;" in printed
    assert "  NHS number: 4 records, 50% valid, 2 to fix" in printed
    with db.reading(sqlite_engine) as session:
        audited = session.exec(select(AuditEvent).where(AuditEvent.entity == "national_return")).all()
    assert [(row.user_id, row.outcome) for row in audited] == [(sqlite_staff.team_lead.id, "success")] * 2


@pytest.mark.parametrize("arguments, message", [
    (["--month", "2026-13", "--username", "lead"], "Give the month as year-month, for example 2026-11"),
    (["--month", "2026-10", "--username", "practitioner"], "practitioner may not export the national return"),
    (["--month", "2026-10", "--username", "nobody"], "No active account called 'nobody'."),
])
def test_the_command_refuses_with_a_reason_and_writes_nothing(sqlite_engine, sqlite_staff, now, tmp_path, arguments,
                                                             message):
    import manage

    with pytest.raises(SystemExit) as refused:
        manage.main(["national-return", *arguments, "--output", str(tmp_path / "out")])
    assert str(refused.value).startswith(message)
    assert not (tmp_path / "out").exists()
