import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services import instruments
from services.instruments import (
    BJMHS_NO_REFERRAL,
    BJMHS_REFER,
    FLAG_ANXIETY_FURTHER_ASSESSMENT,
    FLAG_BJMHS_HOSPITAL,
    FLAG_BJMHS_MEDICATION,
    FLAG_BJMHS_SCREENER,
    FLAG_BJMHS_SYMPTOMS,
    FLAG_FULL_AUDIT,
    FLAG_SELF_HARM,
    INSTRUMENTS,
    PROPRIETARY_RESULTS,
    Instrument,
    band_for,
    needs_full_audit,
    score,
)

BANDED = [code for code, instrument in INSTRUMENTS.items() if instrument.bands]


def answers_totalling(instrument: Instrument, total: int) -> dict[str, int]:
    """A full set of valid answers adding up to total.

    Filled from the last item backwards so AUDIT's 0/2/4 questions (9 and 10) take what
    they can and the 0-4 questions before them absorb any odd remainder.
    """
    answers = {}
    remaining = total
    for item in reversed(instrument.items):
        chosen = max(
            option_score for option_score in item.scores if option_score <= remaining
        )
        answers[item.key] = chosen
        remaining -= chosen
    assert remaining == 0, f"cannot build answers totalling {total}"
    return answers


def all_answered(code: str, value: int = 0, **overrides: int) -> dict[str, int]:
    answers = {item.key: value for item in INSTRUMENTS[code].items}
    answers.update(overrides)
    return answers


# --- the registry and the published items
# ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "item_count", "min_total", "max_total"),
    [
        ("phq9", 9, 0, 27),
        ("gad7", 7, 0, 21),
        ("auditc", 3, 0, 12),
        ("audit", 10, 0, 40),
        ("bjmhs", 8, 0, 8),
    ],
)
def test_each_instrument_has_its_published_items_and_range(
    code, item_count, min_total, max_total
):
    instrument = INSTRUMENTS[code]
    assert instrument.code == code
    assert len(instrument.items) == item_count
    assert [item.number for item in instrument.items] == list(range(1, item_count + 1))
    assert (instrument.min_total, instrument.max_total) == (min_total, max_total)
    assert instrument.version.startswith(f"{code}-")


@pytest.mark.parametrize("code", list(INSTRUMENTS))
def test_item_keys_and_option_scores_are_unambiguous(code):
    instrument = INSTRUMENTS[code]
    keys = [item.key for item in instrument.items]
    assert len(set(keys)) == len(keys)
    for item in instrument.items:
        assert item.text
        assert len(set(item.scores)) == len(item.scores)
        assert all(option.label for option in item.options)


def test_phq9_item9_is_the_self_harm_question():
    item9 = INSTRUMENTS["phq9"].item("item9")
    assert "better off dead" in item9.text
    assert [option.label for option in item9.options] == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
    ]


def test_audit_c_is_audit_questions_one_to_three():
    assert INSTRUMENTS["auditc"].items == INSTRUMENTS["audit"].items[:3]


@pytest.mark.parametrize("key", ["item9", "item10"])
def test_audit_questions_9_and_10_score_0_2_or_4_with_their_labels(key):
    item = INSTRUMENTS["audit"].item(key)
    assert [(option.label, option.score) for option in item.options] == [
        ("No", 0),
        ("Yes, but not in the last year", 2),
        ("Yes, during the last year", 4),
    ]


def test_proprietary_tools_record_results_only():
    assert PROPRIETARY_RESULTS == {
        "hasi": ("Refer", "No referral"),
        "ldsq": ("Indicates possible learning disability", "Does not indicate"),
        "chat": ("Needs identified", "No needs identified"),
    }
    assert not set(PROPRIETARY_RESULTS) & set(INSTRUMENTS)


