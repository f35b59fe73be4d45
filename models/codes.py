"""Code lists.

Fixed lists whose values change behaviour are `StrEnum`s here. Lists a team must be able to edit
(vulnerabilities, onward services, sources of referral, closure reasons, request types) are
`CodeItem` rows, seeded from `EDITABLE_CODE_LISTS` below; national codes are kept beside the
local label. Sources: NHS Data Dictionary and the Mental Health Services Data Set (see domain.md).
"""

from enum import StrEnum


class LabelledCode(StrEnum):
    """A code whose value is stored and whose label is shown."""

    def __new__(cls, code: str, label: str):
        member = str.__new__(cls, code)
        member._value_ = code
        member.label = label
        return member

    @classmethod
    def label_of(cls, code: str | None) -> str:
        if code is None:
            return ""
        try:
            return cls(code).label
        except ValueError:
            return str(code)

    @classmethod
    def choices(cls) -> list[str]:
        return [member.value for member in cls]


class Role(LabelledCode):
    PRACTITIONER = "practitioner", "Practitioner"
    TEAM_LEAD = "team_lead", "Team lead"
    ADMINISTRATOR = "administrator", "Administrator"


class SiteKind(LabelledCode):
    CUSTODY_SUITE = "custody_suite", "Custody suite"
    MAGISTRATES_COURT = "magistrates_court", "Magistrates' court"
    YOUTH_COURT = "youth_court", "Youth court"
    CROWN_COURT = "crown_court", "Crown Court"
    PROBATION_OFFICE = "probation_office", "Probation office"
    PRISON = "prison", "Prison"
    COMMUNITY = "community", "Community"


class Urgency(LabelledCode):
    EMERGENCY = "emergency", "Emergency"
    URGENT = "urgent", "Urgent"
    ROUTINE = "routine", "Routine"


class RequestType(LabelledCode):
    ADVICE = "advice", "Advice or information"
    SCREENING = "screening", "Screening or assessment"
    PRISON_RELEASE = "prison_release", "Prison release"
    MAPPA = "mappa", "MAPPA meeting"
    PRE_SENTENCE_REPORT = "pre_sentence_report", "Pre-sentence report information"


class RequestStatus(LabelledCode):
    NEW = "new", "New"
    ALLOCATED = "allocated", "Allocated"
    IN_PROGRESS = "in_progress", "In progress"
    CLOSED = "closed", "Closed"
    REOPENED = "reopened", "Reopened"


OPEN_REQUEST_STATUSES = (
    RequestStatus.NEW,
    RequestStatus.ALLOCATED,
    RequestStatus.IN_PROGRESS,
    RequestStatus.REOPENED,
)


class GenderIdentity(LabelledCode):
    MALE = "1", "Male (including trans man)"
    FEMALE = "2", "Female (including trans woman)"
    NON_BINARY = "3", "Non-binary"
    OTHER = "4", "Other (not listed)"
    NOT_KNOWN = "X", "Not known"
    NOT_STATED = "Z", "Not stated"


class EthnicCategory(LabelledCode):
    WHITE_BRITISH = "A", "White British"
    WHITE_IRISH = "B", "White Irish"
    WHITE_OTHER = "C", "Any other White background"
    MIXED_WHITE_BLACK_CARIBBEAN = "D", "White and Black Caribbean"
    MIXED_WHITE_BLACK_AFRICAN = "E", "White and Black African"
    MIXED_WHITE_ASIAN = "F", "White and Asian"
    MIXED_OTHER = "G", "Any other mixed background"
    INDIAN = "H", "Indian"
    PAKISTANI = "J", "Pakistani"
    BANGLADESHI = "K", "Bangladeshi"
    ASIAN_OTHER = "L", "Any other Asian background"
    CARIBBEAN = "M", "Caribbean"
    AFRICAN = "N", "African"
    BLACK_OTHER = "P", "Any other Black background"
    CHINESE = "R", "Chinese"
    OTHER = "S", "Any other ethnic group"
    NOT_STATED = "Z", "Not stated"
    NOT_KNOWN = "99", "Not known"


