"""Password hashing and the password policy (OWASP ASVS level 2).

Argon2id through argon2-cffi, with OWASP's minimum (19 MiB, 2 iterations, 1 lane). No truncation:
bcrypt is not used, as it ignores everything past 72 bytes.

The policy, in full (`policy_problem`):
- 12 to 128 characters (Unicode characters, not bytes: a 100-byte password of accented letters
  and emoji is fine). Every character is allowed, spaces included; no composition rules (no
  "one capital, one digit"): length and the checks below do the work.
- Not one character repeated ("aaaaaaaaaaaa", twelve spaces).
- Not in the list of common passwords: the 30,000 commonest passwords of breach corpora that the
  zxcvbn package ships (`zxcvbn.frequency_lists`, MIT licence, read offline), plus our own
  additions in `common_passwords.txt`. The check ignores case and spaces, and also what is left
  after stripping digits and punctuation from both ends, so "Password 2026!" and
  "qwertyuiop123" count as the common passwords they are built on.
- Not containing the username (ignoring case and spaces; a username of one or two characters
  only when the password is exactly it), nor the service's names `SERVICE_WORDS` ("liaison",
  "diversion", "ldhub"): the first words anyone guessing a password here would try.
"""

import re
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MINIMUM_LENGTH = 12
MAXIMUM_LENGTH = 128
SERVICE_WORDS = ("liaison", "diversion", "ldhub")
SHORTEST_USERNAME_SEARCHED = 3  # shorter usernames ("jo") would refuse half the dictionary
_ENDS = "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~£€"
_WHITESPACE = re.compile(r"\s+")

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The refused list, lower-cased without spaces: zxcvbn's 30,000 and our own additions."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # a large module: loaded on first use only

    text = (Path(__file__).parent / "common_passwords.txt").read_text(encoding="utf-8")
    ours = (line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return frozenset(_squeezed(word) for word in [*FREQUENCY_LISTS["passwords"], *ours])


def _squeezed(text: str) -> str:
    return _WHITESPACE.sub("", text.lower())


def policy_problem(password: str, username: str | None = None) -> str | None:
    """What is wrong with a new password, or None when it is acceptable."""
    if len(password) < MINIMUM_LENGTH:
        return (f"Password must be at least {MINIMUM_LENGTH} characters; it has {len(password)}. "
                "A phrase of three or four unrelated words is long enough and easy to remember.")
    if len(password) > MAXIMUM_LENGTH:
        return f"Password must be at most {MAXIMUM_LENGTH} characters; it has {len(password)}."
    squeezed = _squeezed(password)
    if len(set(squeezed)) <= 1:
        return "Password must not be one character repeated; choose another."
    if {squeezed, squeezed.strip(_ENDS)} & common_passwords():
        return "That password is one of the most common and easily guessed; choose another."
    name = _squeezed(username or "")
    if name and (squeezed == name or (len(name) >= SHORTEST_USERNAME_SEARCHED and name in squeezed)):
        return "Password must not contain the username."
    if any(word in squeezed for word in SERVICE_WORDS):
        return "Password must not contain the service's name (liaison, diversion or ldhub); choose another."
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
