"""The reverse proxy shipped in deploy/ and Streamlit's own Host check (issue #14, item 10).

One Streamlit (`streamlit run app.py` on a fresh SQLite with the staff of tests/conftest.py) and, in
front of it, one Debian nginx configured from deploy/nginx/ldhub.conf by deploy/render_nginx.py, with
a self-signed certificate made here, serve the whole module. Requests are written by hand on raw
sockets, so each Host, Origin and TLS name is exactly what the test says; the sign-in and the
framing checks use Debian's Chromium.

Skipped, with the reason, only where nginx or openssl is not installed (`make test` installs both
when run as root); the Chromium checks also need Debian's chromium.
"""

import base64
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from services import db, schema
from tests.browser import CHROMIUM, CHROMIUM_FLAGS, free_port
from tests.conftest import PASSWORD, ROOT, make_staff
from tests.proxying import NGINX, self_signed_certificate

RENDER = ROOT / "deploy" / "render_nginx.py"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# The headers every answer through the proxy carries, exactly once each.
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None


def exchange(port: int, path: str, headers: dict[str, str], *, tls_name: str | None = None,
             cafile: Path | None = None) -> Answer:
    """One HTTP/1.1 request to 127.0.0.1:port, over TLS when `tls_name` is given (the name sent in
    SNI and checked on the certificate). A 101 answer is returned as soon as its headers arrive."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls_name:
        context = ssl.create_default_context(cafile=str(cafile))
        raw = context.wrap_socket(raw, server_hostname=tls_name)
    with raw as connection:
        lines = [f"GET {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
        if "Connection" not in headers:
            lines.append("Connection: close")
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        parsed = [(name.strip().lower(), value.strip())
                  for name, _, value in (line.partition(":") for line in header_lines)]
        answer = Answer(status, parsed, body)
        length = answer.header("Content-Length")
        if status != 101:  # the rest of the body: Content-Length, or until nginx closes
            while (length is None or len(answer.body) < int(length)) and (chunk := connection.recv(65536)):
                answer.body += chunk
        return answer


def websocket_headers(host: str, origin: str | None, key: str) -> dict[str, str]:
    headers = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
    if origin is not None:
        headers["Origin"] = origin
    return headers


def open_websocket(port: int, host: str, origin: str | None, **tls) -> int:
    """The status of a websocket handshake to /_stcore/stream (101 = opened); checks the accept key."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    answer = exchange(port, "/_stcore/stream", websocket_headers(host, origin, key), **tls)
    if answer.status == 101:
        expected = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()  # noqa: S324
        assert answer.header("Sec-WebSocket-Accept") == expected
    return answer.status


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


# ---------------------------------------------------------------- the app and the proxy, one each


@pytest.fixture(scope="module")
def app_port(tmp_path_factory) -> int:
    folder = tmp_path_factory.mktemp("proxy-app")
    engine = db.create_database_engine(f"sqlite:///{folder}/live.db")
    SQLModel.metadata.create_all(engine)
    with db.writing(engine) as session:
        schema.seed_code_lists(session)
    make_staff(engine)
    engine.dispose()
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/live.db", "DEMO": "0"}
    environment.pop("STREAMLIT_SERVER_ALLOWED_HOSTS", None)  # the repository's config.toml is under test
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server)
        for _try in range(100):  # listening comes a moment before the runtime is ready
            if exchange(port, "/_stcore/health", {"Host": f"127.0.0.1:{port}"}).body == b"ok":
                break
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


@dataclass
class Proxy:
    port: int
    http_port: int
    certificate: Path
    folder: Path

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    def get(self, path: str, headers: dict[str, str] | None = None, *, tls_name: str = "localhost") -> Answer:
        return exchange(self.port, path, {"Host": self.host, **(headers or {})}, tls_name=tls_name,
                        cafile=self.certificate)


def _wait_for_port(port: int, process: subprocess.Popen, log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text(errors="replace") if log else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} {detail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.args[0]} did not listen on {port} within a minute")


@pytest.fixture(scope="module")
def proxy(app_port, tmp_path_factory) -> Proxy:
    folder = tmp_path_factory.mktemp("proxy")
    certificate, key = self_signed_certificate(folder)
    port, http_port = free_port(), free_port()
    subprocess.run(
        [sys.executable, str(RENDER), "--server-name", "localhost", "--port", str(port),
         "--http-port", str(http_port), "--listen-address", "127.0.0.1", "--certificate", str(certificate),
         "--certificate-key", str(key), "--upstream", f"127.0.0.1:{app_port}", "--local-folder", str(folder)],
        check=True, capture_output=True,
    )
    command = [NGINX, "-p", str(folder), "-c", "nginx.conf", "-e", "logs/error.log"]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    server = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, server, folder / "logs" / "error.log")
        yield Proxy(port=port, http_port=http_port, certificate=certificate, folder=folder)
    finally:
        server.terminate()
        server.wait(timeout=20)