class DiagnosisStatus(LabelledCode):
    """Learning disability status and autism status share the national codes."""

    CONFIRMED = "1", "Confirmed diagnosis"
    SUSPECTED_ON_PATHWAY = "2", "Suspected, on a diagnostic pathway"
    SUSPECTED_NOT_ON_PATHWAY = "3", "Suspected, not on a pathway"
    SUSPECTED_PATHWAY_NOT_KNOWN = "4", "Suspected, pathway not known"
    NO_DIAGNOSIS = "5", "No diagnosis"
    NOT_KNOWN = "U", "Asked but not known"
    NOT_RECORDED = "X", "Not recorded"
    DECLINED = "Z", "Declined to answer"


class ContactMechanism(LabelledCode):
    FACE_TO_FACE = "01", "Face to face"
    TELEPHONE = "02", "Telephone"
    TALK_TYPE = "04", "Talk type for a person unable to speak"
    EMAIL = "05", "Email"
    TEXT_MESSAGE = "09", "Text message"
    INSTANT_MESSAGING = "10", "Instant messaging"
    VIDEO = "11", "Video"
    OTHER = "98", "Other"


class AttendanceCode(LabelledCode):
    ATTENDED_ON_TIME = "5", "Attended on time"
    ARRIVED_LATE_SEEN = "6", "Arrived late and was seen"
    ARRIVED_LATE_NOT_SEEN = "7", "Arrived late and was not seen"
    CANCELLED_BY_PERSON = "2", "Cancelled by the person"
    DID_NOT_ATTEND = "3", "Did not attend without warning"
    CANCELLED_BY_PROVIDER = "4", "Cancelled or postponed by the provider"
    NOT_YET_HAPPENED = "0", "Not yet happened"


class ReferralStatus(LabelledCode):
    MADE = "made", "Made"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    ATTENDED = "attended", "Attended"
    DID_NOT_ATTEND = "did_not_attend", "Did not attend"


class NhsNumberStatus(LabelledCode):
    PRESENT = "present", "Present and checked"
    NOT_KNOWN = "not_known", "Not known"
    DECLINED = "declined", "Person declined to give it"
    NOT_TRACED = "not_traced", "Trace attempted, not found"


class ConsentStatus(LabelledCode):
    GIVEN = "given", "Given"
    DECLINED = "declined", "Declined"
    LACKS_CAPACITY = "lacks_capacity", "Person lacks capacity"


class RiskLevel(LabelledCode):
    NONE = "none", "None"
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ScreeningOutcome(LabelledCode):
    NO_FURTHER_ACTION = "no_further_action", "No further action"
    FURTHER_ASSESSMENT = "further_assessment", "Further assessment"
    ONWARD_REFERRAL = "onward_referral", "Onward referral"
    DIVERSION_RECOMMENDED = "diversion_recommended", "Diversion recommended to police or court"
    MENTAL_HEALTH_ACT_ASSESSMENT = "mha_assessment", "Mental Health Act assessment"


class ScreeningStatus(LabelledCode):
    DRAFT = "draft", "Draft"
    COMPLETE = "complete", "Complete"


class ActivityKind(LabelledCode):
    MAPPA_MEETING = "mappa_meeting", "MAPPA meeting"
    TRAINING = "training", "Training delivered"
    PRE_SENTENCE_REPORT = "pre_sentence_report", "Pre-sentence report information"
    PRISON_RELEASE = "prison_release", "Prison release liaison"


class ReportType(LabelledCode):
    ORAL = "oral", "Oral"
    FAST_DELIVERY = "fast_delivery", "Fast delivery"
    STANDARD_DELIVERY = "standard_delivery", "Standard delivery (within 15 days)"


class CodeList(LabelledCode):
    """The code lists a team edits for itself (stored as `CodeItem` rows)."""

    VULNERABILITY = "vulnerability", "Vulnerabilities"
    ONWARD_SERVICE = "onward_service", "Onward services"
    SOURCE_OF_REFERRAL = "source_of_referral", "Sources of referral"
    CLOSURE_REASON = "closure_reason", "Closure reasons"
    REQUEST_TYPE = "request_type", "Request types"


