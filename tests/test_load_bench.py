"""The load benchmark's own code: one person on one process for a few seconds with each client, the
protocol client's own bookkeeping, and the report's arithmetic.

No test here asserts a time: how fast the app answers under load is what the benchmark reports, not
what a unit test checks (quality.md: machines are noisy).
"""

import asyncio
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from streamlit.elements.arrow import DataframeSelectionSerde
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.Block_pb2 import Block
from streamlit.proto.Button_pb2 import Button
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.Empty_pb2 import Empty
from streamlit.proto.Exception_pb2 import Exception as ExceptionProto
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Heading_pb2 import Heading
from streamlit.proto.Markdown_pb2 import Markdown
from streamlit.proto.PageLink_pb2 import PageLink
from streamlit.proto.Text_pb2 import Text
from streamlit.proto.TextArea_pb2 import TextArea
from streamlit.proto.TextInput_pb2 import TextInput

import manage
from bench import load, load_protocol, load_report
from bench.load_protocol import Tab
from services import db
from tests.browser import CHROMIUM
from tests.conftest import postgres_url
from ui.format import plain

SECONDS = 20  # long enough at a quick think time for the mix to reach its save on a busy machine


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("client", [pytest.param("protocol"), pytest.param("browser", marks=pytest.mark.browser)])
def test_one_person_on_one_process_saves_and_nothing_is_lost(tmp_path, client):
    url = postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL answers on 127.0.0.1:5432 and TEST_DATABASE_URL is unset")
    if client == "browser" and not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    lines: list[str] = []
    built = load.run([1], [1], seconds=SECONDS, idle_tabs=0, client=client, requests=200, think=(0.1, 0.3),
                     base_url=url, results_folder=tmp_path, command="test", report=lines.append)

    written = json.loads((tmp_path / "load.json").read_text(encoding="utf-8"))
    assert set(written) == {"date", "command", "machine", "settings", "levels", "idle_sessions", "knee", "bars",
                            "notes"}
    assert written["idle_sessions"] is None  # not asked for
    (level,) = written["levels"]
    assert (level["processes"], level["staff"], level["signed_in"], level["sessions_by_process"]) == (1, 1, 1, [1])
    assert set(level["by_kind"]) == set(load.KINDS)
    assert level["by_kind"]["sign_in"]["count"] == 1
    assert level["interactions"] == sum(level["by_kind"][kind]["count"] for kind in load.MIX_KINDS) > 0
    assert level["p50"] <= level["p95"] and level["ratio"]["p95"] == 1.0  # its own 1-staff baseline
    assert level["errors"]["count"] == 0, level["errors"]["examples"]
    saves = level["saves"]
    assert saves["confirmed"] >= 1, "the person never reached a save"
    assert saves["stored"] == saves["audited"] == saves["confirmed"] and saves["lost"] == 0
    assert level["memory"]["per_session_mib"] > 0 and len(level["memory"]["rss_after_mib"]) == 1
    assert level["connections"]["samples"] > 0 and level["connections"]["open_max"] >= 1
    assert [verdict["met"] for verdict in written["bars"]] == [None, None, None]  # no 40 or 20 staff, no idle tabs
    assert level["client_cpu_seconds"] >= 0 and written["settings"]["client"] == client
    assert written["notes"][:2] == list(load_report.CLIENT_NOTES[client])  # what this client times
    markdown = (tmp_path / "load.md").read_text(encoding="utf-8")
    assert "| Processes | Staff |" in markdown and f"({client} client)" in markdown
    assert any(" s left · " in line for line in lines)  # progress while it ran
    assert built["levels"][0]["saves"] == saves

    engine = db.create_database_engine(url)
    try:
        with engine.connect() as connection:
            left = connection.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :name"),
                                      {"name": f"bench_load_{os.getpid()}"}).scalar_one()
    finally:
        engine.dispose()
    assert left == 0  # the run's schema is dropped afterwards


