"""Two Streamlit processes behind the proxy, started and restarted by deploy/serve.py (issue #16).

One supervisor (`deploy/serve.py run --replicas 2`) serves the whole module: two `streamlit run app.py`
on ONE SQLite file with the staff of tests/conftest.py, and Debian's nginx in front with a self-signed
certificate made here. Which process answered each request is read from nginx's own access log
(deploy/nginx/local.conf writes the upstream address, the route cookie sent and the user agent on every
line; a websocket's line is written when it closes); each test browser has a user agent of its own.
Browsers are Debian's Chromium. PostgreSQL with two processes is tests/test_scale_out.py's subject.

Skipped, with the reason, where nginx, openssl or chromium is not installed.
"""

import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from services import db, schema
from tests.browser import CHROMIUM, CHROMIUM_FLAGS, free_port
from tests.conftest import PASSWORD, ROOT, make_staff
from tests.proxying import NGINX, self_signed_certificate

SERVE = ROOT / "deploy" / "serve.py"
RENDER = ROOT / "deploy" / "render_nginx.py"
GRACE_SECONDS = 4  # how long a restarted process keeps its own browsers (serve.py --grace)
LOG_LINE = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d{3}) upstream=(?P<upstream>.+) '
                      r'route=(?P<route>\S+) "(?P<agent>[^"]*)"$')
ROUTE_COOKIE = re.compile(r"^ldhub_route=([12]); Path=/; Secure; HttpOnly; SameSite=Lax$")