# National codes an editable list's entries may carry (Mental Health Services Data Set): SOURCE OF
# REFERRAL FOR MENTAL HEALTH SERVICES (domain.md, and NHS England's MHSDS data-quality rules) and
# REFERRAL CLOSURE REASON (01 to 09, valid values in NHS England's MHSDS data-quality rules; their
# meanings were not confirmed here, so the seeded closure reasons carry none: a team maps its own).
NATIONAL_CODES: dict[CodeList, tuple[str, ...]] = {
    CodeList.SOURCE_OF_REFERRAL: (
        "A1", "A2", "A3", "A4", "B1", "B2", "C1", "C2", "C3", "D1", "D2", "E1", "E2", "E3", "E4", "E5", "E6",
        "F1", "F2", "F3", "G1", "G2", "G3", "G4", "H1", "H2", "I1", "I2", "M1", "M2", "M3", "M4", "M5", "M6",
        "M7", "N3", "P1",
    ),
    CodeList.CLOSURE_REASON: ("01", "02", "03", "04", "05", "06", "07", "08", "09"),
}  # fmt: skip

# (code, label, national code or None) — seeded once; teams edit labels, order and activity.
EDITABLE_CODE_LISTS: dict[CodeList, list[tuple[str, str, str | None]]] = {
    CodeList.VULNERABILITY: [
        ("mental_health", "Mental health", None),
        ("suicide_self_harm", "Suicide or self-harm risk", None),
        ("learning_disability", "Learning disability", None),
        ("learning_difficulty", "Learning difficulty", None),
        ("autism", "Autism", None),
        ("adhd", "ADHD", None),
        ("brain_injury", "Acquired brain injury / cognitive disorder", None),
        ("communication_needs", "Speech, language and communication needs", None),
        ("drugs", "Substance misuse (drugs)", None),
        ("alcohol", "Alcohol misuse", None),
        ("physical_health", "Physical health", None),
        ("housing", "Housing need / unstable accommodation", None),
        ("debt", "Financial difficulty and debt", None),
        ("abuse_trauma", "Domestic or sexual abuse / trauma", None),
        ("safeguarding", "Safeguarding concern (child or adult)", None),
        ("veteran", "Veteran", None),
        ("pregnancy", "Pregnancy", None),
        ("charge_related", "Charge-related vulnerability", None),
    ],
    CodeList.ONWARD_SERVICE: [
        ("housing", "Housing", None),
        ("benefits_advice", "Benefits and financial advice", None),
        ("gp_registration", "GP registration / primary care", None),
        ("community_mental_health", "Community mental health team", None),
        ("crisis_team", "Crisis team", None),
        ("talking_therapies", "Talking therapies", None),
        ("drug_alcohol_service", "Drug and alcohol service", None),
        ("learning_disability_team", "Learning disability team", None),
        ("autism_service", "Autism service", None),
        ("speech_language_therapy", "Speech and language therapy", None),
        ("education_employment", "Education, training and employment", None),
        ("probation", "Probation", None),
        ("youth_offending_team", "Youth offending team", None),
        ("social_care", "Social care (adult or children's)", None),
        ("domestic_abuse_service", "Domestic abuse service", None),
        ("veterans_service", "Veterans' service", None),
    ],
    CodeList.SOURCE_OF_REFERRAL: [
        ("police", "Police", "E1"),
        ("courts", "Courts", "E2"),
        ("probation", "Probation", "E3"),
        ("prison", "Prison", "E4"),
        ("court_liaison", "Court liaison and diversion service", "E5"),
        ("youth_offending_team", "Youth offending team", "E6"),
        ("self", "Self", "B1"),
        ("carer_relative", "Carer or relative", "B2"),
        ("gp", "GP", "A1"),
        ("social_services", "Social services", "C1"),
        ("housing", "Housing", "C3"),
        ("solicitor", "Solicitor", "M6"),
        ("voluntary_sector", "Voluntary sector", "G4"),
        ("emergency_department", "Emergency department", "H1"),
        ("drug_action_team", "Drug action team / drug misuse agency", "M4"),
        ("single_point_of_access", "Single point of access", "M7"),
        ("internal", "Internal referral", "P1"),
        ("other", "Other service or agency", "M6"),
    ],
    CodeList.CLOSURE_REASON: [
        ("advice_given", "Advice or information given", None),
        ("screened", "Screened", None),
        ("referred_on", "Referred on", None),
        ("released_before_seen", "Released before seen", None),
        ("declined", "Person declined", None),
        ("not_appropriate", "Not appropriate for the service", None),
        ("duplicate", "Duplicate request", None),
    ],
    CodeList.REQUEST_TYPE: [(member.value, member.label, None) for member in RequestType],
}
