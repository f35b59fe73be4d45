"""Finding people who may already be on record under a differently written name.

Custody and court staff type names from what a person says, often in a hurry, so one person can
be "Siobhán O'Brien" in one request and "Siobhan OBrien" in the next. These rules turn a name
into a key for comparing and searching; the stored name itself is never changed.

``name_key`` rules, in order:

- case is folded with ``str.casefold`` ("Strauß" and "Strauss" match);
- apostrophes of every kind are removed, so "O'Brien", "O’Brien" and "OBrien" all give "obrien";
- accents and other combining marks are dropped after NFKD decomposition ("Siobhán",
  "Nguyễn", Arabic vowel marks, Hebrew points); letters that do not decompose ("ø", "ł", "đ",
  "æ" …) are spelt out from a small table;
- hyphens, dots, commas and anything else that is not a letter, digit or mark separate words,
  and runs of separators become one space: "Smith-Jones" and "St. John" give "smith jones" and
  "st john";
- a word that is a known spelling variant of a given name becomes the first spelling in its
  group of ``GIVEN_NAME_VARIANTS`` ("Muhammad" → "mohammed"), and a word beginning "mc" is
  written "mac" ("McDonald" → "macdonald").

``names_similar`` compares two people's names (these rules are for comparing only: stored keys,
and so the search, never depend on them). It ignores the spaces between words, so "O Brien"
matches "OBrien" and "Mac Donald" "MacDonald", and accepts names entered in each other's boxes,
a middle name recorded one time and not the next, a person known by a later given name ("Van
Minh", "Minh"), one part of a double family name ("Smith-Jones", "Jones"; "García López",
"García"), "O'Sullivan" written "Sullivan" and the Arabic article written "Al-" or "El-". Two
words are one name (``_spellings_close``) when:

- one is a nickname of the other in the ``nicknames`` package (Carlton Northern and Nick Crews'
  hand-curated list of English names, Apache-2.0: Bill/William, Peggy/Margaret), or the two are on
  one line of ``name_equivalents.txt`` (Welsh, Irish and Scottish forms, Slavic diminutives, West
  African short forms, Md/Mohammed; its notes say where it comes from). Only a direct link
  counts: Samuel and Samantha share the nickname Sam but are not one name;
- they sound alike by ``_sound_key``: the first vowel sound and the consonants, with the
  spellings of one sound folded together (Chaudhry, Choudhury and Chowdhury; Nasreen and Nasrin;
  Geoffrey and Jeffrey), but Hussain and Hassan, or Jane and June, kept apart;
- one letter is added, left out or doubled (names of three letters or more, same first letter),
  two neighbours are swapped, or one letter is changed where Metaphone (``jellyfish``) hears no
  difference (names of four letters or more: Carl/Karl yes, Dean/Sean no); names of seven
  letters or more may carry two such slips if they still sound alike (Stephenson, Stevenson).
  Distances are ``rapidfuzz``'s optimal string alignment;
- a name in a script without short vowels (Arabic) has the consonants of the other once both
  are in Latin letters (``anyascii``: محمد علي is "mhmd ly", Mohammed Ali).

A man's and a woman's form of one name (Paul/Paula, Louis/Louise, Mario/Maria, Alexander/
Alexandra) is never one name: they are twins' names far more often than one person's spellings.

What it still misses or wrongly offers is measured on ``tests/data/name_pairs.csv`` (see
``bench/name_pairs.py``): Gaelic family names (Ó Súilleabháin/O'Sullivan), German
transliterations of Slavic names, nicknames the lists lack (Alfie, Gill); and it offers John/Joan,
Jane/June and Ryan/Rhian, which only the date of birth and a person can tell apart.
``names_similar`` proposes candidates for a person to confirm, alongside the date of birth and NHS
number; it is not proof that two records are the same person.
"""

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from anyascii import anyascii
from jellyfish import metaphone
from nicknames import NickNamer
from rapidfuzz.distance import OSA

