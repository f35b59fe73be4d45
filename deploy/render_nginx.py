#!/usr/bin/env python3
"""Fill in deploy/nginx/ldhub.conf for one deployment (standard library only).

Production (run with the app's own Python, so the CSP matches the Streamlit it serves):

    .venv/bin/python deploy/render_nginx.py --server-name ldhub.example.nhs.uk \\
        --certificate /etc/ssl/ldhub/fullchain.pem --certificate-key /etc/ssl/ldhub/privkey.pem \\
        --upstream 127.0.0.1:8501 --output /etc/nginx/sites-available/ldhub.conf

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
UPSTREAM = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$")
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
        "LDHUB_UPSTREAM_SERVERS": "\n".join(f"    server {upstream};" for upstream in arguments.upstream),
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
    parse.add_argument("--upstream", action="append", required=True, type=_checked(UPSTREAM, "host:port"),
                       help="a Streamlit process, host:port (repeat for more: issue #16)")
    parse.add_argument("--streamlit-index", help="Streamlit's static/index.html (default: the installed one)")
    where = parse.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", help="file to write (- for standard output)")
    where.add_argument("--local-folder", help="folder for a self-contained nginx (make proxy, the tests)")
    return parse


def main(argv: list[str] | None = None) -> None:
    arguments = parser().parse_args(argv)
    site = render(TEMPLATE.read_text(encoding="utf-8"), values(arguments))
    if arguments.local_folder:
        folder = Path(arguments.local_folder).resolve()
        for sub in ("logs", "temp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "ldhub.conf").write_text(site, encoding="utf-8")
        (folder / "nginx.conf").write_text(LOCAL_MAIN.read_text(encoding="utf-8"), encoding="utf-8")
        print(f"nginx -p {folder} -c nginx.conf -e logs/error.log -g 'daemon off;'")
    elif arguments.output == "-":
        sys.stdout.write(site)
    else:
        Path(arguments.output).write_text(site, encoding="utf-8")


if __name__ == "__main__":
    main()