@dataclass
class Cluster:
    folder: Path
    port: int
    process_ports: list[int]  # process k (its route cookie "k") listens on process_ports[k - 1]
    certificate: Path
    supervisor: subprocess.Popen

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    def get(self, path: str, route: str | None = None, agent: str = "replica-tests") -> tuple[int, list[str], bytes]:
        """One request through the proxy, with the route cookie `route` if given: status, route cookies set, body."""
        context = ssl.create_default_context(cafile=str(self.certificate))
        connection = http.client.HTTPSConnection("localhost", self.port, context=context, timeout=10)
        headers = {"User-Agent": agent, **({"Cookie": f"ldhub_route={route}"} if route else {})}
        try:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            given = [value for name, value in answer.getheaders()
                     if name.lower() == "set-cookie" and value.startswith("ldhub_route=")]
            return answer.status, given, answer.read()
        finally:
            connection.close()

    def log(self) -> list[dict[str, str]]:
        """nginx's access log, one dict per line: request, status, upstream, route (the cookie sent), agent."""
        text = (self.folder / "logs" / "access.log").read_text(encoding="utf-8")
        return [match.groupdict() for line in text.splitlines() if (match := LOG_LINE.search(line))]

    def lines_of(self, agent: str, until: str, *, count: int = 1, after: int = 0) -> list[dict[str, str]]:
        """The log lines of one user agent from line `after` on, once `count` of them are requests containing
        `until` (nginx writes a line when it has answered, a moment after the client has read the answer)."""
        deadline = time.monotonic() + 10
        while True:
            lines = [line for line in self.log()[after:] if line["agent"] == agent]
            if sum(until in line["request"] for line in lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def command(self, *words: str, timeout: float = 60) -> str:
        done = subprocess.run([sys.executable, str(SERVE), "--folder", str(self.folder), *words],
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def status(self) -> dict[int, tuple[str, int]]:
        """Each process's number → (state, pid), as the supervisor reports it."""
        found = re.findall(r"process (\d+) 127\.0\.0\.1:\d+ (\w+) pid (\d+)", self.command("status"))
        return {int(number): (state, int(pid)) for number, state, pid in found}

    def address(self, number: int) -> str:
        return f"127.0.0.1:{self.process_ports[number - 1]}"


def _two_free_ports() -> int:
    """A port whose next one is free too (serve.py puts process k on base + k - 1)."""
    for _try in range(50):
        base = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", base + 1))
            return base
        except OSError:
            continue
    raise RuntimeError("no two neighbouring free ports")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    folder = tmp_path_factory.mktemp("replicas")
    certificate, key = self_signed_certificate(folder)  # or skips: no nginx or openssl here
    engine = db.create_database_engine(f"sqlite:///{folder}/live.db")
    SQLModel.metadata.create_all(engine)
    with db.writing(engine) as session:
        schema.seed_code_lists(session)
    make_staff(engine)
    engine.dispose()
    base, port = _two_free_ports(), free_port()
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/live.db", "DEMO": "0"}
    environment.pop("STREAMLIT_SERVER_ALLOWED_HOSTS", None)  # serve.py names the proxy's server name
    nginx_folder = folder / "nginx"
    with open(folder / "supervisor.log", "wb") as output:
        supervisor = subprocess.Popen(
            [sys.executable, str(SERVE), "--folder", str(nginx_folder), "run", "--replicas", "2",
             "--base-port", str(base), "--port", str(port), "--http-port", str(free_port()),
             "--certificate", str(certificate), "--certificate-key", str(key), "--nginx", NGINX,
             "--grace", str(GRACE_SECONDS), "--check-every", "1"],
            cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while "serving https://" not in (folder / "supervisor.log").read_text():
            assert supervisor.poll() is None, (folder / "supervisor.log").read_text()
            assert time.monotonic() < deadline, "the supervisor did not start within 90 s"
            time.sleep(0.2)
        yield Cluster(nginx_folder, port, [base, base + 1], certificate, supervisor)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)


# ---------------------------------------------------------------- over plain HTTP


def test_each_process_is_healthy_through_the_proxy_and_the_cookie_names_the_one_that_answered(cluster):
    assert {number: state for number, (state, _pid) in cluster.status().items()} == {1: "up", 2: "up"}
    for number in (1, 2):
        with urllib.request.urlopen(f"http://{cluster.address(number)}/_stcore/health", timeout=5) as direct:  # noqa: S310
            assert direct.read() == b"ok"
        logged, agent = len(cluster.log()), f"health-{number}"
        for _again in range(3):
            status, given, body = cluster.get("/_stcore/health", str(number), agent)
            assert (status, body, given) == (200, b"ok", []), "the cookie already names the process: not sent again"
        lines = cluster.lines_of(agent, "/_stcore/health", count=3, after=logged)
        assert [line["upstream"] for line in lines] == [cluster.address(number)] * 3

    # No cookie, or one that names no process: a cookie naming the process that answered, exactly once.
    logged = len(cluster.log())
    for sent in (None, "0", "3", "1x", "ldhub"):
        _status, given, _body = cluster.get("/", sent, f"newcomer-{sent}")
        assert len(given) == 1 and ROUTE_COOKIE.match(given[0]), given
        [line] = cluster.lines_of(f"newcomer-{sent}", "GET / ", after=logged)
        assert line["upstream"] == cluster.address(int(ROUTE_COOKIE.match(given[0]).group(1)))


def test_the_configuration_refuses_a_bad_list_of_processes(tmp_path):
    base = [sys.executable, str(RENDER), "--server-name", "ldhub.example.nhs.uk",
            "--certificate", "/etc/ssl/ldhub/fullchain.pem", "--certificate-key", "/etc/ssl/ldhub/privkey.pem",
            "--output", str(tmp_path / "ldhub.conf")]
    one, two = ["--upstream", "127.0.0.1:8501"], ["--upstream", "127.0.0.1:8502"]
    for bad, reason in (
        ([*one, *one], "more than once"),
        ([*one, *two, "--down", "127.0.0.1:8503"], "which is not an --upstream"),
        ([*one, *two, "--draining", "127.0.0.1:8503"], "which is not an --upstream"),
        ([*one, *two, "--down", "127.0.0.1:8502", "--draining", "127.0.0.1:8502"], "both --down and --draining"),
        ([*one, *two, "--down", "127.0.0.1:8501", "--draining", "127.0.0.1:8502"], "no --upstream is left"),
        ([*one, "--draining", "127.0.0.1:8501"], "no --upstream is left"),
        ([*one, "--upstream", "127.0.0.1:70000"], "is not a valid host:port"),
        ([*one, "--upstream", "127.0.0.1:0"], "is not a valid host:port"),
        ([*one, "--max-fails", "0"], "at least 1"),
    ):
        refused = subprocess.run([*base, *bad], capture_output=True, text=True)
        assert refused.returncode != 0 and reason in refused.stderr, (bad, refused.stderr)
        assert not (tmp_path / "ldhub.conf").exists()

    subprocess.run([*base, *one, *two, "--upstream", "127.0.0.1:8503", "--draining", "127.0.0.1:8502",
                    "--down", "127.0.0.1:8503"], check=True)
    written = (tmp_path / "ldhub.conf").read_text(encoding="utf-8")
    limits = "max_fails=2 fail_timeout=10s"
    # New browsers go only to the process that is neither draining nor down...
    assert (f"upstream ldhub_app {{\n    least_conn;\n    zone ldhub_app 64k;\n    server 127.0.0.1:8501 {limits};\n"
            f"    server 127.0.0.1:8502 {limits} down;\n    server 127.0.0.1:8503 {limits} down;\n}}") in written
    # ...a draining process keeps its own browsers, and stands in for no other...
    assert (f"upstream ldhub_2 {{\n    server 127.0.0.1:8502 {limits};\n    server 127.0.0.1:8501 {limits} backup;\n"
            f"    server 127.0.0.1:8503 {limits} backup down;\n}}") in written
    # ...and a process that is down sends its browsers to the others.
    assert (f"upstream ldhub_3 {{\n    server 127.0.0.1:8503 {limits} down;\n"
            f"    server 127.0.0.1:8501 {limits} backup;\n"
            f"    server 127.0.0.1:8502 {limits} backup down;\n}}") in written
    assert "    3 ldhub_3;\n" in written and '    "~(?:^|, )127\\.0\\.0\\.1:8503$" 3;\n' in written


def test_a_process_that_dies_is_skipped_at_once_and_started_again(cluster):
    _state, pid = cluster.status()[2]
    os.kill(pid, signal.SIGKILL)
    # Its browsers' requests still get an answer: nginx passes the refused connection to the other
    # process (the log names both), and the cookie now names the process that answered.
    logged = len(cluster.log())
    status, given, body = cluster.get("/_stcore/health", "2", "after-a-crash")
    assert (status, body) == (200, b"ok")
    assert len(given) == 1 and ROUTE_COOKIE.match(given[0]).group(1) == "1"
    [line] = cluster.lines_of("after-a-crash", "/_stcore/health", after=logged)
    assert line["upstream"] == f"{cluster.address(2)}, {cluster.address(1)}"
    # The supervisor's own check finds it gone and starts it again.
    deadline = time.monotonic() + 30
    while (now := cluster.status()[2]) == ("up", pid) or now[0] != "up":
        assert time.monotonic() < deadline, now
        time.sleep(0.5)
    assert "process 2: exited with -9; restarting it" in (cluster.folder.parent / "supervisor.log").read_text()


# ---------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def chromium(cluster):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _agent(name: str) -> str:
    return f"Mozilla/5.0 (X11; Linux x86_64) Chromium ldhub-replica-test/{name}"


def _browser(chromium, cluster: Cluster, name: str, route: str | None = None):
    """A fresh browser (its own cookies and sessionStorage) known in the log by `name`, with the
    route cookie `route` if given."""
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 1000},
                                   user_agent=_agent(name))
    context.set_default_timeout(20_000)
    if route:
        context.add_cookies([{"name": "ldhub_route", "value": route, "url": cluster.origin,
                              "secure": True, "httpOnly": True, "sameSite": "Lax"}])
    return context


