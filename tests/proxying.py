"""What the reverse-proxy tests share (tests/test_proxy.py, tests/test_replicas.py): Debian's nginx
and openssl, skipping with the reason when they are missing, and a self-signed certificate."""

import shutil
import subprocess
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None)
OPENSSL = shutil.which("openssl")


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for localhost in `folder`; skips the test when nginx or openssl is missing."""
    if NGINX is None:
        pytest.skip("nginx is not installed (make test installs Debian's nginx when run as root)")
    if OPENSSL is None:
        pytest.skip("openssl is not installed, so no certificate can be made for the proxy "
                    "(make test installs it when run as root)")
    certificate, key = folder / "certificate.pem", folder / "key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )
    return certificate, key
