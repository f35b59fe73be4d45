"""Service settings for administrators: sites, code lists, settings and teams.

Notices never repeat what was typed (a notice is markdown); names are shown in tables and boxes.
The section shown is a keyed tab bound to the address (?tab=…), so a save's rerun (or a reload)
comes back to the same section, with the same list and row chosen; only that section is drawn.
Adding a site, code or team sends the form's submission token, so a double click adds it once.
"""


import streamlit as st

from models.codes import CodeList, SiteKind
from services import administration as admin
from services import db
from services.permissions import Permission
from ui.editing import attempt, choose, creating, form_round, show_notice, shown_version
from ui.forms import FieldMessages
from ui.guard import app_engine, require

user = require(Permission.MANAGE_SERVICE, title="Service settings")
engine = app_engine()
st.title("Service settings")
show_notice()
yes_no = {True: "Yes", False: "No"}


def sites_section() -> None:
    team_id = choose("Team", team_names, key="site_team", default=user.team_id)
    with db.reading(engine) as session:
        sites = admin.list_sites(session, user, team_id)
    st.dataframe([{"Site": row.site.name, "Kind": SiteKind.label_of(row.site.kind), "Active": yes_no[row.site.active],
                   "Records naming it": row.records} for row in sites], hide_index=True)
    round_ = form_round("add_site")
    with st.form(f"add_site_{round_}"):
        st.markdown("**Add a site**")
        messages = FieldMessages()
        name = st.text_input("Site name", help="Up to 100 characters.", key=f"add_site_name_{round_}")
        messages.under("name")
        kind = st.selectbox("Kind of site", SiteKind.choices(), format_func=SiteKind.label_of, index=None,
                            placeholder="Choose the kind of site", key=f"add_site_kind_{round_}")
        messages.under("kind")
        if st.form_submit_button("Add site", type="primary", key=f"add_site_submit_{round_}"):
            attempt(engine, user, creating(admin.add_site, "add_site"), team_id, name, kind, messages=messages,
                    form="add_site", done="Site added.")
    sites_by_id = {row.site.id: row.site for row in sites}
    if not sites_by_id:
        return
    site = sites_by_id[choose("Site to change", {key: site.name for key, site in sites_by_id.items()},
                              key=f"site_choice_{team_id}")]
    version = shown_version("site", site.id, site.version)
    round_ = form_round(f"site_{site.id}")
    with st.form(f"change_site_{site.id}_{round_}"):
        messages = FieldMessages()
        new_name = st.text_input("New name", value=site.name, help="Up to 100 characters.",
                                 key=f"site_name_{site.id}_{round_}")
        messages.under("name")
        new_kind = st.selectbox("Kind", SiteKind.choices(), index=SiteKind.choices().index(site.kind),
                                format_func=SiteKind.label_of, key=f"site_kind_{site.id}_{round_}")
        messages.under("kind")
        save, toggle, delete = st.columns(3)
        common = {"form": f"site_{site.id}", "versions": [("site", site.id)]}
        if save.form_submit_button("Save site"):
            attempt(engine, user, admin.change_site, site.id, version, new_name, new_kind, messages=messages,
                    done="Site saved.", **common)
        if toggle.form_submit_button("Deactivate site" if site.active else "Reactivate site"):
            attempt(engine, user, admin.set_site_active, site.id, version, not site.active,
                    done="Site deactivated: it leaves the forms and stays on old records." if site.active
                    else "Site reactivated.", **common)
        if delete.form_submit_button("Delete site (only if no record names it)"):
            attempt(engine, user, admin.delete_site, site.id, version, done="Site deleted.", **common)