# Well-known spellings of the same given name; the first in each group is the one keys use.
# Entries are written as keys are: lower case, unaccented. Variants one typing slip apart
# (Sarah/Sara, Philip/Phillip) need no entry: names_similar already accepts them.
GIVEN_NAME_VARIANTS: tuple[tuple[str, ...], ...] = (
    ("mohammed", "mohammad", "mohamed", "mohamad", "muhammad", "muhammed"),
    ("ahmed", "ahmad"),
    ("yusuf", "yusef", "yousef", "yousuf", "youssef"),
    ("john", "jon"),
    ("jonathan", "jonathon", "johnathan"),
    ("stephen", "steven"),
    ("sean", "shaun", "shawn"),
    ("catherine", "katherine", "kathryn", "katharine", "catharine"),
    ("caitlin", "caitlyn", "kaitlyn", "katelyn"),
    ("alexander", "aleksander", "alexandr", "aleksandr"),
    ("isabel", "isobel", "isabelle"),
)

# A name of this length or more may carry two slips and still be the same name.
LONG_NAME = 7
# One slip changes a name of three letters or fewer into a different name (Tom, Tim).
SHORTEST_NAME_FOR_ONE_EDIT = 4

_CANONICAL_SPELLING = {variant: group[0] for group in GIVEN_NAME_VARIANTS for variant in group}
_VARIANT_GROUPS = {group[0]: group for group in GIVEN_NAME_VARIANTS}
# Removed before decomposition: NFKD turns the acute accent "´" into a space and a mark.
_APOSTROPHES = str.maketrans(dict.fromkeys("'`\u00b4\u02b9\u02bc\u2018\u2019\u2032"))
# Letters that NFKD leaves whole, so dropping combining marks alone would not fold them; the
# Arabic tatweel only stretches a word on the page.
_UNDECOMPOSED_LETTERS = str.maketrans(
    {
        "æ": "ae", "ð": "d", "đ": "d", "ħ": "h", "ı": "i", "ł": "l",
        "ø": "o", "œ": "oe", "þ": "th", "\u0640": "",
    }
)  # fmt: skip
_WORD_CATEGORIES = ("L", "N", "M")  # letters, numbers and the marks that spell some scripts


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_APOSTROPHES))
    bare = "".join(character for character in decomposed if not unicodedata.combining(character))
    return bare.translate(_UNDECOMPOSED_LETTERS)


def _canonical_word(word: str) -> str:
    word = _CANONICAL_SPELLING.get(word, word)
    # McDonald and MacDonald are one family name written two ways.
    return "mac" + word[2:] if word.startswith("mc") else word


def _words(text: str) -> list[str]:
    spaced = "".join(
        character if unicodedata.category(character)[0] in _WORD_CATEGORIES else " "
        for character in _unaccented(text or "")
    )
    return [_canonical_word(word) for word in spaced.split()]


def name_key(text: str) -> str:
    """The comparison form of a name: "  Siobhán O'Brien-McDonald " → "siobhan obrien macdonald"."""
    return " ".join(_words(text))


def search_tokens(text: str) -> list[str]:
    """The words of the typed text's name key, in order, without repeats.

    Matching them against stored name keys finds "Muhammad O'Brien" from "mohammed obrien".
    """
    return list(dict.fromkeys(_words(text)))


# --- Comparing two spellings (comparison only: stored name keys never depend on these rules) ------

_EQUIVALENTS_FILE = Path(__file__).with_name("name_equivalents.txt")
# A name in Arabic, Hebrew or another script that writes no short vowels is compared by consonants.
_VOWELS = "aeiouy"
_GENDERED_ENDINGS = ("a", "ia", "ina", "ine", "elle", "ella", "ette", "la", "le", "na")


@lru_cache(maxsize=1)
def _nicknames() -> NickNamer:
    return NickNamer()


@lru_cache(maxsize=1)
def _equivalents() -> dict[str, frozenset[str]]:
    """Each word of name_equivalents.txt → every word on a line with it."""
    groups: dict[str, set[str]] = {}
    for line in _EQUIVALENTS_FILE.read_text(encoding="utf-8").splitlines():
        words = [word.strip() for word in line.split(",") if word.strip()] if not line.startswith("#") else []
        for word in words:
            groups.setdefault(word, set()).update(words)
    return {word: frozenset(group) for word, group in groups.items()}


