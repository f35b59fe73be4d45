"""The Export page's controls: a list's filters and columns, drawn from its registry entry."""

from typing import Any

import streamlit as st
from sqlalchemy import Engine

from models import User
from services import db, export
from services.errors import InputErrors
from services.export import ExportableList, FilterField, FilterKind
from ui.forms import FieldMessages

TEXT_FILTER_LIMIT = 64


def filter_widgets(engine: Engine, user: User, exportable: ExportableList) -> Any | None:
    """Draw a widget per filter of the list; return its filters object (None when refused)."""
    defaults = exportable.filter_values(exportable.no_filters())
    with db.reading(engine) as session:
        choices = {field.name: list(field.choices(session, user)) for field in exportable.filter_fields
                   if field.choices is not None}
    values = dict(defaults)
    columns = st.columns(3)
    for position, field in enumerate(exportable.filter_fields):
        with columns[position % 3]:
            values[field.name] = _widget(exportable, field, defaults.get(field.name), choices.get(field.name, []))
    try:
        return exportable.filters_from(values)
    except (ValueError, TypeError) as problem:
        st.error(f"These filters cannot be used: {problem}.", icon=":material/error:")
        return None


def _widget(exportable: ExportableList, field: FilterField, default, choices: list[tuple[Any, str]]):
    key = f"export_filter_{exportable.name}_{field.name}"
    labels = dict(choices)
    if field.kind is FilterKind.date:
        return st.date_input(field.label, value=default, format="DD/MM/YYYY", key=key)
    if field.kind is FilterKind.number:
        chosen = st.number_input(field.label, value=default, min_value=1, step=1, format="%d", key=key)
        return None if chosen is None else int(chosen)
    if field.kind is FilterKind.yes_no:
        return st.checkbox(field.label, value=bool(default), key=key)
    if field.kind is FilterKind.choice:
        options = [None, *labels]
        return st.selectbox(field.label, options, index=options.index(default) if default in options else 0,
                            format_func=lambda value: "Any" if value is None else labels.get(value, str(value)),
                            key=key)
    if field.kind is FilterKind.choices:
        preset = [value for value in default or () if value in labels]
        chosen = st.multiselect(field.label, list(labels), default=preset, placeholder="Any",
                                format_func=lambda value: labels.get(value, str(value)), key=key)
        return tuple(chosen)
    typed = st.text_input(field.label, value=default or "", max_chars=TEXT_FILTER_LIMIT, key=key)
    return typed.strip() or None


def column_picker(engine: Engine, user: User, exportable: ExportableList) -> list[str]:
    """Columns in the order chosen, with the user's saved column sets to reuse, save or delete."""
    key = f"export_columns_{exportable.name}"
    headings = {column.key: column.heading for column in exportable.columns}
    with db.reading(engine) as session:
        saved_sets = export.column_sets(session, user, exportable.name)
    if saved_sets:
        by_id = {saved.id: saved for saved in saved_sets}
        use, delete = st.columns([3, 1], vertical_alignment="bottom")
        chosen_id = use.selectbox("Saved column set", list(by_id), format_func=lambda set_id: by_id[set_id].name,
                                  key=f"{key}_saved")
        use.button("Use this column set", key=f"{key}_use", on_click=_use_set,
                   args=(key, export.usable_columns(exportable, by_id[chosen_id])))
        if delete.button("Delete this column set", key=f"{key}_delete"):
            with db.writing(engine) as session:
                export.delete_column_set(session, user, chosen_id)
            st.rerun()
    if key not in st.session_state:
        st.session_state[key] = exportable.column_keys()
    chosen = st.multiselect("Columns, in the order chosen", exportable.column_keys(), format_func=headings.get,
                            key=key, help="Remove columns you do not need; pick them again to change the order.")
    _save_form(engine, user, exportable, chosen)
    return chosen


def _use_set(key: str, columns: list[str]) -> None:
    st.session_state[key] = columns


def _save_form(engine: Engine, user: User, exportable: ExportableList, chosen: list[str]) -> None:
    with st.form(f"save_columns_{exportable.name}", border=False):
        messages = FieldMessages()
        name = st.text_input("Name for this column set", max_chars=60)
        messages.under("column_set_name")
        messages.under("columns")
        if not st.form_submit_button("Save column set"):
            return
    try:
        with db.writing(engine) as session:
            export.save_column_set(session, user, exportable.name, name, chosen)
    except InputErrors as refused:
        messages.show(refused.errors)
        return
    st.success(f"Saved the column set {name.strip()!r}.", icon=":material/check:")