# ---------------------------------------------------------------- Streamlit alone (no proxy needed)


def test_streamlit_refuses_a_websocket_for_a_host_name_it_does_not_serve(app_port):
    """DNS rebinding on a default `make run`: a page at evil.example whose name now points at this
    machine opens the websocket with Host and Origin both evil.example. The repository's
    server.allowedHosts refuses it; the names of this machine still work."""
    assert open_websocket(app_port, "evil.example", "http://evil.example") == 403
    assert open_websocket(app_port, f"evil.example:{app_port}", f"http://evil.example:{app_port}") == 403
    assert open_websocket(app_port, "evil.example", None) == 403
    assert open_websocket(app_port, f"127.0.0.1:{app_port}", None) == 101
    assert open_websocket(app_port, f"127.0.0.1:{app_port}", f"http://127.0.0.1:{app_port}") == 101
    assert open_websocket(app_port, f"localhost:{app_port}", f"http://localhost:{app_port}") == 101
    # Streamlit's own origin check (CORS on, no extra origins) still refuses a foreign page.
    assert open_websocket(app_port, f"127.0.0.1:{app_port}", "http://evil.example") == 403


# ---------------------------------------------------------------- through the proxy


def _assert_security_headers(answer: Answer, what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.header(name) == value, f"{what}: {name} is {answer.header(name)!r}"
    policy = answer.header("Content-Security-Policy")
    assert policy, f"{what}: no Content-Security-Policy"
    directives = csp_directives(policy)
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert answer.header("Server") == "nginx", f"{what}: the server's name and version are not for outside"


def test_every_answer_carries_the_security_headers(proxy):
    page = proxy.get("/")
    assert page.status == 200 and b'<div id="root">' in page.body
    _assert_security_headers(page, "/")

    bundle = re.search(rb'src="\./(static/js/index\.[^"]+\.js)"', page.body).group(1).decode()
    stylesheet = re.search(rb'href="\./(static/css/[^"]+\.css)"', page.body).group(1).decode()
    for path in (bundle, stylesheet):
        asset = proxy.get(f"/{path}")
        assert asset.status == 200 and len(asset.body) > 1000, path
        _assert_security_headers(asset, path)

    for path in ("/Caseload", "/_stcore/health", "/_stcore/metrics", "/no-such-page"):
        _assert_security_headers(proxy.get(path), path)


def test_metrics_and_streamlits_other_internals_are_not_reachable_from_outside(proxy, app_port):
    metrics = "application/openmetrics-text"
    direct = exchange(app_port, "/_stcore/metrics", {"Host": f"127.0.0.1:{app_port}"})
    assert direct.status == 200 and direct.header("Content-Type").startswith(metrics)  # to anyone who asks
    for path in ("/_stcore/metrics", "/_stcore/%6detrics", "//_stcore/metrics", "/_stcore/./metrics",
                 "/_stcore/agent/openapi.json", "/_stcore/script-health-check", "/_stcore/upload_file/x/y"):
        answer = proxy.get(path)
        assert answer.status == 404, path
        assert not (answer.header("Content-Type") or "").startswith(metrics), path

    health = proxy.get("/_stcore/health")
    assert (health.status, health.body) == (200, b"ok")

    # host-config is read by the browser before the websocket opens, so the proxy answers it itself:
    # the same settings, but no Streamlit Community Cloud site allowed to drive the app from a frame.
    streamlit_own = json.loads(exchange(app_port, "/_stcore/host-config", {"Host": f"127.0.0.1:{app_port}"}).body)
    assert streamlit_own["allowedOrigins"], "Streamlit's own answer lists other sites"
    answered = proxy.get("/_stcore/host-config")
    assert answered.status == 200 and answered.header("Content-Type") == "application/json"
    assert json.loads(answered.body) == {**streamlit_own, "allowedOrigins": []}


def test_plain_http_only_redirects_and_other_names_are_refused(proxy):
    redirect = exchange(proxy.http_port, "/Caseload?x=1", {"Host": f"localhost:{proxy.http_port}"})
    assert redirect.status == 301
    assert redirect.header("Location") == f"{proxy.origin}/Caseload?x=1"
    assert b"root" not in redirect.body

    # A name pointed at the proxy by someone else gets no TLS handshake at all...
    with pytest.raises(ssl.SSLError):
        exchange(proxy.port, "/", {"Host": "evil.example"}, tls_name="evil.example", cafile=proxy.certificate)
    # ...and a request inside our TLS name that says another Host is misdirected.
    assert proxy.get("/", {"Host": "evil.example"}).status == 421


def test_the_websocket_through_the_proxy_opens_only_for_the_proxys_own_pages(proxy):
    tls = {"tls_name": "localhost", "cafile": proxy.certificate}
    assert open_websocket(proxy.port, proxy.host, proxy.origin, **tls) == 101
    assert open_websocket(proxy.port, proxy.host, "https://evil.example", **tls) == 403
    assert open_websocket(proxy.port, proxy.host, None, **tls) == 403  # Streamlit alone would accept this
    assert open_websocket(proxy.port, proxy.host, f"http://localhost:{proxy.port}", **tls) == 403
    assert open_websocket(proxy.port, proxy.host, f"{proxy.origin}.evil.example", **tls) == 403


def test_the_configuration_refuses_values_that_would_change_its_meaning(tmp_path):
    base = [sys.executable, str(RENDER), "--certificate", "/etc/ssl/ldhub/fullchain.pem",
            "--certificate-key", "/etc/ssl/ldhub/privkey.pem", "--output", str(tmp_path / "ldhub.conf")]
    for bad in (["--server-name", "ldhub.example; include /etc/passwd", "--upstream", "127.0.0.1:8501"],
                ["--server-name", "ldhub.example.nhs.uk", "--upstream", "127.0.0.1"],
                ["--server-name", "ldhub.example.nhs.uk", "--upstream", "127.0.0.1:8501; return 200"]):
        refused = subprocess.run([*base, *bad], capture_output=True, text=True)
        assert refused.returncode != 0 and "is not a valid" in refused.stderr, bad
        assert not (tmp_path / "ldhub.conf").exists()

    subprocess.run([*base, "--server-name", "ldhub.example.nhs.uk", "--upstream", "127.0.0.1:8501",
                    "--upstream", "127.0.0.1:8502"], check=True)
    written = (tmp_path / "ldhub.conf").read_text(encoding="utf-8")
    assert "${" not in written
    assert "server 127.0.0.1:8501 max_fails=2 fail_timeout=10s;\n    server 127.0.0.1:8502 max_fails=2" in written
    assert 'if ($http_origin != "https://ldhub.example.nhs.uk")' in written  # port 443 is not in the Origin
    assert 'proxy_set_header Host              "ldhub.example.nhs.uk";' in written
    assert "'sha256-" in written


# ---------------------------------------------------------------- in Chromium, through the proxy

# Every Content-Security-Policy violation of the page, reported by the browser itself.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
    window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@pytest.fixture(scope="module")
def chromium(proxy):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    # Chromium's Local Network Access checks would stop a page at evil.example from framing
    # localhost before our headers are read; a real attacker frames a public address, where only
    # the headers stand in the way, so the check is switched off here.
    flags = [*CHROMIUM_FLAGS, "--disable-features=LocalNetworkAccessChecks"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        yield browser
        browser.close()


@pytest.fixture
def tab(chromium):
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield page, console
    context.close()


@pytest.mark.browser
def test_sign_in_through_the_proxy_works_with_no_policy_violation(proxy, tab):
    page, console = tab
    page.goto(proxy.origin)
    page.get_by_label("Username").fill("practitioner")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="My work").wait_for()
    # A refresh starts a new Streamlit session that finds the sign-in through the session keeper
    # (ui/session_keeper.py), a Streamlit v2 component whose script is loaded from a blob: URL.
    page.reload()
    page.get_by_role("heading", name="My work").wait_for()
    assert page.evaluate("location.protocol") == "https:"
    assert page.evaluate("window.__cspViolations") == []
    assert [line for line in console if "Content Security Policy" in line or "Refused to" in line] == []
    access_log = (proxy.folder / "logs" / "access.log").read_text(encoding="utf-8")
    assert re.search(r'"GET /_stcore/stream HTTP/1\.1" 101 ', access_log), "the websocket went through the proxy"


@pytest.mark.browser
def test_no_other_site_can_show_the_hub_in_a_frame(proxy, app_port, tab):
    """Without the proxy the app can be framed and signed into inside the frame; through it, not."""
    page, _console = tab

    def framing_page(route):
        target = route.request.url.split("?src=", 1)[1]
        route.fulfill(status=200, content_type="text/html",
                      body=f'<iframe src="{target}" width="1000" height="700"></iframe>')

    page.route("http://evil.example/**", framing_page)

    page.goto(f"http://evil.example/?src=http://127.0.0.1:{app_port}/")
    page.frame_locator("iframe").get_by_label("Username").wait_for()  # the control: Streamlit alone

    refusal = ("frame-ancestors 'none'", "'X-Frame-Options' to 'deny'")
    with page.expect_console_message(lambda message: any(reason in message.text for reason in refusal)):
        page.goto(f"http://evil.example/?src={proxy.origin}/")
    framed = page.frames[1]
    for _wait in range(50):  # the blocked frame shows Chromium's error page once its navigation ends
        if framed.url:
            break
        page.wait_for_timeout(100)
    assert framed.url.startswith("chrome-error://"), f"the hub loaded in a frame: {framed.url!r}"
    assert page.frame_locator("iframe").get_by_label("Username").count() == 0