@lru_cache(maxsize=4096)
def _latin(word: str) -> str:
    """The word in Latin letters (anyascii: محمد → mhmd), only letters kept."""
    return "".join(character for character in anyascii(word).lower() if character.isalpha())


def _written_without_vowels(word: str) -> bool:
    return any(unicodedata.category(character) == "Lo" for character in word)


@lru_cache(maxsize=4096)
def _sound_key(word: str) -> str:
    """How the name sounds, for spellings of one name in different transliterations.

    Standard phonetic codes (Metaphone, NYSIIS) drop the vowels, so they make Hussain and Hassan,
    or Jane and June, one name. Here the first vowel sound is kept as a class (a; e/i/y; o/u) and
    the consonants are folded where spellings of one sound differ (ph/f, c/k/q, kh/k, gh, v/f, z/s,
    silent h and w): Chaudhry, Choudhury and Chowdhury give one key, Hussain and Hassan two.
    """
    text = re.sub(r"^kn", "n", re.sub(r"^wr", "r", _latin(word)))  # Knowles, Wright
    text = re.sub(r"(?<=[^aeiouy])w(?=[aeiouy])", "v", text)  # Sukhwinder, Sukhvinder
    text = re.sub(r"^ch(?=[lr])", "k", text)  # Chloe, Christopher
    for spelling, sound in (("ph", "f"), ("ck", "k"), ("kh", "k"), ("dh", "d"), ("th", "t"), ("sh", "s"),
                            ("ch", "x"), ("q", "k"), ("x", "ks"), ("v", "f"), ("z", "s")):
        text = text.replace(spelling, sound)
    text = re.sub(r"gh(?![aeiouy])", "", text)  # Leigh, Hugh: silent
    text = re.sub(r"c(?=[eiy])", "s", text).replace("c", "k")
    text = re.sub(r"g(?=[eiy])", "j", text)
    key, vowel_seen = text[:1] if text[:1] not in _VOWELS else "", False
    runs = re.findall(r"[aeiouyw]+|[^aeiouyw]+", text[len(key):])
    for run in runs:
        if run[0] in _VOWELS or run[0] == "w":
            if not vowel_seen and run.strip("w"):
                vowel_seen = True
                key += "u" if run[0] in "ou" or run.startswith(("au", "aw", "eu", "ew")) else run[0] \
                    if run[0] == "a" else "i"
            continue
        key += run.replace("h", "")
    return re.sub(r"(.)\1+", r"\1", key)


@lru_cache(maxsize=4096)
def _consonants(word: str) -> str:
    """The consonants only (for a name written in a script without short vowels)."""
    text = _sound_key(word)
    return re.sub(r"(.)\1+", r"\1", "".join(character for character in text[1:] if character not in _VOWELS)
                  if text[:1] in _VOWELS else text[:1] + "".join(c for c in text[1:] if c not in _VOWELS))


def _gendered_forms(first: str, second: str) -> bool:
    """A man's and a woman's form of one name (Paul/Paula, Louis/Louise, Mario/Maria): twins'
    names, never one person's two spellings."""
    shorter, longer = sorted((first, second), key=len)
    if longer.startswith(shorter) and (longer[len(shorter):] in _GENDERED_ENDINGS
                                       or (longer[len(shorter):] == "e" and shorter[-1:] in "sl")):
        return True
    stem = _common_prefix(first, second)
    endings = {first[len(stem):], second[len(stem):]}
    return len(stem) >= 3 and endings in ({"o", "a"}, {"us", "a"}, {"er", "ra"}, {"is", "es"}, {"as", "a"})


def _common_prefix(first: str, second: str) -> str:
    length = 0
    while length < min(len(first), len(second)) and first[length] == second[length]:
        length += 1
    return first[:length]


def _known_forms(first: str, second: str) -> bool:
    """Listed as one name: a nickname (nicknames package) or a form in name_equivalents.txt.

    Keys hold one spelling of each GIVEN_NAME_VARIANTS group ("catherine" for Katherine), so each
    spelling of the group is looked up (Kate is listed under Katherine, not Catherine).
    """
    names = _nicknames()
    for one in _VARIANT_GROUPS.get(first, (first,)):
        for other in _VARIANT_GROUPS.get(second, (second,)):
            if (one in _equivalents().get(other, ()) or one in names.nicknames_of(other)
                    or other in names.nicknames_of(one)):
                return True
    return False


