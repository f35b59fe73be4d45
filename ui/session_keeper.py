"""The browser tab's half of a sign-in that survives a refresh (services/sign_in_sessions.py).

A small script (a Streamlit v2 component, drawn with no height in the sidebar) keeps the tab's
session token in `sessionStorage` — this tab only, gone when the tab closes, never sent in a
cookie — and, when asked, hands it back: a refreshed tab starts a new Streamlit session that
knows nobody, so the guard asks the tab once whether it was signed in. The tab answers by
rerunning the page; `answer()` reads what it said.

The guard draws the keeper once per run, with one instruction: keep this token, forget it, or
say what you kept. The token is the only thing stored in the browser; what it is worth is
decided on the server at every use (docs/security.md, "Staying signed in through a refresh").
"""

import streamlit as st

STORAGE_KEY = "ldhub.session"
KEEPER_KEY = "session_keeper"
_ANSWER = "session_keeper_answer"

_SCRIPT = f"""
export default function (component) {{
    const {{ data, setTriggerValue }} = component;
    const storage = window.sessionStorage;
    if (data && data.keep) storage.setItem("{STORAGE_KEY}", data.keep);
    if (data && data.forget) storage.removeItem("{STORAGE_KEY}");
    if (data && data.ask) setTriggerValue("token", storage.getItem("{STORAGE_KEY}") || "");
}}
"""

_keeper = st.components.v2.component("ldhub_session_keeper", js=_SCRIPT)


def keep(token: str) -> dict:
    """The instruction to store the tab's token (after a sign-in, or a resume that renewed it)."""
    return {"keep": token}


def forget() -> dict:
    """The instruction to remove the tab's token (after signing out or a time-out)."""
    return {"forget": True}


def ask() -> dict:
    """The instruction to say which token the tab kept ("" for none), by rerunning the page."""
    return {"ask": True}


def _take_answer() -> None:
    st.session_state[_ANSWER] = st.session_state[KEEPER_KEY].get("token")


def answer() -> str | None:
    """What the tab said when asked: its token, "" when it kept none, None when it has not said."""
    return st.session_state.pop(_ANSWER, None)


def draw(instruction: dict) -> None:
    """Draw the keeper (once per run) with its instruction for the tab."""
    with st.sidebar:
        _keeper(key=KEEPER_KEY, data=instruction, height=0, on_token_change=_take_answer)
