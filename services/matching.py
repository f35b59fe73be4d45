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

``names_similar`` also ignores the spaces between words, so "O Brien" matches "OBrien" and
"Mac Donald" "MacDonald"; equal name keys are the stricter test. It accepts spellings one slip
apart (see ``_spellings_close``), names entered in each other's boxes, and a middle name
recorded one time and not the next.

Nicknames (Bill, William) and transliteration between scripts (Mohammed, محمد) are not
matched. ``names_similar`` proposes candidates for a person to confirm, alongside the date of
birth and NHS number; it is not proof that two records are the same person.
"""

import difflib
import unicodedata

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

SIMILARITY_THRESHOLD = 0.85
# One slip changes a name of three letters or fewer into a different name (Tom, Tim).
SHORTEST_NAME_FOR_ONE_EDIT = 4

_CANONICAL_SPELLING = {variant: group[0] for group in GIVEN_NAME_VARIANTS for variant in group}
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


def _within_one_edit(first: str, second: str) -> bool:
    """True when one letter was changed, added or left out, or two neighbours were swapped."""
    if abs(len(first) - len(second)) > 1:
        return False
    if len(first) != len(second):
        shorter, longer = sorted((first, second), key=len)
        return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))
    differences = [i for i, pair in enumerate(zip(first, second, strict=True)) if pair[0] != pair[1]]
    if len(differences) <= 1:
        return True
    left, right = differences[0], differences[-1]
    return len(differences) == 2 and right == left + 1 and (first[left], first[right]) == (second[right], second[left])


def _spellings_close(first: str, second: str) -> bool:
    if difflib.SequenceMatcher(None, first, second).ratio() >= SIMILARITY_THRESHOLD:
        return True
    # The ratio punishes one slip in a short name hard ("smith"/"smyth" is 0.8).
    shortest = min(len(first), len(second))
    return shortest >= SHORTEST_NAME_FOR_ONE_EDIT and _within_one_edit(first, second)


def _parts_similar(first_words: list[str], second_words: list[str]) -> bool:
    # Spaces are ignored here so that "O Brien" matches "OBrien" and "Mac Donald" "MacDonald".
    first, second = "".join(first_words), "".join(second_words)
    if first == second:
        return True
    return bool(first and second) and _spellings_close(first, second)


def _given_names_similar(first_words: list[str], second_words: list[str]) -> bool:
    # A middle name recorded one time and not the next ("John Paul", "John") is still a match.
    return _parts_similar(first_words, second_words) or (
        bool(first_words and second_words) and _parts_similar(first_words[:1], second_words[:1])
    )


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