# --- bands
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "total", "band"),
    [
        ("phq9", 0, "minimal"),
        ("phq9", 4, "minimal"),
        ("phq9", 5, "mild"),
        ("phq9", 9, "mild"),
        ("phq9", 10, "moderate"),
        ("phq9", 14, "moderate"),
        ("phq9", 15, "moderately severe"),
        ("phq9", 19, "moderately severe"),
        ("phq9", 20, "severe"),
        ("phq9", 27, "severe"),
        ("gad7", 0, "minimal"),
        ("gad7", 4, "minimal"),
        ("gad7", 5, "mild"),
        ("gad7", 9, "mild"),
        ("gad7", 10, "moderate"),
        ("gad7", 14, "moderate"),
        ("gad7", 15, "severe"),
        ("gad7", 21, "severe"),
        ("auditc", 0, "negative"),
        ("auditc", 4, "negative"),
        ("auditc", 5, "positive"),
        ("auditc", 12, "positive"),
        ("audit", 0, "lower risk"),
        ("audit", 7, "lower risk"),
        ("audit", 8, "increasing risk"),
        ("audit", 15, "increasing risk"),
        ("audit", 16, "higher risk"),
        ("audit", 19, "higher risk"),
        ("audit", 20, "possible dependence"),
        ("audit", 40, "possible dependence"),
    ],
)
def test_band_boundaries(code, total, band):
    instrument = INSTRUMENTS[code]
    result = score(code, answers_totalling(instrument, total))
    assert result.total == total
    assert result.complete
    assert result.band == band
    assert result.meaning == band_for(instrument, total).meaning


@pytest.mark.parametrize("code", BANDED)
def test_bands_cover_the_whole_range_with_no_gaps_or_overlaps(code):
    instrument = INSTRUMENTS[code]
    bands = sorted(instrument.bands, key=lambda band: band.low)
    assert bands[0].low == instrument.min_total
    assert bands[-1].high == instrument.max_total
    for earlier, later in itertools.pairwise(bands):
        assert later.low == earlier.high + 1
    for total in range(instrument.min_total, instrument.max_total + 1):
        assert sum(band.covers(total) for band in bands) == 1, total


@pytest.mark.parametrize("code", BANDED)
def test_band_for_refuses_totals_outside_the_range(code):
    instrument = INSTRUMENTS[code]
    for total in (instrument.min_total - 1, instrument.max_total + 1):
        with pytest.raises(
            ValueError, match=f"No {instrument.name} band covers a total"
        ):
            band_for(instrument, total)


def test_gad7_meaning_suggests_further_assessment_from_10():
    assert (
        "further assessment suggested" not in band_for(INSTRUMENTS["gad7"], 9).meaning
    )
    assert "further assessment suggested" in band_for(INSTRUMENTS["gad7"], 10).meaning


def test_audit_c_positive_meaning_asks_for_the_remaining_questions():
    meaning = band_for(INSTRUMENTS["auditc"], 5).meaning
    assert "complete the remaining seven AUDIT questions" in meaning


# --- special rules
# --------------------------------------------------------------------------


def test_phq9_item9_flag_with_a_total_of_1():
    result = score("phq9", all_answered("phq9", item9=1))
    assert result.total == 1
    assert result.band == "minimal"
    assert result.flags == (FLAG_SELF_HARM,)


def test_phq9_item9_flag_when_incomplete():
    result = score("phq9", {"item9": 2})
    assert not result.complete
    assert result.band is None
    assert result.flags == (FLAG_SELF_HARM,)


def test_phq9_no_self_harm_flag_when_item9_is_0_even_with_a_severe_total():
    result = score("phq9", all_answered("phq9", 3, item9=0))
    assert result.band == "severe"
    assert result.flags == ()


def test_gad7_flag_from_a_total_of_10():
    assert score("gad7", answers_totalling(INSTRUMENTS["gad7"], 9)).flags == ()
    ten = score("gad7", answers_totalling(INSTRUMENTS["gad7"], 10))
    assert ten.flags == (FLAG_ANXIETY_FURTHER_ASSESSMENT,)


def test_gad7_draft_already_at_10_is_flagged():
    result = score("gad7", {"item1": 3, "item2": 3, "item3": 3, "item4": 1})
    assert not result.complete
    assert result.flags == (FLAG_ANXIETY_FURTHER_ASSESSMENT,)