def _level(processes: int, staff: int, p95: float, *, errors: int = 0, lost: int = 0) -> dict:
    tally = SimpleNamespace(timings=[("triage_queue", p95)], errors=[{"category": "timeout"}] * errors,
                            saves_attempted=1, saves_confirmed=1)
    return load_report.level_result(
        processes=processes, staff=staff, seconds=60, worked=60, tallies=[tally],
        saves=[(1 + lost, (1, 0), (2, 1))], signed_in=staff, sessions_by_server=[staff], rss_before=[200.0],
        rss_after=[200.0 + 10 * staff], connections=load_report.connection_summary([(2, 1), (4, 0)]),
        server_cpu=[1.0], client_cpu=0.5, machine_busy=0.5, load_average=(1.0, 2.0))


def test_ratios_knee_and_bars_from_the_levels():
    levels = [_level(1, 1, 1.0), _level(1, 20, 1.8), _level(1, 40, 2.5, errors=1),
              _level(2, 1, 1.0), _level(2, 20, 1.4), _level(2, 40, 1.9, lost=2)]
    built = load_report.build(levels, load_report.idle_result(tabs=20, signed_in=20, rss_before=200, rss_after=500,
                                                                      rss_after_closing=480, errors=[]),
                              command="test", machine={"cores": 2}, settings={"client": "protocol"})
    assert [level["ratio"]["p95"] for level in built["levels"]] == pytest.approx([1, 1.8, 2.5, 1, 1.4, 1.9])
    assert built["levels"][1]["memory"]["per_session_mib"] == 10
    assert built["levels"][5]["saves"]["lost"] == 2
    one, two = built["knee"]
    assert (one["last_within"], one["first_doubled"], one["staff_per_core"]) == (20, 40, 10)
    assert (two["last_within"], two["first_doubled"]) == (40, None) and "not reached" in two["words"]
    no_errors, p95_bar, idle_bar = built["bars"]
    assert no_errors["met"] is False and "1 errors" in no_errors["value"] and "2 lost" in no_errors["value"]
    assert p95_bar["met"] is True and p95_bar["value"] == "1.40×"
    assert idle_bar["met"] is True and idle_bar["value"] == "15.0 MiB"
    assert built["idle_sessions"]["kept_after_closing_mib"] == 14  # (480 - 200) / 20
    assert built["levels"][0]["connections"] == {"samples": 2, "open_max": 4, "open_mean": 3, "busy_max": 1,
                                                 "busy_mean": 0.5}
    table = load_report.text_table(built)
    assert "2.50 s" in table and "Knee on 1 process(es), 2 cores: between 20 and 40 staff" in table


def test_percentiles_interpolate_between_ranks():
    assert load_report.percentile([], 0.95) is None
    assert load_report.percentile([3.0], 0.95) == 3.0
    assert load_report.percentile([1, 2, 3, 4, 5], 0.5) == 3
    assert load_report.percentile(list(range(1, 101)), 0.95) == pytest.approx(95.05)


def test_the_command_line_passes_its_choices_on(monkeypatch):
    seen = {}
    monkeypatch.setattr(load, "run", lambda staff, processes, **options: seen.update(staff=staff,
                                                                                      processes=processes, **options))
    manage.main(["bench", "--load", "--staff", "5,1", "--processes", "2", "--seconds", "20", "--idle-tabs", "5",
                 "--client", "browser"])
    assert seen == {"staff": [1, 5], "processes": [2], "seconds": 20, "idle_tabs": 5, "client": "browser",
                    "command": "python manage.py bench --load --staff 5,1 --processes 2 --seconds 20 --idle-tabs 5 "
                               "--client browser"}
    manage.main(["bench", "--load"])
    assert (list(seen["staff"]), list(seen["processes"]), seen["seconds"], seen["idle_tabs"], seen["client"]) == (
        list(load.DEFAULT_STAFF), list(load.DEFAULT_PROCESSES), load.DEFAULT_SECONDS, load.DEFAULT_IDLE_TABS,
        "protocol")


@pytest.mark.parametrize("arguments", [["--staff", "41"], ["--staff", "0"], ["--processes", "3"], ["--seconds", "0"],
                                       ["--seconds", "601"], ["--idle-tabs", "41"], ["--staff", "a"],
                                       ["--client", "chrome"]])