def codes_section() -> None:
    code_list = st.selectbox("Code list", CodeList.choices(), format_func=CodeList.label_of, key="code_list")
    with db.reading(engine) as session:
        items = admin.list_codes(session, user, code_list)
    st.dataframe([{"Position": position, "Label": item.label, "National code": item.national_code or "",
                   "Code": item.code, "Active": yes_no[item.active]} for position, item in enumerate(items, 1)],
                 hide_index=True)
    form = f"add_code_{code_list}"
    round_ = form_round(form)
    with st.form(f"{form}_{round_}"):
        st.markdown("**Add a code**")
        messages = FieldMessages()
        label = st.text_input("Label", help="Up to 100 characters.", key=f"add_code_label_{code_list}_{round_}")
        messages.under("label")
        national = st.text_input("National code (if it has one, e.g. E1)", max_chars=10,
                                 key=f"add_code_national_{code_list}_{round_}")
        messages.under("national_code")
        if st.form_submit_button("Add code", type="primary", key=f"add_code_submit_{code_list}_{round_}"):
            attempt(engine, user, creating(admin.add_code, form), code_list, label, national, messages=messages,
                    form=form, done="Code added at the end of the list.")
    items_by_id = {item.id: item for item in items}
    item = items_by_id[choose("Code to change", {item.id: item.label for item in items},
                              key=f"code_choice_{code_list}")]
    version = shown_version("code", item.id, item.version)
    round_ = form_round(f"code_{item.id}")
    with st.form(f"change_code_{item.id}_{round_}"):
        messages = FieldMessages()
        new_label = st.text_input("New label", value=item.label, help="Up to 100 characters.",
                                  key=f"code_label_{item.id}_{round_}")
        messages.under("label")
        national = st.text_input("National code (the national return reports this)", value=item.national_code or "",
                                 max_chars=10, key=f"code_national_{item.id}_{round_}",
                                 help="Mental Health Services Data Set code, e.g. E1 for police; closure reasons "
                                      "01 to 09. Changing it changes past months' returns too.")
        messages.under("national_code")
        common = {"form": f"code_{item.id}", "versions": [("code", item.id)]}
        save, national_save, up, down, toggle = st.columns(5)
        if save.form_submit_button("Save label"):
            attempt(engine, user, admin.rename_code, item.id, version, new_label, messages=messages,
                    done="Label saved.", **common)
        if national_save.form_submit_button("Save national code"):
            attempt(engine, user, admin.set_national_code, item.id, version, national, messages=messages,
                    done="National code saved.", **common)
        if up.form_submit_button("Move up"):
            attempt(engine, user, admin.move_code, item.id, version, -1, done="Moved up.", **common)
        if down.form_submit_button("Move down"):
            attempt(engine, user, admin.move_code, item.id, version, 1, done="Moved down.", **common)
        if toggle.form_submit_button("Withdraw code" if item.active else "Reactivate code"):
            attempt(engine, user, admin.set_code_active, item.id, version, not item.active,
                    done="Withdrawn from new records; old records keep it." if item.active else "Reactivated.",
                    **common)


def settings_section() -> None:
    with db.reading(engine) as session:
        setting_rows = admin.list_settings(session, user)
    versions = {row.key: shown_version("setting", row.key, row.version) for row in setting_rows}
    round_ = form_round("settings")
    with st.form(f"settings_{round_}"):
        messages = FieldMessages()
        values = {}
        for row in setting_rows:
            values[row.key] = st.number_input(f"{row.label} ({row.unit})", value=row.value, step=1,
                                              key=f"setting_{row.key}_{round_}",
                                              help=f"Default {row.default:,}; from {row.minimum:,} to {row.maximum:,}.")
            if row.why:
                st.caption(row.why)
            messages.under(row.key)
        if st.form_submit_button("Save settings", type="primary"):
            attempt(engine, user, admin.change_settings, values, versions, messages=messages, form="settings",
                    versions=[("setting", key) for key in versions], done="Settings saved.")


def teams_section() -> None:
    st.dataframe([{"Team": row.team.name, "Staff": row.users, "Sites": row.sites} for row in teams], hide_index=True)
    round_ = form_round("add_team")
    with st.form(f"add_team_{round_}"):
        messages = FieldMessages()
        team_name = st.text_input("New team name", help="Up to 100 characters.", key=f"add_team_name_{round_}")
        messages.under("name")
        if st.form_submit_button("Add team", key=f"add_team_submit_{round_}"):
            attempt(engine, user, creating(admin.add_team, "add_team"), team_name, messages=messages,
                    form="add_team", done="Team added.")
    team = next(row.team for row in teams if row.team.id == choose("Team to rename", team_names, key="rename_team"))
    version = shown_version("team", team.id, team.version)
    with st.form(f"rename_team_{team.id}_{form_round(f'team_{team.id}')}"):
        messages = FieldMessages()
        renamed = st.text_input("Team's new name", value=team.name, help="Up to 100 characters.")
        messages.under("name")
        if st.form_submit_button("Rename team"):
            attempt(engine, user, admin.rename_team, team.id, version, renamed, messages=messages,
                    form=f"team_{team.id}", versions=[("team", team.id)], done="Team renamed.")
    with_teams = {person.id: f"{person.full_name} — {team_names[person.team_id]}" for person in staff}
    member = people[choose("Member of staff to move", with_teams, key="move_person")]
    version = shown_version("member", member.id, member.version)
    with st.form(f"move_{member.id}_{form_round(f'move_{member.id}')}"):
        messages = FieldMessages()
        to_team = st.selectbox("Move to team", list(team_names), format_func=team_names.get,
                               index=list(team_names).index(member.team_id))
        messages.under("team_id")
        if st.form_submit_button("Move to this team"):
            attempt(engine, user, admin.move_user, member.id, version, to_team, messages=messages,
                    form=f"move_{member.id}", versions=[("member", member.id)],
                    done="Moved; they will be asked to sign in again.")


with db.reading(engine) as session:
    teams = admin.list_teams(session, user)
    staff = admin.active_staff(session, user)
team_names = {row.team.id: row.team.name for row in teams}
people = {person.id: person for person in staff}
sections = {"Sites": sites_section, "Code lists": codes_section, "Settings": settings_section, "Teams": teams_section}
for tab, draw in zip(st.tabs(list(sections), key="tab", bind="query-params"), sections.values(), strict=True):
    if tab.open:
        with tab:
            draw()
