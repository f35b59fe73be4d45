#!/usr/bin/env python3
"""Run N identical Streamlit processes of the hub behind nginx, and restart one at a time (issue #16).

    python deploy/serve.py run --replicas 2 --certificate … --certificate-key …   # `make serve`
    python deploy/serve.py restart 2     # drain process 2, restart it, put it back; the others serve on
    python deploy/serve.py status        # each process: its port, state and process id

`run` is the supervisor, in the foreground until Ctrl+C or SIGTERM. It starts `streamlit run app.py`
N times on 127.0.0.1, ports base … base+N-1, and puts a process in nginx's upstream list only once its
/_stcore/health answers "ok". Then it renders deploy/nginx/ldhub.conf for all N (render_nginx.py,
which refuses a list that names a process twice or leaves none to serve) into a folder, with
deploy/nginx/local.conf around it, and runs nginx from there. Every few seconds it checks each
process's health itself: open-source nginx only notices a dead process when a request to it fails
(`max_fails`), so a process that has exited, or failed three checks in a row, is taken out of the
list and started again.

`restart K` talks to the running supervisor through a Unix socket in that folder (made with mode
0600: only its owner may connect). The supervisor drains process K in two reloads of nginx: first K
takes no new browsers but keeps its own, so people on it carry on through the grace period and a
script that is running finishes; then K is marked `down`, so its browsers' requests and reconnecting
websockets go to another process, and K is stopped (SIGTERM, which ends its websockets: nginx's
reload had left them open on its old workers). K is started again, checked for health and put
back. One restart at a time; with one process there is nobody to take over, so restart is refused.

Every process gets the same `server.cookieSecret` (STREAMLIT_SERVER_COOKIE_SECRET, or one made for
this run): Streamlit signs the single sign-on cookie with it, so a browser moved to another process
stays signed in to its organisation account. Sign-ins to local accounts live in the database
(services/sign_in_sessions.py) and the tab keeps its token (ui/session_keeper.py), so a moved tab
resumes its sign-in on whichever process it reaches.

Standard library only, with deploy/render_nginx.py beside it.
"""

import argparse
import logging
import os
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import render_nginx

ROOT = Path(__file__).resolve().parent.parent
SOCKET_NAME = "serve.sock"
HEALTHY_WITHIN = 60  # seconds a starting process has to answer its health check
FAILED_CHECKS = 3  # health checks in a row a running process may fail before it is restarted
STOP_WITHIN = 20  # seconds a process has to end after SIGTERM before it is killed

log = logging.getLogger("ldhub.serve")


@dataclass
class Replica:
    number: int  # 1 … N, as `restart` and `status` name it
    port: int
    process: subprocess.Popen | None = None
    # starting → up → draining (its own browsers only) → stopping → starting …; failed: did not start
    state: str = "starting"
    failed_checks: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class CommandRefused(Exception):
    """A control command that cannot be carried out (its message is the answer)."""


