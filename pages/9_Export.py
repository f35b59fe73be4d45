"""Export: pick a list, its filters and its columns, see what will come out, download it as Excel."""

import streamlit as st

from services import db, export
from services.errors import InputErrors
from services.permissions import Permission, has_permission
from ui.export_button import export_button, kpi_button
from ui.export_form import column_picker, filter_widgets
from ui.guard import app_engine, require
from ui.national_return import export_tab

user = require(Permission.EXPORT, title="Export")
engine = app_engine()
st.title("Export")
st.caption("Excel files of exactly the records a list selects, with UK dates and times. Every export is "
           "recorded in the audit log. Files are marked OFFICIAL-SENSITIVE: store and share them accordingly.")

lists = export.exportable_lists(user)
kpi = has_permission(user, Permission.VIEW_CASELOAD)
tabs = st.tabs(["A list", "KPI workbook", "National return (MHSDS)"] if kpi else ["A list"])

with tabs[0]:
    if not lists:
        st.info("There are no lists you may export.")
    else:
        by_name = {exportable.name: exportable for exportable in lists}
        chosen = by_name[st.selectbox("List", list(by_name), format_func=lambda name: by_name[name].title,
                                      key="export_list")]
        st.header("Filters")
        filters = filter_widgets(engine, user, chosen)
        st.header("Columns")
        columns = column_picker(engine, user, chosen)
        if filters is not None and columns:
            # The preview shows people's details: audited once per distinct preview in this browser
            # session (list, filters, columns), not at every redraw of the page.
            shown_key = repr((chosen.name, sorted(chosen.filter_values(filters).items()), tuple(columns)))
            audited = st.session_state.setdefault("audited.export_preview", set())
            try:
                with db.reading(engine) as session:
                    total = export.count_rows(session, user, chosen.name, filters)
                    preview = export.preview_rows(session, user, chosen.name, filters, columns,
                                                  audited=shown_key not in audited)
                audited.add(shown_key)
            except InputErrors as refused:
                for message in refused.errors.values():
                    st.error(message, icon=":material/error:")
            else:
                st.header("What will be exported")
                st.metric("Rows", f"{total:,}")
                st.caption(f"Order: {chosen.order}. The first {len(preview)} rows:")
                st.dataframe(preview, hide_index=True)
                export_button(user, chosen.name, filters, label="Download as Excel", columns=columns,
                              key=f"export_page_{chosen.name}")
        elif not columns:
            st.warning("Choose at least one column to export.", icon=":material/warning:")

if kpi:
    with tabs[1]:
        st.write("One workbook with a sheet for each caseload measure, the same numbers the Caseload "
                 "page charts, for commissioners' returns. Quarters are NHS financial quarters (April to June "
                 "is quarter 1).")
        periods = export.recent_periods()
        period = st.selectbox("Month or quarter", periods, format_func=lambda chosen_period: chosen_period.label,
                              key="export_kpi_period")
        kpi_button(user, period)
    with tabs[2]:
        export_tab(engine, user)