def test_the_bounds_are_refused_by_the_command_line(arguments, capsys):
    with pytest.raises(SystemExit):
        manage.main(["bench", "--load", *arguments])
    assert arguments[0] in capsys.readouterr().err


def test_load_options_need_load():
    with pytest.raises(SystemExit, match="--staff, --client: only with --load"):
        manage.main(["bench", "--staff", "5", "--client", "browser"])


def test_whoever_is_still_going_at_the_limit_is_stopped_and_counted():
    stopped = []
    quick, slow = (SimpleNamespace(seconds=seconds, failed=lambda failure, at: stopped.append((failure.category, at)))
                   for seconds in (0.0, 30.0))

    async def work(person):
        await asyncio.sleep(person.seconds)
        return person.seconds

    assert asyncio.run(load.bounded([quick, slow], work, 0.2, "working")) == [0.0, None]
    assert stopped == [("timeout", 0.2)]


# --- The protocol client's own bookkeeping (bench/load_protocol.py), from messages made here -------------


def _started(page: str = "screening-page") -> ForwardMsg:
    message = ForwardMsg()
    message.new_session.page_script_hash = page
    return message


def _drawn(path: tuple[int, ...], **element) -> ForwardMsg:
    message = ForwardMsg()
    message.metadata.delta_path.extend(path)
    message.delta.new_element.CopyFrom(Element(**element))
    return message


def _block(path: tuple[int, ...]) -> ForwardMsg:
    message = ForwardMsg()
    message.metadata.delta_path.extend(path)
    message.delta.add_block.CopyFrom(Block(form=Block.Form(form_id="sign_in")))
    return message


def _finished(status=ForwardMsg.FINISHED_SUCCESSFULLY) -> ForwardMsg:
    message = ForwardMsg()
    message.script_finished = status
    return message


def _tab_after(*messages: ForwardMsg) -> Tab:
    tab = Tab()
    for message in messages:
        tab.receive(message)
    return tab


def _screening_page() -> list[ForwardMsg]:
    """A whole run of a page like the Screening page: its title, a button whose label the app escapes
    (ui.format.plain), the note field in a section, a saved notice and the sidebar's link."""
    return [
        _started(),
        _drawn((0, 0), heading=Heading(tag="h1", body="Screening")),
        _drawn((0, 1), button=Button(id="$$ID-screen", label=plain(
            "Screen Amara for LD-26-0001 (opens their draft if one is started)"))),
        _drawn((0, 2, 0), text_area=TextArea(id="$$ID-note", label=load.NOTE_LABEL)),
        _drawn((0, 2, 1), alert=Alert(body=load.SAVED_NOTICE, format=Alert.SUCCESS)),
        _drawn((1, 0), page_link=PageLink(label="Triage queue", page_script_hash="triage-page")),
        _finished(),
    ]


def test_widgets_are_found_by_their_label_as_the_browser_shows_it():
    tab = _tab_after(*_screening_page())
    assert tab.find("button", re.compile(r"for LD-26-0001 \(opens their draft")).id == "$$ID-screen"
    assert tab.find("text_area", load.NOTE_LABEL).id == "$$ID-note"
    assert tab.find("page_link", "Triage queue").page_script_hash == "triage-page"
    with pytest.raises(LookupError, match=r"no button 'Save person and context' on the page \(headings: \['Screening"):
        tab.find("button", load.SAVE_BUTTON)
    assert load_protocol.heading("Screening")(tab) and not load_protocol.heading("Triage queue")(tab)
    assert load_protocol.text(load.SAVED_NOTICE, exact=True)(tab)
    assert load_protocol.text("context saved", exact=False)(tab)
    assert not load_protocol.text("context saved", exact=True)(tab)
    assert load_protocol.widget("text_area", load.NOTE_LABEL)(tab) and tab.errors() == []