def _sign_in(page, cluster: Cluster, username: str) -> None:
    page.goto(cluster.origin)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="My work").wait_for()


def _sidebar_link(page, name: str):
    return page.get_by_test_id("stSidebarUserContent").get_by_role("link", name=name, exact=True)


def _open(page, name: str) -> None:
    """A click on a sidebar link, and the page it opens (drawn by the process at the websocket's end)."""
    _sidebar_link(page, name).click()
    page.get_by_role("heading", name=name, level=1, exact=True).wait_for()


def _route_cookie(page) -> str:
    [value] = [cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "ldhub_route"]
    return value


ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


@pytest.mark.browser
def test_one_browser_gets_one_route_cookie_and_all_its_requests_reach_one_process(cluster, chromium):
    context = _browser(chromium, cluster, "one-browser")
    page = context.new_page()
    responses = []
    page.on("response", lambda response: responses.append(response))
    _sign_in(page, cluster, "practitioner")
    _open(page, "Triage queue")
    [cookie] = [cookie for cookie in context.cookies() if cookie["name"] == "ldhub_route"]
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Lax")
    given = [response.url for response in responses
             if any(value.startswith("ldhub_route=") for value in response.header_values("set-cookie"))]
    assert given == [f"{cluster.origin}/"], "the cookie comes with the first answer and never again"
    context.close()  # ends the websocket, whose log line is written now

    lines = cluster.lines_of(_agent("one-browser"), "/_stcore/stream")
    requests = [line["request"] for line in lines]
    assert any(request.startswith("GET / ") for request in requests)
    assert any("/static/js/" in request for request in requests)
    assert any(line["request"].startswith("GET /_stcore/stream ") and line["status"] == "101" for line in lines)
    # nginx answers /_stcore/host-config itself (no upstream); everything else went to one process.
    assert {line["request"].split()[1] for line in lines if line["upstream"] == "-"} <= {"/_stcore/host-config"}
    assert {line["upstream"] for line in lines} - {"-"} == {cluster.address(int(cookie["value"]))}, lines


