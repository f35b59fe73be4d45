#!/usr/bin/env python3
"""Fill in deploy/nginx/ldhub.conf for one deployment (standard library only).

Production (run with the app's own Python, so the CSP matches the Streamlit it serves):

    .venv/bin/python deploy/render_nginx.py --server-name ldhub.example.nhs.uk \\
        --certificate /etc/ssl/ldhub/fullchain.pem --certificate-key /etc/ssl/ldhub/privkey.pem \\
        --upstream 127.0.0.1:8501 --upstream 127.0.0.1:8502 --output /etc/nginx/sites-available/ldhub.conf

Each `--upstream` is one Streamlit process, numbered 1, 2 … in the order given (the route cookie
names that number). `--draining HOST:PORT` keeps serving the browsers already on that process but
sends it no new ones; `--down HOST:PORT` sends it nothing (deploy/serve.py does both while it
restarts a process). A list that names a process twice, names a process that is not an --upstream,
or leaves no process to take new browsers is refused.

A local try or a test (`make proxy`, tests/test_proxy.py): `--local-folder DIR` writes DIR/ldhub.conf
and DIR/nginx.conf (deploy/nginx/local.conf) to run as `nginx -p DIR -c nginx.conf -e logs/error.log`.

Every value is checked before it goes into the configuration, and a placeholder left unfilled is
an error, never a silently broken file.
"""

import argparse
import base64
import hashlib
import importlib.util
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "nginx" / "ldhub.conf"
LOCAL_MAIN = HERE / "nginx" / "local.conf"
PLACEHOLDER = re.compile(r"\$\{(LDHUB_[A-Z_]+)\}")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*$")
UPSTREAM = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$")
ADDRESS = re.compile(r"^(?:[0-9.]+|\[[0-9A-Fa-f:.]+\]|\*)$")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]+$")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return value


def _checked(pattern: re.Pattern, what: str):
    def check(text: str) -> str:
        if not pattern.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {what}")
        return text

    return check


def streamlit_index() -> Path:
    """The index.html of the Streamlit that this Python would run (found without importing it)."""
    spec = importlib.util.find_spec("streamlit")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Streamlit is not installed for this Python: run this with the app's own "
                         "Python (.venv/bin/python), or pass --streamlit-index")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "index.html"