@lru_cache(maxsize=65536)
def _spellings_close(first: str, second: str) -> bool:
    """Two words (name keys) that may be one name: see names_similar for the rules."""
    if first == second:
        return True
    if _gendered_forms(first, second):
        return False
    if _known_forms(first, second):
        return True
    if _written_without_vowels(first) != _written_without_vowels(second):
        # Arabic script writes no short vowels: علي is "ly", Ali is "ali"; compare consonants.
        return bool(_consonants(first)) and _consonants(first) == _consonants(second)
    first, second = _latin(first) or first, _latin(second) or second
    shortest = min(len(first), len(second))
    sound_first, sound_second = _sound_key(first), _sound_key(second)
    if sound_first == sound_second and len(sound_first) >= 2 and shortest >= 3:
        return True
    edits = OSA.distance(first, second)
    if edits == 1:
        if len(first) == len(second):
            swapped = sorted(first) == sorted(second)  # two neighbours swapped (OSA: one edit)
            return shortest >= 3 if swapped else shortest >= SHORTEST_NAME_FOR_ONE_EDIT and \
                metaphone(first) == metaphone(second)
        return shortest >= 3 and first[0] == second[0]  # a letter left out or typed twice
    # Longer names bear two slips when they still sound alike (Stephenson, Stevenson).
    return edits == 2 and shortest >= LONG_NAME and metaphone(first) == metaphone(second)


_ARTICLES = ("al", "el")  # Al-Sayed, El-Sayed: the Arabic article, written either way or left out


def _without_articles(words: list[str]) -> list[str]:
    return [word for word in words if word not in _ARTICLES] or words


def _parts_similar(first_words: list[str], second_words: list[str]) -> bool:
    """Two family names (or two given names compared whole) that may be one."""
    # Spaces are ignored so that "O Brien" matches "OBrien" and "Mac Donald" "MacDonald".
    first, second = "".join(first_words), "".join(second_words)
    if first == second:
        return True  # two empty given names too: a person known by one name only
    if not (first and second):
        return False
    if _spellings_close(first, second):
        return True
    # O'Sullivan recorded as Sullivan.
    shorter, longer = sorted((first, second), key=len)
    if longer == "o" + shorter or _without_articles(first_words) == _without_articles(second_words):
        return True
    # One part of a double family name (Smith-Jones, Smith; García López, García).
    fewer, more = sorted((_without_articles(first_words), _without_articles(second_words)), key=len)
    return len(fewer) < len(more) and all(any(_spellings_close(word, other) for other in more) for word in fewer)


def _given_names_similar(first_words: list[str], second_words: list[str]) -> bool:
    if _parts_similar(first_words, second_words):
        return True
    if not (first_words and second_words):
        return False
    # A middle name recorded one time and not the next ("John Paul", "John"), or a person known
    # by a name other than their first ("Van Minh", "Minh").
    if _spellings_close(first_words[0], second_words[0]):
        return True
    fewer, more = sorted((first_words, second_words), key=len)
    return len(fewer) == 1 < len(more) and any(_spellings_close(fewer[0], word) for word in more)


def names_similar(given_a: str, family_a: str, given_b: str, family_b: str) -> bool:
    """True when two people's names may be the same name written differently.

    Given names and family names are compared separately, and also crosswise in case they were
    entered in each other's boxes ("Zhang Wei", "Wei Zhang"). A name with no letters matches
    nothing.
    """
    given_a_words, family_a_words = _words(given_a), _words(family_a)
    given_b_words, family_b_words = _words(given_b), _words(family_b)
    if not (given_a_words or family_a_words) or not (given_b_words or family_b_words):
        return False
    in_order = _given_names_similar(given_a_words, given_b_words) and _parts_similar(family_a_words, family_b_words)
    swapped = _parts_similar(given_a_words, family_b_words) and _parts_similar(family_a_words, given_b_words)
    return in_order or swapped