@pytest.mark.browser
def test_browsers_with_different_route_cookies_reach_different_processes(cluster, chromium):
    for number in (1, 2):
        context = _browser(chromium, cluster, f"route-{number}", str(number))
        context.new_page().goto(cluster.origin)
        context.pages[0].get_by_label("Username").wait_for()  # drawn by a script run: the websocket is open
        context.close()
    for number in (1, 2):
        lines = cluster.lines_of(_agent(f"route-{number}"), "/_stcore/stream")
        assert any(line["request"].startswith("GET /_stcore/stream ") for line in lines)
        assert {line["upstream"] for line in lines} - {"-"} == {cluster.address(number)}


@pytest.mark.browser
def test_restarting_one_process_leaves_the_other_at_work_and_its_own_people_signed_in_again(cluster, chromium):
    on_restarted = _browser(chromium, cluster, "on-restarted", "1").new_page()
    on_other = _browser(chromium, cluster, "on-other", "2").new_page()
    other_sockets, other_closed = [], []
    on_other.on("websocket", lambda websocket: (other_sockets.append(websocket),
                                                websocket.on("close", lambda closed: other_closed.append(closed))))
    logged = len(cluster.log())
    _sign_in(on_restarted, cluster, "practitioner")
    _sign_in(on_other, cluster, "lead")
    _state, old_pid = cluster.status()[1]

    restart = subprocess.Popen([sys.executable, str(SERVE), "--folder", str(cluster.folder), "restart", "1"],
                               stdout=subprocess.PIPE, text=True)
    assert "takes no new browsers" in restart.stdout.readline()
    # Within the grace period both people carry on, the one on the draining process too.
    _open(on_other, "Triage queue")
    _open(on_restarted, "My account")
    said, _ = restart.communicate(timeout=60)
    assert restart.returncode == 0 and said.rstrip().endswith("done"), said
    state, new_pid = cluster.status()[1]
    assert state == "up" and new_pid != old_pid

    # The person on the other process never noticed: the same websocket all along, clicks answered.
    _open(on_other, "People")
    assert len(other_sockets) == 1 and other_closed == []
    assert on_other.locator(ERRORS).count() == 0

    # The person on the restarted process: the tab reconnected to the other process and took up its
    # sign-in from the tab's own storage, on the page it was on; the browser's cookie moved with it,
    # so its later requests reach the session's process, which is asked for nothing it lacks.
    _sidebar_link(on_restarted, "Triage queue").wait_for(timeout=30_000)
    on_restarted.get_by_role("heading", name="My account", level=1, exact=True).wait_for()
    assert on_restarted.get_by_label("Username").count() == 0
    assert on_restarted.locator(ERRORS).count() == 0
    assert _route_cookie(on_restarted) == "2"
    _open(on_restarted, "Triage queue")
    on_restarted.context.close()
    on_other.context.close()
    # Its first websocket ended on process 1 when that stopped; every request after it - the
    # reconnection's health check, which moved the cookie, the new websocket, files, images - reached
    # process 2, and none was answered 404.
    lines = cluster.lines_of(_agent("on-restarted"), "/_stcore/stream", count=2, after=logged)
    first_socket = next(number for number, line in enumerate(lines) if "/_stcore/stream" in line["request"])
    assert lines[first_socket]["upstream"] == cluster.address(1)
    after = lines[first_socket + 1:]
    assert any("/_stcore/stream" in line["request"] for line in after)
    assert {line["upstream"] for line in after} - {"-"} == {cluster.address(2)}, after
    assert [line for line in after if line["status"] == "404"] == []
