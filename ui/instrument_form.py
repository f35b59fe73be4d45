"""The instruments section of the screening form: the published questions, scored live as answers are chosen.

The widgets are not in an `st.form`, so every answer reruns the page and the total, band and meaning
shown beside the questions are those of `services.instruments.score` on the answers so far. What is
chosen is kept in `st.session_state` under the screening's key prefix until the practitioner saves.
Questions, options and bands come from `services.instruments`; nothing is scored here.
"""

from collections.abc import Mapping

import streamlit as st

from models import InstrumentResult
from services import instruments, screening
from services.instruments import AUDIT, AUDIT_C, BJMHS, GAD7, PHQ9, PROPRIETARY_RESULTS, Instrument
from ui.format import sentence
from ui.forms import FieldMessages

SCORED = (PHQ9, GAD7, AUDIT_C, BJMHS)
PROPRIETARY_LABELS = {
    "hasi": "HASI result (learning disability screen — record the result only)",
    "ldsq": "LDSQ result (learning disability screen — record the result only)",
    "chat": "CHAT result (youth health assessment — record the overall result only)",
}


def _key(prefix: str, code: str, name: str) -> str:
    return f"{prefix}{code}.{name}"


def seed(prefix: str, stored: Mapping[str, InstrumentResult]) -> None:
    """Start each widget from the saved draft, once; afterwards the widget keeps what was chosen."""
    for instrument in (*SCORED, AUDIT):
        row = stored.get(instrument.code)
        for item in instrument.items:
            st.session_state.setdefault(_key(prefix, instrument.code, item.key), (row.answers or {}).get(item.key)
                                        if row else None)
        st.session_state.setdefault(_key(prefix, instrument.code, "not_completed"),
                                    bool(row and row.not_completed_reason))
        st.session_state.setdefault(_key(prefix, instrument.code, "not_completed_reason"),
                                    (row.not_completed_reason or "") if row else "")
    bjmhs = stored.get(BJMHS.code)
    st.session_state.setdefault(_key(prefix, BJMHS.code, "screener_refers"),
                                bool(bjmhs and instruments.FLAG_BJMHS_SCREENER in (bjmhs.flags or [])))
    st.session_state.setdefault(_key(prefix, AUDIT.code, "ask"), AUDIT.code in stored)
    for code in PROPRIETARY_RESULTS:
        row = stored.get(code)
        st.session_state.setdefault(_key(prefix, code, "result"), row.result if row else None)


def current_answers(prefix: str) -> screening.Instruments:
    """What is chosen on screen now, as the service takes it (AUDIT questions 4 to 10 only)."""
    scored = {}
    for instrument in (*SCORED, AUDIT):
        items = instrument.items[3:] if instrument is AUDIT else instrument.items
        scored[instrument.code] = screening.InstrumentAnswers(
            answers={item.key: st.session_state.get(_key(prefix, instrument.code, item.key)) for item in items},
            not_completed=bool(st.session_state.get(_key(prefix, instrument.code, "not_completed"))),
            not_completed_reason=st.session_state.get(_key(prefix, instrument.code, "not_completed_reason")),
            screener_refers=instrument is BJMHS and bool(st.session_state.get(_key(prefix, BJMHS.code,
                                                                                   "screener_refers"))),
        )
    if not full_audit_offered(prefix, scored):
        scored[AUDIT.code] = screening.InstrumentAnswers()
    proprietary = {code: st.session_state.get(_key(prefix, code, "result")) for code in PROPRIETARY_RESULTS}
    return screening.Instruments(scored=scored, proprietary=proprietary)


def full_audit_offered(prefix: str, scored: Mapping[str, screening.InstrumentAnswers]) -> bool:
    """The remaining seven AUDIT questions are offered when AUDIT-C is 5 or more, or when asked for."""
    if st.session_state.get(_key(prefix, AUDIT.code, "ask")):
        return True
    auditc = instruments.score(AUDIT_C.code, scored[AUDIT_C.code].answers)
    return instruments.needs_full_audit(auditc)


def _status(score: instruments.Score | None) -> str:
    if score is None or score.answered == 0:
        return "not started"
    if not score.complete:
        return f"{score.answered} of {score.expected} answered"
    return f"total {score.total} — {score.band}"