def test_audit_c_4_is_negative_and_5_needs_the_full_audit():
    four = score("auditc", {"item1": 2, "item2": 1, "item3": 1})
    five = score("auditc", {"item1": 2, "item2": 1, "item3": 2})
    assert (four.total, four.band, four.flags) == (4, "negative", ())
    assert not needs_full_audit(four)
    assert (five.total, five.band, five.flags) == (5, "positive", (FLAG_FULL_AUDIT,))
    assert needs_full_audit(five)


def test_full_audit_raises_no_flags():
    result = score("audit", all_answered("audit", 4))
    assert (result.total, result.band, result.flags) == (40, "possible dependence", ())


@pytest.mark.parametrize("key", ["item9", "item10"])
@pytest.mark.parametrize("bad_score", [1, 3])
def test_audit_questions_9_and_10_refuse_odd_scores(key, bad_score):
    with pytest.raises(
        ValueError, match=f"AUDIT item {key[4:]} cannot score {bad_score}"
    ):
        score("audit", {key: bad_score})


def test_bjmhs_two_current_symptoms_refer():
    result = score("bjmhs", all_answered("bjmhs", item1=1, item4=1))
    assert result.band == BJMHS_REFER
    assert result.flags == (FLAG_BJMHS_SYMPTOMS,)


def test_bjmhs_one_current_symptom_alone_does_not_refer():
    result = score("bjmhs", all_answered("bjmhs", item6=1))
    assert result.band == BJMHS_NO_REFERRAL
    assert result.flags == ()


def test_bjmhs_current_medication_refers():
    result = score("bjmhs", all_answered("bjmhs", item7=1))
    assert result.band == BJMHS_REFER
    assert result.flags == (FLAG_BJMHS_MEDICATION,)


def test_bjmhs_past_hospital_admission_refers():
    result = score("bjmhs", all_answered("bjmhs", item8=1))
    assert result.band == BJMHS_REFER
    assert result.flags == (FLAG_BJMHS_HOSPITAL,)


def test_bjmhs_screener_judgement_refers():
    result = score("bjmhs", all_answered("bjmhs"), screener_refers=True)
    assert result.band == BJMHS_REFER
    assert result.flags == (FLAG_BJMHS_SCREENER,)


def test_bjmhs_all_no_indicates_no_referral():
    result = score("bjmhs", all_answered("bjmhs"))
    assert (result.total, result.band, result.flags) == (0, BJMHS_NO_REFERRAL, ())
    assert "refer on judgement" in result.meaning


def test_bjmhs_names_every_rule_that_fired():
    result = score("bjmhs", all_answered("bjmhs", 1), screener_refers=True)
    assert result.flags == (
        FLAG_BJMHS_SYMPTOMS,
        FLAG_BJMHS_MEDICATION,
        FLAG_BJMHS_HOSPITAL,
        FLAG_BJMHS_SCREENER,
    )


def test_bjmhs_has_no_score_bands():
    with pytest.raises(ValueError, match="No Brief Jail Mental Health Screen band"):
        band_for(INSTRUMENTS["bjmhs"], 2)


def test_screener_referral_is_refused_on_other_instruments():
    with pytest.raises(ValueError, match="only be recorded on the BJMHS"):
        score("phq9", all_answered("phq9"), screener_refers=True)


# --- refused input
# --------------------------------------------------------------------------


def test_unknown_instrument_is_refused():
    with pytest.raises(ValueError, match="Unknown instrument 'phq10'"):
        score("phq10", {})


def test_unknown_item_is_refused():
    with pytest.raises(
        ValueError, match="PHQ-9 has no item 'item10': its items are item1"
    ):
        score("phq9", {"item10": 0})


@pytest.mark.parametrize("bad_score", [4, -1, 1.0, True, "1"])
def test_score_outside_the_item_options_is_refused(bad_score):
    with pytest.raises(
        ValueError, match="PHQ-9 item 1 cannot score .*allowed scores are 0, 1"
    ):
        score("phq9", {"item1": bad_score})


# --- drafts
# ---------------------------------------------------------------------------------


def test_partial_answers_give_a_draft_total_without_a_band():
    result = score("phq9", {"item3": 1, "item2": None, "item1": 2})
    assert result.answers == {"item1": 2, "item3": 1}
    assert list(result.answers) == ["item1", "item3"]
    assert (result.total, result.answered, result.expected) == (3, 2, 9)
    assert not result.complete
    assert result.band is None
    assert result.meaning is None


