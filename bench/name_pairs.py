"""How well the likely-duplicate finder tells one person from two: precision and recall on labelled pairs.

`tests/data/name_pairs.csv` holds pairs of person records (given name, family name, date of birth
or blank), each labelled the same person or two different people, with where the pair comes from.
For each pair, record A is put on file in a team of its own and record B is typed into
`services.people.find_likely_duplicates` as a new person would be; the pair counts as flagged when
A is among the people offered. Precision is the share of flagged pairs that are the same person,
recall the share of same-person pairs flagged.

Used by tests/test_people.py (floors on both figures) and by `python -m bench.benchmark people`.
"""

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
PAIRS_FILE = ROOT / "tests" / "data" / "name_pairs.csv"


@dataclass(frozen=True)
class NamePair:
    number: int
    given_a: str
    family_a: str
    born_a: date | None
    given_b: str
    family_b: str
    born_b: date | None
    same_person: bool
    kind: str
    source: str


def _day(text: str) -> date | None:
    return datetime.strptime(text, "%d/%m/%Y").date() if text.strip() else None


def load_pairs(path: Path = PAIRS_FILE) -> list[NamePair]:
    """The labelled pairs; lines starting with '#' are the file's notes."""
    with path.open(encoding="utf-8", newline="") as file:
        lines = [line for line in file if not line.startswith("#")]
    return [
        NamePair(int(row["pair"]), row["given_a"], row["family_a"], _day(row["dob_a"]), row["given_b"],
                 row["family_b"], _day(row["dob_b"]), row["same_person"] == "1", row["kind"], row["source"])
        for row in csv.DictReader(lines)
    ]


@dataclass
class Accuracy:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0
    missed: list[NamePair] = field(default_factory=list)
    wrongly_flagged: list[NamePair] = field(default_factory=list)

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        same = self.true_positives + self.false_negatives
        return self.true_positives / same if same else 1.0

    def add(self, pair: NamePair, flagged: bool) -> None:
        if pair.same_person and flagged:
            self.true_positives += 1
        elif pair.same_person:
            self.false_negatives += 1
            self.missed.append(pair)
        elif flagged:
            self.false_positives += 1
            self.wrongly_flagged.append(pair)
        else:
            self.true_negatives += 1

    def as_dict(self) -> dict:
        return {
            "pairs": self.true_positives + self.false_positives + self.false_negatives + self.true_negatives,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
            "missed_by_kind": dict(Counter(pair.kind for pair in self.missed)),
            "wrongly_flagged_by_kind": dict(Counter(pair.kind for pair in self.wrongly_flagged)),
        }


def _describe(given: str, family: str, born: date | None) -> str:
    return f"{given} {family} ({born:%d/%m/%Y})" if born else f"{given} {family} (no date of birth)"


def describe(pair: NamePair) -> str:
    return f"{pair.number}: {_describe(pair.given_a, pair.family_a, pair.born_a)} / " \
           f"{_describe(pair.given_b, pair.family_b, pair.born_b)} [{pair.kind}]"


def evaluate_finder(pairs: Sequence[NamePair], engine: Engine | None = None) -> Accuracy:
    """Run the real finder on each pair, each A record alone in a team of its own.

    Without an engine, a temporary SQLite database is made and thrown away.
    """
    if engine is None:
        import tempfile

        from sqlmodel import SQLModel

        import models  # noqa: F401  every table registered
        from services import db

        with tempfile.TemporaryDirectory() as folder:
            engine = db.create_database_engine(f"sqlite:///{folder}/pairs.db")
            SQLModel.metadata.create_all(engine)
            try:
                return evaluate_finder(pairs, engine)
            finally:
                engine.dispose()
    return _evaluate(pairs, engine)


def _evaluate(pairs: Iterable[NamePair], engine: Engine) -> Accuracy:
    from models import Person, Team, User
    from models.codes import NhsNumberStatus, Role
    from services import db, people
    from services.matching import name_key

    pairs = list(pairs)
    with db.writing(engine) as session:
        teams = [Team(name=f"Pairs team {pair.number}") for pair in pairs]
        session.add_all(teams)
        session.flush()
        records = [
            Person(team_id=team.id, given_name=pair.given_a, family_name=pair.family_a, date_of_birth=pair.born_a,
                   given_name_key=name_key(pair.given_a), family_name_key=name_key(pair.family_a),
                   nhs_number_status=NhsNumberStatus.NOT_KNOWN.value)
            for pair, team in zip(pairs, teams, strict=True)
        ]
        session.add_all(records)
        session.flush()
        placed = [(team.id, record.id) for team, record in zip(teams, records, strict=True)]
    accuracy = Accuracy()
    with db.reading(engine) as session:
        for pair, (team_id, person_id) in zip(pairs, placed, strict=True):
            user = User(id=0, username="pairs", full_name="Pairs", role=Role.PRACTITIONER.value, team_id=team_id,
                        active=True)
            found = people.find_likely_duplicates(session, user, pair.given_b, pair.family_b, pair.born_b)
            accuracy.add(pair, any(match.person_id == person_id for match in found))
    return accuracy