def _show_score(score: instruments.Score | None, instrument: Instrument,
                settled: Mapping[str, str] | None = None) -> None:
    """The live score and its flags; a flag already acted on (`settled`: flag → what was done) says so instead."""
    if score is None or score.answered == 0:
        st.caption("Scored as you answer.")
        return
    if score.complete:
        maximum = f" of {instrument.max_total}" if instrument.bands else ""
        st.info(f"**{instrument.name}: total {score.total}{maximum} — {score.band}.** {score.meaning}")
    else:
        st.info(f"{instrument.name}: {score.answered} of {score.expected} answered, total so far {score.total}. "
                "A draft may be saved part-answered; to complete the screening, answer every question or mark "
                "it not completed with a reason.")
    for flag in score.flags:
        if flag in (settled or {}):
            st.caption(f"{sentence(flag)}: {settled[flag]}")
        else:
            st.warning(sentence(flag), icon=":material/flag:")


def _questions(prefix: str, instrument: Instrument, items, messages: FieldMessages) -> None:
    for item in items:
        options = {option.score: option.label for option in item.options}
        st.radio(f"{item.number}. {item.text}", list(options), format_func=options.get, index=None,
                 horizontal=True, key=_key(prefix, instrument.code, item.key))
    if instrument is BJMHS:
        st.checkbox("Refer for further assessment on my own judgement", key=_key(prefix, BJMHS.code,
                                                                                  "screener_refers"))
    st.checkbox(f"{instrument.name} not completed", key=_key(prefix, instrument.code, "not_completed"))
    st.text_input(f"Why {instrument.name} was not completed", help="Up to 2,000 characters.",
                  key=_key(prefix, instrument.code, "not_completed_reason"))
    messages.under(f"{instrument.code}_not_completed_reason")


def draw(prefix: str, messages: FieldMessages) -> screening.Instruments:
    """Draw every instrument with its live score; return the answers for the service."""
    data = current_answers(prefix)
    scores = screening.preview_scores(data)
    for instrument in SCORED:
        score = scores.get(instrument.code)
        with st.expander(f"{instrument.name} — {_status(score)}", expanded=score is not None):
            st.caption(instrument.preamble)
            _questions(prefix, instrument, instrument.items, messages)
            messages.under(instrument.code)
            _show_score(score, instrument, _settled(instrument, data, scores))
            if instrument is AUDIT_C:
                _full_audit(prefix, data, scores, messages)
    st.markdown("**Proprietary tools** — record the result only; their questions are not reproduced here.")
    for code, results in PROPRIETARY_RESULTS.items():
        st.selectbox(PROPRIETARY_LABELS[code], results, index=None, key=_key(prefix, code, "result"),
                     placeholder="Not used")
        messages.under(code)
    return data


def _settled(instrument: Instrument, data: screening.Instruments, scores) -> dict[str, str]:
    """AUDIT-C's "complete full AUDIT" flag is settled once the full AUDIT is answered or marked not completed."""
    if instrument is not AUDIT_C:
        return {}
    audit = scores.get(AUDIT.code)
    if audit is not None and audit.complete:
        return {instruments.FLAG_FULL_AUDIT: f"done below (AUDIT total {audit.total} — {audit.band})"}
    if data.scored[AUDIT.code].not_completed:
        return {instruments.FLAG_FULL_AUDIT: "marked not completed below, with its reason"}
    return {}


def _full_audit(prefix: str, data: screening.Instruments, scores, messages: FieldMessages) -> None:
    st.checkbox("Ask the full AUDIT (questions 4 to 10)", key=_key(prefix, AUDIT.code, "ask"))
    if not full_audit_offered(prefix, data.scored):
        return
    st.markdown(f"**AUDIT — the remaining seven questions** ({_status(scores.get(AUDIT.code))}). "
                "Questions 1 to 3 are the AUDIT-C answers above.")
    _questions(prefix, AUDIT, AUDIT.items[3:], messages)
    messages.under(AUDIT.code)
    _show_score(scores.get(AUDIT.code), AUDIT)