def test_no_answers_is_an_empty_draft():
    result = score("audit", {})
    assert (result.total, result.answered, result.expected, result.complete) == (
        0,
        0,
        10,
        False,
    )
    assert result.instrument == "audit"
    assert result.version == INSTRUMENTS["audit"].version


# --- properties
# -----------------------------------------------------------------------------


def full_answers(instrument: Instrument) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries(
        {item.key: st.sampled_from(item.scores) for item in instrument.items}
    )


def some_answers(instrument: Instrument) -> st.SearchStrategy[dict[str, int | None]]:
    return st.fixed_dictionaries(
        {},
        optional={
            item.key: st.none() | st.sampled_from(item.scores)
            for item in instrument.items
        },
    )


@given(
    st.sampled_from(BANDED).flatmap(
        lambda code: st.tuples(st.just(code), full_answers(INSTRUMENTS[code]))
    )
)
def test_any_full_answers_total_within_range_and_exactly_one_band(code_and_answers):
    code, answers = code_and_answers
    instrument = INSTRUMENTS[code]
    result = score(code, answers)
    assert instrument.min_total <= result.total <= instrument.max_total
    assert result.total == sum(answers.values())
    covering = [band for band in instrument.bands if band.covers(result.total)]
    assert len(covering) == 1
    assert result.band == covering[0].label
    assert result.complete


@given(full_answers(INSTRUMENTS["bjmhs"]), st.booleans())
def test_bjmhs_refers_exactly_when_a_rule_is_met(answers, screener_refers):
    result = score("bjmhs", answers, screener_refers=screener_refers)
    symptoms = sum(answers[f"item{number}"] for number in range(1, 7))
    should_refer = (
        symptoms >= 2
        or answers["item7"] == 1
        or answers["item8"] == 1
        or screener_refers
    )
    assert 0 <= result.total <= 8
    assert result.band == (BJMHS_REFER if should_refer else BJMHS_NO_REFERRAL)
    assert bool(result.flags) == should_refer


@given(
    st.sampled_from(list(INSTRUMENTS)).flatmap(
        lambda code: st.tuples(st.just(code), some_answers(INSTRUMENTS[code]))
    )
)
def test_any_partial_answers_keep_only_what_was_answered(code_and_answers):
    code, answers = code_and_answers
    answered = {key: value for key, value in answers.items() if value is not None}
    result = score(code, answers)
    assert result.answers == answered
    assert result.total == sum(answered.values())
    assert result.answered == len(answered)
    assert result.complete == (len(answered) == len(INSTRUMENTS[code].items))
    assert (result.band is None) == (not result.complete)


@given(some_answers(INSTRUMENTS["phq9"]))
def test_phq9_self_harm_flag_follows_item9_alone(answers):
    result = score("phq9", answers)
    assert (FLAG_SELF_HARM in result.flags) == ((answers.get("item9") or 0) > 0)


def test_audit_c_asks_in_uk_units_and_scores_as_before():
    """The UK wording (units, 6 or more if female / 8 or more if male) with the WHO scores and threshold."""
    third = instruments.AUDIT_C.items[2]
    assert third.text == ("How often have you had 6 or more units if female, or 8 or more if male, on a single "
                          "occasion in the last year?")
    assert "units of alcohol" in instruments.AUDIT_C.items[1].text and "drinks" not in instruments.AUDIT_C.items[1].text
    assert [option.score for option in instruments.AUDIT_C.items[1].options] == [0, 1, 2, 3, 4]
    assert instruments.AUDIT.items[:3] == instruments.AUDIT_C.items  # the full AUDIT carries the same three on
    assert (instruments.AUDIT_C.version, instruments.AUDIT.version) == ("auditc-uk-2017.1", "audit-uk-2017.1")
    score = instruments.score(instruments.AUDIT_C.code, {"item1": 2, "item2": 1, "item3": 2})
    assert (score.total, score.band) == (5, "positive") and instruments.needs_full_audit(score)