def script_hashes(index_html: str) -> str:
    """CSP sources ('sha256-…') for each inline <script> of Streamlit's index.html, exactly as served."""
    hashes = []
    for body in INLINE_SCRIPT.findall(index_html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes.append(f"'sha256-{digest}'")
    return " ".join(dict.fromkeys(hashes))


def _listen(address: str | None, port: int) -> str:
    return f"{address}:{port}" if address else str(port)


def _upstream(text: str) -> str:
    match = UPSTREAM.match(text)
    if not match or not 1 <= int(match.group(1)) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid host:port")
    return text


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least 1")
    return value


def replica_problem(upstreams: list[str], down: list[str], draining: list[str]) -> str | None:
    """Why this list of Streamlit processes cannot be served, or None when it can."""
    repeated = sorted({upstream for upstream in upstreams if upstreams.count(upstream) > 1})
    if repeated:
        return f"--upstream names {', '.join(repeated)} more than once"
    for option, named in (("--down", down), ("--draining", draining)):
        unknown = sorted(set(named) - set(upstreams))
        if unknown:
            return f"{option} names {', '.join(unknown)}, which is not an --upstream"
    both = sorted(set(down) & set(draining))
    if both:
        return f"{', '.join(both)} is both --down and --draining"
    if set(upstreams) <= set(down) | set(draining):
        return "no --upstream is left to take new browsers: every one is --down or --draining"
    return None


def upstream_blocks(arguments: argparse.Namespace) -> str:
    """The upstream groups and the two maps of processes (deploy/nginx/ldhub.conf explains them)."""
    def server(address: str, *flags: str) -> str:
        return f"    server {address} max_fails={arguments.max_fails} fail_timeout={arguments.fail_timeout}s" + \
            "".join(f" {flag}" for flag in flags if flag) + ";"

    out = set(arguments.down) | set(arguments.draining)
    blocks = ["upstream ldhub_app {", "    least_conn;", "    zone ldhub_app 64k;",
              *(server(address, "down" if address in out else "") for address in arguments.upstream), "}"]
    for number, address in enumerate(arguments.upstream, start=1):
        blocks += [f"upstream ldhub_{number} {{",
                   server(address, "down" if address in arguments.down else ""),
                   *(server(other, "backup", "down" if other in out else "")
                     for other in arguments.upstream if other != address), "}"]
    blocks += ["map $cookie_ldhub_route $ldhub_upstream {", "    default ldhub_app;",
               *(f"    {number} ldhub_{number};" for number in range(1, len(arguments.upstream) + 1)), "}",
               "map $upstream_addr $ldhub_answered {", '    default "";',
               *(f'    "~(?:^|, ){re.escape(address)}$" {number};'
                 for number, address in enumerate(arguments.upstream, start=1)), "}"]
    return "\n".join(blocks)


def values(arguments: argparse.Namespace) -> dict[str, str]:
    public_host = arguments.server_name if arguments.port == 443 else f"{arguments.server_name}:{arguments.port}"
    index = Path(arguments.streamlit_index) if arguments.streamlit_index else streamlit_index()
    return {
        "LDHUB_SERVER_NAME": arguments.server_name,
        "LDHUB_PUBLIC_HOST": public_host,
        "LDHUB_ORIGIN": f"https://{public_host}",
        "LDHUB_LISTEN": _listen(arguments.listen_address, arguments.port),
        "LDHUB_HTTP_LISTEN": _listen(arguments.listen_address, arguments.http_port),
        "LDHUB_CERTIFICATE": arguments.certificate,
        "LDHUB_CERTIFICATE_KEY": arguments.certificate_key,
        "LDHUB_UPSTREAMS": upstream_blocks(arguments),
        "LDHUB_SCRIPT_HASHES": script_hashes(index.read_text(encoding="utf-8")),
    }


def render(template: str, filled: dict[str, str]) -> str:
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in filled})
    if missing:
        raise SystemExit(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: filled[match.group(1)], template)


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--server-name", required=True, type=_checked(HOST_NAME, "host name"),
                       help="the name people type, on the certificate (e.g. ldhub.example.nhs.uk)")
    parse.add_argument("--port", type=_port, default=443, help="HTTPS port (default 443)")
    parse.add_argument("--http-port", type=_port, default=80, help="plain-HTTP port that only redirects (default 80)")
    parse.add_argument("--listen-address", type=_checked(ADDRESS, "listen address"),
                       help="listen on this address only (default: every address)")
    parse.add_argument("--certificate", required=True, type=_checked(SAFE_PATH, "absolute path"),
                       help="PEM certificate chain, absolute path")
    parse.add_argument("--certificate-key", required=True, type=_checked(SAFE_PATH, "absolute path"),
                       help="PEM private key, absolute path")
    parse.add_argument("--upstream", action="append", required=True, type=_upstream,
                       help="a Streamlit process, host:port (repeat for each process)")
    parse.add_argument("--down", action="append", default=[], type=_upstream,
                       help="an --upstream to send nothing to for now (repeatable)")
    parse.add_argument("--draining", action="append", default=[], type=_upstream,
                       help="an --upstream that keeps its own browsers but takes no new ones (repeatable)")
    parse.add_argument("--max-fails", type=_positive, default=2,
                       help="failed connections that take a process out for --fail-timeout (default 2)")
    parse.add_argument("--fail-timeout", type=_positive, default=10,
                       help="seconds in which --max-fails count, and out for as long (default 10)")
    parse.add_argument("--streamlit-index", help="Streamlit's static/index.html (default: the installed one)")
    where = parse.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", help="file to write (- for standard output)")
    where.add_argument("--local-folder", help="folder for a self-contained nginx (make proxy, the tests)")
    return parse


def configuration(argv: list[str]) -> tuple[argparse.Namespace, str]:
    """The checked arguments and the site configuration they make (exits with a message on a bad value)."""
    parse = parser()
    arguments = parse.parse_args(argv)
    problem = replica_problem(arguments.upstream, arguments.down, arguments.draining)
    if problem:
        parse.error(problem)
    return arguments, render(TEMPLATE.read_text(encoding="utf-8"), values(arguments))


def write_local_folder(folder: Path, site: str) -> None:
    """ldhub.conf and the whole nginx.conf around it, with the folders nginx writes to."""
    for sub in ("logs", "temp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "ldhub.conf").write_text(site, encoding="utf-8")
    (folder / "nginx.conf").write_text(LOCAL_MAIN.read_text(encoding="utf-8"), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    arguments, site = configuration(sys.argv[1:] if argv is None else argv)
    if arguments.local_folder:
        folder = Path(arguments.local_folder).resolve()
        write_local_folder(folder, site)
        print(f"nginx -p {folder} -c nginx.conf -e logs/error.log -g 'daemon off;'")
    elif arguments.output == "-":
        sys.stdout.write(site)
    else:
        Path(arguments.output).write_text(site, encoding="utf-8")


if __name__ == "__main__":
    main()