@dataclass
class Supervisor:
    arguments: argparse.Namespace
    replicas: list[Replica] = field(default_factory=list)
    nginx: subprocess.Popen | None = None
    # One change of the upstream list at a time: a restart asked for and one the health check
    # decided on must not interleave their renders.
    changing: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    stop_asked: bool = False

    def __post_init__(self) -> None:
        self.folder = Path(self.arguments.folder).resolve()
        self.nginx_command = [self.arguments.nginx, "-p", str(self.folder), "-c", "nginx.conf", "-e", "logs/error.log"]
        self.environment = {
            **os.environ,
            "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
            "STREAMLIT_SERVER_HEADLESS": "true",
            "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
            # Signs st.login's cookie: the same in every process, so a moved browser stays signed in.
            "STREAMLIT_SERVER_COOKIE_SECRET": os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or secrets.token_hex(32),
            # The proxy tells every process Host: <server name>; its websocket refuses other names.
            "STREAMLIT_SERVER_ALLOWED_HOSTS": (os.environ.get("STREAMLIT_SERVER_ALLOWED_HOSTS")
                                               or self.arguments.server_name),
        }
        self.replicas = [Replica(number, self.arguments.base_port + number - 1)
                         for number in range(1, self.arguments.replicas + 1)]

    # --- the Streamlit processes ----------------------------------------------------------------

    def start(self, replica: Replica) -> None:
        replica.state, replica.failed_checks = "starting", 0
        with open(self.folder / "logs" / f"replica-{replica.number}.log", "ab") as output:
            replica.process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(replica.port)],
                cwd=ROOT, env=self.environment, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C reaches the supervisor only, which stops them in order
            )
        log.info("process %s: started on %s (pid %s)", replica.number, replica.address, replica.process.pid)

    def healthy(self, replica: Replica) -> bool:
        try:
            with urllib.request.urlopen(f"http://{replica.address}/_stcore/health", timeout=2) as answer:  # noqa: S310
                return answer.status == 200 and answer.read() == b"ok"
        except OSError:
            return False

    def wait_until_healthy(self, replica: Replica) -> bool:
        deadline = time.monotonic() + HEALTHY_WITHIN
        while time.monotonic() < deadline and not (self.stopping.is_set() or self.stop_asked):
            if replica.process.poll() is not None:
                log.error("process %s: exited with %s while starting (logs/replica-%s.log)",
                          replica.number, replica.process.returncode, replica.number)
                return False
            if self.healthy(replica):
                return True
            time.sleep(0.3)
        return False

    def stop(self, replica: Replica) -> None:
        if replica.process is None or replica.process.poll() is not None:
            return
        replica.process.terminate()
        try:
            replica.process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()
        log.info("process %s: stopped", replica.number)

    # --- nginx ----------------------------------------------------------------------------------

    def render(self) -> None:
        """Write the configuration: every process listed; a draining one keeps its own browsers but takes
        no new ones; one that is not up (stopping, starting, failed) is marked `down`."""
        argv = ["--server-name", self.arguments.server_name, "--port", str(self.arguments.port),
                "--http-port", str(self.arguments.http_port), "--listen-address", self.arguments.listen_address,
                "--certificate", str(Path(self.arguments.certificate).resolve()),
                "--certificate-key", str(Path(self.arguments.certificate_key).resolve()),
                "--local-folder", str(self.folder)]
        for replica in self.replicas:
            argv += ["--upstream", replica.address]
            if replica.state == "draining":
                argv += ["--draining", replica.address]
            elif replica.state != "up":
                argv += ["--down", replica.address]
        _arguments, site = render_nginx.configuration(argv)
        render_nginx.write_local_folder(self.folder, site)

    def reload(self) -> None:
        """Send nginx the current list. With no process up the list is left as it was: nginx would
        refuse every request either way, and its passive check finds the first process back."""
        if not any(replica.state == "up" for replica in self.replicas):
            log.warning("no process is up; nginx keeps its last list")
            return
        self.render()
        checked = subprocess.run([*self.nginx_command, "-t", "-q"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused the new configuration: {checked.stderr.strip()}")
        # SIGHUP: new workers take the new list; old workers keep the connections they hold
        # (open websockets included) until those close.
        self.nginx.send_signal(signal.SIGHUP)
        log.info("nginx: reloaded with %s", ", ".join(f"{r.number}={r.state}" for r in self.replicas))

    # --- changes --------------------------------------------------------------------------------

    def restart(self, replica: Replica, grace: float, say=log.info) -> None:
        """Take `replica` out of nginx's list, let it finish for `grace` seconds, restart it, put it back."""
        with self.changing:
            others_up = any(other.state == "up" for other in self.replicas if other is not replica)
            if replica.state == "up" and not others_up:
                raise CommandRefused(f"no other process is up to take over from process {replica.number}")
            if grace > 0:
                replica.state = "draining"
                self.reload()
                say(f"process {replica.number}: takes no new browsers; its own have {grace:g} s to finish")
                if self.stopping.wait(grace):
                    raise CommandRefused("the supervisor is stopping")
            replica.state = "stopping"
            self.reload()
            say(f"process {replica.number}: out of nginx's list; stopping it")
            self.stop(replica)
            self.start(replica)
            if not self.wait_until_healthy(replica):
                replica.state = "failed"
                self.stop(replica)
                raise CommandRefused(f"process {replica.number} did not answer its health check within "
                                     f"{HEALTHY_WITHIN} s; it stays out of the list "
                                     f"(logs/replica-{replica.number}.log)")
            replica.state = "up"
            self.reload()
            say(f"process {replica.number}: healthy and back in nginx's list")

    def check(self) -> None:
        """One round of health checks: a process that has exited, or failed FAILED_CHECKS in a row, is
        taken out and restarted (no grace: it is serving nobody); one that did not start is tried again."""
        for replica in self.replicas:
            if self.stopping.is_set():
                return
            if replica.state == "up":
                exited = replica.process.poll() is not None
                replica.failed_checks = 0 if not exited and self.healthy(replica) else replica.failed_checks + 1
                if not exited and replica.failed_checks < FAILED_CHECKS:
                    continue
                log.warning("process %s: %s; restarting it", replica.number,
                            f"exited with {replica.process.returncode}" if exited
                            else f"failed {replica.failed_checks} health checks")
            elif replica.state != "failed":
                continue
            try:
                self.restart(replica, grace=0)
            except CommandRefused as refused:
                log.error("%s", refused)

    def status(self) -> list[str]:
        return [f"process {replica.number} {replica.address} {replica.state} pid "
                f"{replica.process.pid if replica.process else '-'}" for replica in self.replicas]

    # --- the whole run --------------------------------------------------------------------------

    def run(self) -> int:
        for sub in ("logs", "temp"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, self._ask_to_stop)
        control = None
        try:
            for replica in self.replicas:
                self.start(replica)
            for replica in self.replicas:
                if not self.wait_until_healthy(replica):
                    log.error("process %s did not become healthy; stopping", replica.number)
                    return 1
                replica.state = "up"
                log.info("process %s: healthy", replica.number)
            self.render()
            self.nginx = subprocess.Popen([*self.nginx_command, "-g", "daemon off;"], start_new_session=True)
            control = self._serve_commands()
            log.info("serving https://%s:%s with %s processes; `python deploy/serve.py restart N` "
                     "restarts one, Ctrl+C stops all", self.arguments.server_name, self.arguments.port,
                     len(self.replicas))
            next_check = time.monotonic() + self.arguments.check_every
            while not self.stop_asked:
                if self.nginx.poll() is not None:
                    log.error("nginx exited with %s (logs/error.log); stopping", self.nginx.returncode)
                    return 1
                if time.monotonic() >= next_check:
                    self.check()
                    next_check = time.monotonic() + self.arguments.check_every
                time.sleep(0.2)
            return 0
        finally:
            self.stopping.set()
            if control is not None:
                control.shutdown()
                control.server_close()
                (self.folder / SOCKET_NAME).unlink(missing_ok=True)
            if self.nginx is not None and self.nginx.poll() is None:
                self.nginx.terminate()
                self.nginx.wait(timeout=STOP_WITHIN)
            for replica in self.replicas:  # all at once, then each waited for
                if replica.process is not None and replica.process.poll() is None:
                    replica.process.terminate()
            for replica in self.replicas:
                self.stop(replica)

    def _ask_to_stop(self, _signal, _frame) -> None:
        # Only a flag: the loop above sees it within 0.2 s and stops everything in order.
        self.stop_asked = True

    def _serve_commands(self) -> socketserver.UnixStreamServer:
        path = self.folder / SOCKET_NAME
        path.unlink(missing_ok=True)
        supervisor = self

        class Command(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    log.info("%s", line)
                    self.wfile.write(f"{line}\n".encode())
                    self.wfile.flush()

                words = self.rfile.readline().decode(errors="replace").split()
                try:
                    supervisor.command(words, say)
                    self.wfile.write(b"done\n")
                except CommandRefused as refused:
                    log.error("%s", refused)
                    self.wfile.write(f"refused: {refused}\n".encode())

        previous = os.umask(0o177)  # the socket: its owner only
        try:
            server = socketserver.ThreadingUnixStreamServer(str(path), Command)
        finally:
            os.umask(previous)
        threading.Thread(target=server.serve_forever, name="commands", daemon=True).start()
        return server

    def command(self, words: list[str], say) -> None:
        if words == ["status"]:
            for line in self.status():
                say(line)
            return
        if len(words) in (2, 3) and words[0] == "restart" and words[1].isdigit():
            number = int(words[1])
            if not 1 <= number <= len(self.replicas):
                raise CommandRefused(f"there is no process {number} (1 to {len(self.replicas)})")
            grace = float(words[2]) if len(words) == 3 else self.arguments.grace
            replica = self.replicas[number - 1]
            if replica.state != "up":
                raise CommandRefused(f"process {number} is {replica.state}, not up")
            self.restart(replica, grace, say)
            return
        raise CommandRefused(f"unknown command {' '.join(words)!r}: 'status' or 'restart N [grace seconds]'")


def send(folder: Path, words: list[str]) -> int:
    """Ask the supervisor running from `folder`; print what it says; 0 when it is done."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        try:
            connection.connect(str(folder.resolve() / SOCKET_NAME))
        except OSError as problem:
            print(f"no supervisor answers in {folder} ({problem.strerror}): is `make serve` running?", file=sys.stderr)
            return 2
        connection.sendall((" ".join(words) + "\n").encode())
        last = ""
        for line in connection.makefile(encoding="utf-8"):
            last = line.rstrip("\n")
            print(last, flush=True)
    return 0 if last == "done" else 1


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--folder", default=str(ROOT / "data" / "proxy"),
                       help="nginx's folder: configuration, logs, the control socket (default data/proxy)")
    commands = parse.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the processes and nginx; stay in the foreground")
    run.add_argument("--replicas", type=int, default=2, help="how many Streamlit processes (default 2)")
    run.add_argument("--base-port", type=int, default=8501, help="the first process's port (default 8501)")
    run.add_argument("--server-name", default="localhost", help="the name on the certificate (default localhost)")
    run.add_argument("--port", type=int, default=8443, help="nginx's HTTPS port (default 8443)")
    run.add_argument("--http-port", type=int, default=8080, help="nginx's redirecting HTTP port (default 8080)")
    run.add_argument("--listen-address", default="127.0.0.1", help="nginx listens here (default 127.0.0.1)")
    run.add_argument("--certificate", required=True, help="PEM certificate chain")
    run.add_argument("--certificate-key", required=True, help="PEM private key")
    run.add_argument("--grace", type=float, default=10,
                     help="seconds a restarted process keeps its open pages before it stops (default 10)")
    run.add_argument("--check-every", type=float, default=2, help="seconds between health checks (default 2)")
    run.add_argument("--nginx", default=next((path for path in ("/usr/sbin/nginx", "/usr/bin/nginx")
                                              if Path(path).exists()), "nginx"), help="the nginx program")
    restart = commands.add_parser("restart", help="drain, restart and put back one process of a running supervisor")
    restart.add_argument("number", type=int, help="which process, 1 to N")
    restart.add_argument("--grace", type=float, help="seconds its open pages have (default: the supervisor's)")
    commands.add_parser("status", help="each process of a running supervisor: port, state, process id")
    return parse


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    folder = Path(arguments.folder)
    if arguments.command == "restart":
        grace = [] if arguments.grace is None else [f"{arguments.grace:g}"]
        return send(folder, ["restart", str(arguments.number), *grace])
    if arguments.command == "status":
        return send(folder, ["status"])
    if arguments.replicas < 1:
        parser().error("--replicas must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stdout)
    return Supervisor(arguments).run()


if __name__ == "__main__":
    sys.exit(main())
