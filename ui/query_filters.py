"""A list's filters kept in the URL query string, so a view can be bookmarked or shared.

Usage on a page (the caseload page uses the same helper)::

    bar = FilterBar("triage", [
        QueryFilter("site", FilterKind.INTS, choices=site_ids),
        QueryFilter("status", FilterKind.TEXTS, default=("new", "allocated"), choices=statuses),
        QueryFilter("from", FilterKind.DATE),
    ])
    bar.start()                                  # URL (or this session's last view) → widget state
    st.multiselect("Site", site_ids, key=bar.key("site"))   # widgets take their value from state
    ...
    values = bar.publish()                       # widget state → URL; returns {"site": [...], ...}

The query string is only ever *read* through ``parse``: a value that is not well formed or not
among a filter's ``choices`` is dropped, so a hand-edited or stale link cannot break the page or
select something the user may not see (the services still check every filter on the server).
Filters equal to their default are left out of the URL to keep it short.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import streamlit as st


class FilterKind(StrEnum):
    TEXT = "text"  # one string
    TEXTS = "texts"  # several strings (a multiselect)
    INT = "int"  # one whole number (an id)
    INTS = "ints"  # several whole numbers (ids)
    DATE = "date"  # an ISO date, yyyy-mm-dd, in the URL
    BOOL = "bool"  # "1" in the URL when on


MULTIPLE = (FilterKind.TEXTS, FilterKind.INTS)
MAX_VALUES = 50  # a link with more values than this for one filter is not one the app made
MAX_TEXT = 100


@dataclass(frozen=True)
class QueryFilter:
    name: str  # the query-string key
    kind: FilterKind
    default: object = None  # for TEXTS and INTS, a tuple
    choices: Collection | None = None  # values allowed; None allows any well-formed value

    def empty(self):
        if self.default is not None:
            return self.default
        return () if self.kind in MULTIPLE else (False if self.kind is FilterKind.BOOL else None)


def _one(kind: FilterKind, raw: str):
    """A single query-string value as Python, or None when it is not well formed."""
    raw = raw.strip()
    if kind in (FilterKind.INT, FilterKind.INTS):
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    if kind is FilterKind.DATE:
        try:
            return date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            return None
    if kind is FilterKind.BOOL:
        return raw == "1"
    return raw if 0 < len(raw) <= MAX_TEXT else None


def parse(filters: Sequence[QueryFilter], query: Mapping[str, Sequence[str]]) -> dict[str, object]:
    """Filter values from a query string given as {key: [values]}; bad or unknown values dropped."""
    values: dict[str, object] = {}
    for query_filter in filters:
        raws = list(query.get(query_filter.name, ()))[:MAX_VALUES]
        parsed = [_one(query_filter.kind, raw) for raw in raws]
        parsed = [value for value in parsed if value is not None]
        if query_filter.choices is not None:
            parsed = [value for value in parsed if value in query_filter.choices]
        if query_filter.kind in MULTIPLE:
            values[query_filter.name] = tuple(dict.fromkeys(parsed)) if raws else query_filter.empty()
        else:
            values[query_filter.name] = parsed[0] if parsed else query_filter.empty()
    return values


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value.isoformat() if isinstance(value, date) else str(value)


def encode(filters: Sequence[QueryFilter], values: Mapping[str, object]) -> dict[str, list[str]]:
    """The query string for ``values``: {key: [values]}, leaving out filters at their default.

    A multiple filter emptied by the user while its default is not empty is written as one
    empty value (``status=``), so "any status" survives a shared link.
    """
    query: dict[str, list[str]] = {}
    for query_filter in filters:
        value = values.get(query_filter.name, query_filter.empty())
        if query_filter.kind in MULTIPLE:
            value = tuple(value or ())
            if value == tuple(query_filter.empty()):
                continue
            query[query_filter.name] = [_text(item) for item in value] or [""]
        elif value not in (None, False) and value != query_filter.empty():
            query[query_filter.name] = [_text(value)]
    return query


class FilterBar:
    """Filters of one list, held in widget state and mirrored into the URL."""

    def __init__(self, prefix: str, filters: Sequence[QueryFilter]):
        self.prefix = prefix
        self.filters = list(filters)
        self._remembered = f"_{prefix}_filters"

    def key(self, name: str) -> str:
        """The widget key of a filter: give it to the widget as ``key=`` and pass no ``value``."""
        return f"{self.prefix}_{name}"

    def _from_url(self) -> dict[str, object] | None:
        names = {query_filter.name for query_filter in self.filters}
        if not names & set(st.query_params.keys()):
            return None
        return parse(self.filters, {name: st.query_params.get_all(name) for name in names})

    def start(self) -> None:
        """Put the URL's filters (or, without any, this session's last view) into widget state.

        Only widgets not yet in state are set, so a value the user just chose is never undone.
        """
        chosen = self._from_url() or st.session_state.get(self._remembered) or {}
        for query_filter in self.filters:
            key = self.key(query_filter.name)
            if key not in st.session_state:
                value = chosen.get(query_filter.name, query_filter.empty())
                if query_filter.kind in MULTIPLE:
                    allowed = query_filter.choices
                    st.session_state[key] = [item for item in value if allowed is None or item in allowed]
                elif query_filter.choices is not None and value is not None and value not in query_filter.choices:
                    st.session_state[key] = query_filter.empty()
                else:
                    st.session_state[key] = value

    def values(self) -> dict[str, object]:
        values = {}
        for query_filter in self.filters:
            value = st.session_state.get(self.key(query_filter.name), query_filter.empty())
            values[query_filter.name] = tuple(value or ()) if query_filter.kind in MULTIPLE else value
        return values

    def publish(self) -> dict[str, object]:
        """Write the current filters to the URL (and remember them for this session); return them."""
        values = self.values()
        wanted = encode(self.filters, values)
        for query_filter in self.filters:
            name = query_filter.name
            if name in wanted:
                if st.query_params.get_all(name) != wanted[name]:
                    st.query_params[name] = wanted[name]
            elif name in st.query_params:
                del st.query_params[name]
        st.session_state[self._remembered] = values
        return values