def test_a_rerun_sends_the_page_every_value_kept_and_a_press_only_once():
    tab = _tab_after(*_screening_page())
    moved = ForwardMsg()
    moved.page_info_changed.query_string = "id=7"  # as st.switch_page(…, query_params={"id": "7"}) tells the tab
    tab.receive(moved)
    tab.set_string("$$ID-note", "Seen in custody")

    def values(message) -> dict:
        states = message.rerun_script.widget_states.widgets
        return {state.id: getattr(state, state.WhichOneof("value")) for state in states}

    pressed = tab.rerun(pressed="$$ID-save")
    assert pressed.WhichOneof("type") == "rerun_script"
    assert (pressed.rerun_script.page_script_hash, pressed.rerun_script.query_string) == ("screening-page", "id=7")
    assert values(pressed) == {"$$ID-note": "Seen in custody", "$$ID-save": True}
    assert values(tab.rerun()) == {"$$ID-note": "Seen in custody"}  # a trigger is not kept


def test_following_a_page_link_sends_its_page_and_address_and_keeps_the_address():
    tab = _tab_after(*_screening_page())
    link = PageLink(label="Open LD-26-0001", page_script_hash="request-page", query_string="id=42")
    state = tab.rerun(link=link).rerun_script
    assert (state.page_script_hash, state.query_string) == ("request-page", "id=42")
    assert tab.query_string == "id=42"


def test_only_a_whole_run_ends_a_click_and_its_elements_are_the_screen():
    tab = _tab_after(*_screening_page())
    stopped = [_started("request-page"), _drawn((0, 0), heading=Heading(tag="h1", body="Request LD-26-0001")),
               _finished(ForwardMsg.FINISHED_EARLY_FOR_RERUN)]  # st.switch_page: this run ends early
    assert [tab.receive(message) for message in stopped] == [False, False, False]
    assert tab.headings() == ["Screening"]  # still the last whole run's screen
    chained = [_started("screening-page"), _drawn((0, 0), heading=Heading(tag="h1", body="Screening")),
               _finished()]
    assert [tab.receive(message) for message in chained] == [False, False, True]
    assert tab.headings() == ["Screening"] and tab.runs_started == 3 and tab.page_script_hash == "screening-page"
    with pytest.raises(LookupError):  # nothing of the run before survives
        tab.find("text_area", load.NOTE_LABEL)


def test_what_a_path_held_gives_way_to_what_is_drawn_there_later():
    tab = _tab_after(
        _started(),
        _drawn((0, 0), markdown=Markdown(body="Checking your sign-in…")), _drawn((0, 0), empty=Empty()),  # st.empty
        _block((0, 1)), _drawn((0, 1, 0), text_input=TextInput(id="$$ID-user", label="Username")),
        _drawn((0, 1), text=Text(body="Signed in")),  # the form's place taken by an element
        _finished())
    assert list(tab.texts()) == ["Signed in"]
    with pytest.raises(LookupError):
        tab.find("text_input", "Username")


def test_values_of_widgets_no_longer_shown_are_forgotten_once_a_run_is_whole():
    tab = _tab_after(*_screening_page())
    tab.set_string("$$ID-note", "Seen in custody")
    tab.set_string("$$ID-table", load_protocol.row_chosen(0))
    tab.receive(_started())
    tab.receive(_drawn((0, 0), text_area=TextArea(id="$$ID-note", label=load.NOTE_LABEL)))
    assert set(tab.widgets) == {"$$ID-note", "$$ID-table"}  # a run under way forgets nothing
    tab.receive(_finished())
    assert set(tab.widgets) == {"$$ID-note"}


def test_error_boxes_and_exceptions_on_the_screen_are_errors():
    tab = _tab_after(
        _started(),
        _drawn((0, 0), alert=Alert(body=plain("Not saved: LD-26-0001 was changed"), format=Alert.ERROR)),
        _drawn((0, 1), alert=Alert(body="Choose a request", format=Alert.INFO)),
        _drawn((0, 2), exception=ExceptionProto(type="RuntimeError", message="This app has encountered an error.")),
        _finished())
    assert tab.errors() == ["Not saved: LD-26-0001 was changed", "RuntimeError: This app has encountered an error."]


def test_a_chosen_row_is_what_st_dataframe_reads_as_its_selection():
    state = DataframeSelectionSerde().deserialize(load_protocol.row_chosen(0))
    assert state.selection.rows == [0] and state.selection.columns == []
