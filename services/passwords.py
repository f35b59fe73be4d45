"""Password hashing and the password policy.

Argon2id through argon2-cffi, with OWASP's minimum (19 MiB, 2 iterations, 1 lane). No composition
rules and no truncation (bcrypt is not used: it ignores everything past 72 bytes).
"""

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MINIMUM_LENGTH = 8
MAXIMUM_LENGTH = 128

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = (Path(__file__).parent / "common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def policy_problem(password: str, username: str | None = None) -> str | None:
    """What is wrong with a new password, or None when it is acceptable."""
    if len(password) < MINIMUM_LENGTH:
        return f"Password must be at least {MINIMUM_LENGTH} characters; it has {len(password)}."
    if len(password) > MAXIMUM_LENGTH:
        return f"Password must be at most {MAXIMUM_LENGTH} characters; it has {len(password)}."
    if password.lower() in _common_passwords():
        return "That password is one of the most common and easily guessed; choose another."
    if username and password.lower() == username.lower():
        return "Password must not be the same as the username."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against this when the username is unknown keeps the time taken the same as for a
# wrong password, so response time does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing")


def spend_verification_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)
