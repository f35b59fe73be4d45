"""Scorable screening instruments: their questions as data, and the rules scoring them.

Every instrument carries a scoring version that is stored with each result, so changing
a question, a band or a rule means a new version, never a silent rewrite of results
already recorded. Every item answer is kept alongside the total, so any result can be
recomputed and audited later.

Pure Python: no Streamlit, no database.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    label: str
    score: int


@dataclass(frozen=True)
class Item:
    number: int
    key: str
    text: str
    options: tuple[Option, ...]

    @property
    def scores(self) -> tuple[int, ...]:
        return tuple(option.score for option in self.options)


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    label: str
    meaning: str

    def covers(self, total: int) -> bool:
        return self.low <= total <= self.high


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    version: str
    preamble: str
    items: tuple[Item, ...]
    bands: tuple[Band, ...]

    @property
    def min_total(self) -> int:
        return sum(min(item.scores) for item in self.items)

    @property
    def max_total(self) -> int:
        return sum(max(item.scores) for item in self.items)

    def item(self, key: str) -> Item:
        for item in self.items:
            if item.key == key:
                return item
        first, last = self.items[0].key, self.items[-1].key
        raise ValueError(
            f"{self.name} has no item '{key}': its items are {first} to {last}."
        )


@dataclass(frozen=True)
class Score:
    instrument: str
    version: str
    answers: dict[str, int]
    total: int
    band: str | None
    meaning: str | None
    flags: tuple[str, ...]
    complete: bool
    answered: int
    expected: int


FLAG_SELF_HARM = "self-harm thoughts (PHQ-9 item 9)"
FLAG_ANXIETY_FURTHER_ASSESSMENT = (
    "further assessment suggested (GAD-7 total 10 or more)"
)
FLAG_FULL_AUDIT = "complete full AUDIT (AUDIT-C total 5 or more)"
FLAG_BJMHS_SYMPTOMS = "refer: 2 or more current symptoms (BJMHS items 1 to 6)"
FLAG_BJMHS_MEDICATION = "refer: currently taking psychiatric medication (BJMHS item 7)"
FLAG_BJMHS_HOSPITAL = "refer: ever in hospital for mental health (BJMHS item 8)"
FLAG_BJMHS_SCREENER = "refer: screener's judgement (BJMHS)"

BJMHS_REFER = "refer for further assessment"
BJMHS_NO_REFERRAL = "no referral indicated"


def _numbered(
    questions: tuple[tuple[str, tuple[Option, ...]], ...],
) -> tuple[Item, ...]:
    # Keys follow the item numbers on the published forms, so a stored answer such as
    # {"item9": 1} reads the same way practitioners speak about it ("PHQ-9 item 9").
    return tuple(
        Item(number, f"item{number}", text, options)
        for number, (text, options) in enumerate(questions, start=1)
    )


def _same_options(
    texts: tuple[str, ...], options: tuple[Option, ...]
) -> tuple[Item, ...]:
    return _numbered(tuple((text, options) for text in texts))


# PHQ-9 and GAD-7 share the published two-week frequency scale.
_TWO_WEEK_FREQUENCY = (
    Option("Not at all", 0),
    Option("Several days", 1),
    Option("More than half the days", 2),
    Option("Nearly every day", 3),
)

PHQ9 = Instrument(
    code="phq9",
    name="PHQ-9",
    version="phq9-2001.1",
    preamble=(
        "Over the last 2 weeks, how often have you been bothered by any of the "
        "following problems?"
    ),
    items=_same_options(
        (
            "Little interest or pleasure in doing things",
            "Feeling down, depressed, or hopeless",
            "Trouble falling or staying asleep, or sleeping too much",
            "Feeling tired or having little energy",
            "Poor appetite or overeating",
            (
                "Feeling bad about yourself — or that you are a failure or have let "
                "yourself or your family down"
            ),
            (
                "Trouble concentrating on things, such as reading the newspaper or "
                "watching television"
            ),
            (
                "Moving or speaking so slowly that other people could have noticed? Or "
                "the opposite — being so fidgety or restless that you have been moving "
                "around a lot more than usual"
            ),
            (
                "Thoughts that you would be better off dead or of hurting yourself in "
                "some way"
            ),
        ),
        _TWO_WEEK_FREQUENCY,
    ),
    bands=(
        Band(0, 4, "minimal", "Minimal depressive symptoms."),
        Band(5, 9, "mild", "Mild depressive symptoms."),
        Band(10, 14, "moderate", "Moderate depressive symptoms."),
        Band(15, 19, "moderately severe", "Moderately severe depressive symptoms."),
        Band(20, 27, "severe", "Severe depressive symptoms."),
    ),
)

GAD7 = Instrument(
    code="gad7",
    name="GAD-7",
    version="gad7-2006.1",
    preamble=(
        "Over the last 2 weeks, how often have you been bothered by the following "
        "problems?"
    ),
    items=_same_options(
        (
            "Feeling nervous, anxious or on edge",
            "Not being able to stop or control worrying",
            "Worrying too much about different things",
            "Trouble relaxing",
            "Being so restless that it is hard to sit still",
            "Becoming easily annoyed or irritable",
            "Feeling afraid as if something awful might happen",
        ),
        _TWO_WEEK_FREQUENCY,
    ),
    bands=(
        Band(0, 4, "minimal", "Minimal anxiety symptoms."),
        Band(5, 9, "mild", "Mild anxiety symptoms."),
        Band(
            10,
            14,
            "moderate",
            "Moderate anxiety symptoms: further assessment suggested.",
        ),
        Band(
            15, 21, "severe", "Severe anxiety symptoms: further assessment suggested."
        ),
    ),
)

# The WHO AUDIT (2001 manual), interview wording; "drink" means one standard drink.
_DRINKING_FREQUENCY = (
    Option("Never", 0),
    Option("Monthly or less", 1),
    Option("2 to 4 times a month", 2),
    Option("2 to 3 times a week", 3),
    Option("4 or more times a week", 4),
)
# The UK version (Public Health England, 2017 onwards) counts UK units where the WHO counts "drinks";
# its threshold of 5 for AUDIT-C and every score are the WHO's.
_UNITS_ON_A_TYPICAL_DAY = (
    Option("0 to 2", 0),
    Option("3 or 4", 1),
    Option("5 or 6", 2),
    Option("7, 8 or 9", 3),
    Option("10 or more", 4),
)
_HOW_OFTEN = (
    Option("Never", 0),
    Option("Less than monthly", 1),
    Option("Monthly", 2),
    Option("Weekly", 3),
    Option("Daily or almost daily", 4),
)
# Questions 9 and 10 have three answers scored 0, 2 and 4: a score of 1 or 3 is
# impossible.
_EVER_OR_IN_THE_LAST_YEAR = (
    Option("No", 0),
    Option("Yes, but not in the last year", 2),
    Option("Yes, during the last year", 4),
)

_AUDIT_ITEMS = _numbered(
    (
        ("How often do you have a drink containing alcohol?", _DRINKING_FREQUENCY),
        ("How many units of alcohol do you drink on a typical day when you are drinking?", _UNITS_ON_A_TYPICAL_DAY),
        (
            (
                "How often have you had 6 or more units if female, or 8 or more if male, on a single "
                "occasion in the last year?"
            ),
            _HOW_OFTEN,
        ),
        (
            (
                "How often during the last year have you found that you were not able "
                "to stop drinking once you had started?"
            ),
            _HOW_OFTEN,
        ),
        (
            (
                "How often during the last year have you failed to do what was "
                "normally expected from you because of drinking?"
            ),
            _HOW_OFTEN,
        ),
        (
            (
                "How often during the last year have you needed a first drink in the "
                "morning to get yourself going after a heavy drinking session?"
            ),
            _HOW_OFTEN,
        ),
        (
            (
                "How often during the last year have you had a feeling of guilt or "
                "remorse after drinking?"
            ),
            _HOW_OFTEN,
        ),
        (
            (
                "How often during the last year have you been unable to remember what "
                "happened the night before because you had been drinking?"
            ),
            _HOW_OFTEN,
        ),
        (
            "Have you or someone else been injured as a result of your drinking?",
            _EVER_OR_IN_THE_LAST_YEAR,
        ),
        (
            (
                "Has a relative or friend or a doctor or another health worker been "
                "concerned about your drinking or suggested you cut down?"
            ),
            _EVER_OR_IN_THE_LAST_YEAR,
        ),
    )
)

_AUDIT_PREAMBLE = (
    "Now I am going to ask you some questions about your drinking during the last year, counted in "
    "UK units: one unit is 10 ml of pure alcohol — a single 25 ml measure of spirits; a pint of "
    "ordinary-strength beer or a 175 ml glass of wine is about two."
)

# AUDIT-C is AUDIT questions 1 to 3 exactly, sharing the same items (and keys), so a
# positive AUDIT-C's answers carry straight into the full AUDIT.
AUDIT_C = Instrument(
    code="auditc",
    name="AUDIT-C",
    version="auditc-uk-2017.1",
    preamble=_AUDIT_PREAMBLE,
    items=_AUDIT_ITEMS[:3],
    bands=(
        Band(0, 4, "negative", "Below the AUDIT-C threshold of 5."),
        Band(
            5,
            12,
            "positive",
            "Positive screen: complete the remaining seven AUDIT questions.",
        ),
    ),
)

AUDIT = Instrument(
    code="audit",
    name="AUDIT",
    version="audit-uk-2017.1",
    preamble=_AUDIT_PREAMBLE,
    items=_AUDIT_ITEMS,
    bands=(
        Band(0, 7, "lower risk", "Lower-risk drinking: alcohol education."),
        Band(8, 15, "increasing risk", "Increasing-risk drinking: simple advice."),
        Band(
            16,
            19,
            "higher risk",
            (
                "Higher-risk drinking: simple advice, brief counselling and continued "
                "monitoring."
            ),
        ),
        Band(
            20,
            40,
            "possible dependence",
            (
                "Possible alcohol dependence: refer for specialist assessment and "
                "treatment."
            ),
        ),
    ),
)

_YES_OR_NO = (Option("No", 0), Option("Yes", 1))
_YES = 1

# The BJMHS has no score bands: its result follows from referral rules (see
# _bjmhs_flags), so its total is only the count of "yes" answers.
BJMHS = Instrument(
    code="bjmhs",
    name="Brief Jail Mental Health Screen",
    version="bjmhs-2005.1",
    preamble=(
        "Ask each question and record yes or no. Questions 1 to 6 are about current "
        "symptoms. Refer for further assessment on your own judgement too: the screen "
        "does not find everyone in need."
    ),
    items=_same_options(
        (
            (
                "Do you currently believe that someone can control your mind by "
                "putting thoughts into your head or taking thoughts out of your head?"
            ),
            (
                "Do you currently feel that other people know your thoughts and can "
                "read your mind?"
            ),
            (
                "Have you currently lost or gained as much as two pounds a week for "
                "several weeks without even trying?"
            ),
            (
                "Have you or your family or friends noticed that you are currently "
                "much more active than you usually are?"
            ),
            (
                "Do you currently feel like you have to talk or move more slowly than "
                "you usually do?"
            ),
            (
                "Have there currently been a few weeks when you felt like you were "
                "useless or sinful?"
            ),
            (
                "Are you currently taking any medication prescribed for you by a "
                "physician for any emotional or mental health problems?"
            ),
            "Have you ever been in a hospital for emotional or mental health problems?",
        ),
        _YES_OR_NO,
    ),
    bands=(),
)

INSTRUMENTS: dict[str, Instrument] = {
    instrument.code: instrument for instrument in (PHQ9, GAD7, AUDIT_C, AUDIT, BJMHS)
}

# Copyrighted tools: the team records the result only. Their items must never be
# reproduced.
PROPRIETARY_RESULTS: dict[str, tuple[str, ...]] = {
    "hasi": ("Refer", "No referral"),
    "ldsq": ("Indicates possible learning disability", "Does not indicate"),
    "chat": ("Needs identified", "No needs identified"),
}


def band_for(instrument: Instrument, total: int) -> Band:
    covering = [band for band in instrument.bands if band.covers(total)]
    if len(covering) != 1:
        raise ValueError(f"No {instrument.name} band covers a total of {total}.")
    return covering[0]


def needs_full_audit(score: Score) -> bool:
    return FLAG_FULL_AUDIT in score.flags


def score(
    code: str, answers: Mapping[str, int | None], *, screener_refers: bool = False
) -> Score:
    instrument = _instrument(code)
    if screener_refers and instrument is not BJMHS:
        raise ValueError("A screener's referral can only be recorded on the BJMHS.")
    given = _validated(instrument, answers)
    total = sum(given.values())
    flags = _FLAG_RULES[instrument.code](given, total, screener_refers)
    complete = len(given) == len(instrument.items)
    band, meaning = _result(instrument, total, flags) if complete else (None, None)
    return Score(
        instrument=instrument.code,
        version=instrument.version,
        answers=given,
        total=total,
        band=band,
        meaning=meaning,
        flags=flags,
        complete=complete,
        answered=len(given),
        expected=len(instrument.items),
    )


def _instrument(code: str) -> Instrument:
    if code not in INSTRUMENTS:
        known = ", ".join(INSTRUMENTS)
        raise ValueError(f"Unknown instrument '{code}': choose one of {known}.")
    return INSTRUMENTS[code]


def _validated(
    instrument: Instrument, answers: Mapping[str, int | None]
) -> dict[str, int]:
    for key, value in answers.items():
        item = instrument.item(key)
        if value is not None:
            _check_score(instrument, item, value)
    # Questionnaire order, so a stored result reads item 1 to item N; None is a draft's
    # unanswered item and is left out rather than counted as 0.
    return {
        item.key: answers[item.key]
        for item in instrument.items
        if answers.get(item.key) is not None
    }


def _check_score(instrument: Instrument, item: Item, value: object) -> None:
    # bool and float compare equal to ints (True == 1, 1.0 == 1): check the type first.
    if type(value) is not int or value not in item.scores:
        allowed = ", ".join(str(allowed_score) for allowed_score in item.scores)
        raise ValueError(
            f"{instrument.name} item {item.number} cannot score {value!r}: "
            f"the allowed scores are {allowed}."
        )


def _result(
    instrument: Instrument, total: int, flags: tuple[str, ...]
) -> tuple[str, str]:
    if instrument is BJMHS:
        return _bjmhs_result(flags)
    band = band_for(instrument, total)
    return band.label, band.meaning


def _bjmhs_result(flags: tuple[str, ...]) -> tuple[str, str]:
    if flags:
        return BJMHS_REFER, "Refer for further mental health assessment."
    return (
        BJMHS_NO_REFERRAL,
        (
            "No referral rule met. The screen does not find everyone in need: refer on "
            "judgement if concerned."
        ),
    )


# Flag rules run on drafts too. Scores are never negative, so a draft whose answers
# already meet a rule still meets it when complete: raising the flag early loses nothing
# and may matter within the custody clock.
FlagRule = Callable[[dict[str, int], int, bool], tuple[str, ...]]


def _phq9_flags(
    answers: dict[str, int], total: int, screener_refers: bool
) -> tuple[str, ...]:
    # Item 9 asks about thoughts of being better off dead or of self-harm: any answer
    # above "not at all" is a risk to act on whatever the total.
    return (FLAG_SELF_HARM,) if answers.get("item9", 0) > 0 else ()


def _gad7_flags(
    answers: dict[str, int], total: int, screener_refers: bool
) -> tuple[str, ...]:
    return (FLAG_ANXIETY_FURTHER_ASSESSMENT,) if total >= 10 else ()


def _audit_c_flags(
    answers: dict[str, int], total: int, screener_refers: bool
) -> tuple[str, ...]:
    return (FLAG_FULL_AUDIT,) if total >= 5 else ()


def _no_flags(
    answers: dict[str, int], total: int, screener_refers: bool
) -> tuple[str, ...]:
    return ()


def _bjmhs_flags(
    answers: dict[str, int], total: int, screener_refers: bool
) -> tuple[str, ...]:
    current_symptoms = sum(answers.get(f"item{number}", 0) for number in range(1, 7))
    rules = (
        (current_symptoms >= 2, FLAG_BJMHS_SYMPTOMS),
        (answers.get("item7") == _YES, FLAG_BJMHS_MEDICATION),
        (answers.get("item8") == _YES, FLAG_BJMHS_HOSPITAL),
        (screener_refers, FLAG_BJMHS_SCREENER),
    )
    return tuple(flag for rule_met, flag in rules if rule_met)


_FLAG_RULES: dict[str, FlagRule] = {
    PHQ9.code: _phq9_flags,
    GAD7.code: _gad7_flags,
    AUDIT_C.code: _audit_c_flags,
    AUDIT.code: _no_flags,
    BJMHS.code: _bjmhs_flags,
}
