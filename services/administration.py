"""Service administration: teams, sites, code lists, settings and who may export.

Administrators only (Permission.MANAGE_SERVICE), checked on every call. Every change is audited
in its own transaction and made against the version the administrator saw (optimistic locking):
a save over someone else's newer change is refused with a Conflict naming who and when.

Nothing that records use is ever deleted: a site or a code is deactivated, which takes it out of
the forms for new records while old records keep showing it.

Adding a team, a site or a code takes the form's submission token (services/submissions.py): a
double click or a rerun sends it again and gets the record the first press added, with nothing
written twice.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, func, select

from models import CodeItem, Request, Screening, Setting, Site, Team, User
from models.codes import NATIONAL_CODES, OPEN_REQUEST_STATUSES, CodeList, ScreeningStatus, SiteKind
from models.organisation import NAME_LIMIT
from models.validators import FieldError, person_name
from services import audit, db, locking, settings, submissions
from services.errors import InputErrors, NotFound
from services.permissions import Permission, require

CODE_LIMIT = 40
NATIONAL_CODE = re.compile(r"[A-Z0-9]{1,10}")
# Lists whose codes drive the app's behaviour: their labels, order and use may change, but a new
# code would mean nothing to the code that reads them.
FIXED_CODE_LISTS = {CodeList.REQUEST_TYPE}
# Lists whose every code must carry its national (Mental Health Services Data Set) code.
NATIONAL_CODE_LISTS = {CodeList.SOURCE_OF_REFERRAL}


def _one_line(name: str, value: str | None, words: str, limit: int = NAME_LIMIT) -> str:
    try:
        return person_name(value, words, limit)
    except FieldError as error:
        raise InputErrors({name: error.message}) from None


def _number_of(count: int, one: str, many: str) -> str:
    """'1 open request', '2 open requests': the count with the words that agree with it."""
    return f"{count:,} {one if count == 1 else many}"


def _get(session: Session, model, row_id: int, what: str):
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"No such {what}; it may have been removed. Reload the page.")
    return row


# --- Teams ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamRow:
    team: Team
    users: int
    sites: int


def list_teams(session: Session, user: User) -> list[TeamRow]:
    require(user, Permission.MANAGE_SERVICE)
    users = dict(session.exec(select(User.team_id, func.count()).group_by(User.team_id)).all())
    sites = dict(session.exec(select(Site.team_id, func.count()).group_by(Site.team_id)).all())
    teams = session.exec(select(Team).order_by(Team.name)).all()
    return [TeamRow(team, users.get(team.id, 0), sites.get(team.id, 0)) for team in teams]


def _team_name(session: Session, name: str | None, team_id: int | None = None) -> str:
    name = _one_line("name", name, "team_name")
    clash = select(Team.id).where(func.lower(Team.name) == name.lower())
    if team_id is not None:
        clash = clash.where(Team.id != team_id)
    if session.exec(clash).first() is not None:
        raise InputErrors({"name": f"There is already a team called {name}; choose another name."})
    return name


def add_team(session: Session, user: User, name: str | None, *, submission: str | None = None) -> Team:
    """Add a team; a second call with the same `submission` token returns the first one's team."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    if (earlier := submissions.claim(session, user, submission, "team")) is not None:
        return _get(session, Team, earlier, "team")
    team = Team(name=_team_name(session, name), updated_by_id=user.id)
    session.add(team)
    session.flush()
    submissions.fulfil(session, submission, team.id)
    audit.record(session, user, "add_team", entity="team", entity_id=team.id)
    return team


def rename_team(session: Session, user: User, team_id: int, expected_version: int, name: str | None) -> Team:
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    team = _get(session, Team, team_id, "team")
    locking.check_version(session, team, expected_version)
    new_name = _team_name(session, name, team_id)
    if new_name == team.name:
        return team
    previous, team.name = team.name, new_name
    locking.touch(team, user)
    session.add(team)
    locking.flush(session)
    audit.record(session, user, "rename_team", entity="team", entity_id=team.id, detail=f"{previous} → {new_name}")
    return team


def move_user(session: Session, user: User, user_id: int, expected_version: int, team_id: int) -> User:
    """Move a member of staff to another team (each user belongs to exactly one team).

    Refused while they have open requests or draft screenings in their current team, which would
    otherwise sit with someone who can no longer see them. Their sessions end, so that their next
    page shows the new team's records.
    """
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    member = _get(session, User, user_id, "user")
    team = session.get(Team, team_id)
    if team is None:
        raise InputErrors({"team_id": "Choose a team from the list."})
    locking.check_version(session, member, expected_version)
    if member.team_id == team_id:
        return member
    open_requests = session.exec(
        select(func.count()).select_from(Request).where(
            Request.allocated_to_id == member.id, Request.status.in_(OPEN_REQUEST_STATUSES)
        )
    ).one()
    drafts = session.exec(
        select(func.count()).select_from(Screening).where(
            Screening.practitioner_id == member.id, Screening.status == ScreeningStatus.DRAFT.value
        )
    ).one()
    if open_requests or drafts:
        raise InputErrors({"team_id": (
            f"{member.full_name} has {_number_of(open_requests, 'open request', 'open requests')} and "
            f"{_number_of(drafts, 'draft screening', 'draft screenings')} in their current team; "
            "reallocate or finish them first."
        )})
    previous = member.team_id
    member.team_id = team_id
    member.session_epoch += 1
    locking.touch(member, user)
    session.add(member)
    locking.flush(session)
    audit.record(session, user, "move_user", entity="user", entity_id=member.id,
                 detail=f"team {previous} → {team_id}")
    return member


# --- Sites ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteRow:
    site: Site
    records: int  # requests and screenings that name it


def _uses_of_sites(session: Session, site_ids: list[int]) -> dict[int, int]:
    uses: dict[int, int] = dict.fromkeys(site_ids, 0)
    if not site_ids:
        return uses
    for model in (Request, Screening):
        counted = select(model.site_id, func.count()).where(model.site_id.in_(site_ids)).group_by(model.site_id)
        for site_id, count in session.exec(counted).all():
            uses[site_id] += count
    return uses


def list_sites(session: Session, user: User, team_id: int) -> list[SiteRow]:
    """A team's sites, active and not, with how many records use each."""
    require(user, Permission.MANAGE_SERVICE)
    sites = list(session.exec(select(Site).where(Site.team_id == team_id).order_by(Site.name)).all())
    uses = _uses_of_sites(session, [site.id for site in sites])
    return [SiteRow(site, uses[site.id]) for site in sites]


def _site_values(session: Session, team_id: int, name: str | None, kind: str | None,
                 site_id: int | None = None) -> tuple[str, str]:
    errors: dict[str, str] = {}
    try:
        name = person_name(name, "site_name", NAME_LIMIT)
    except FieldError as error:
        errors["name"] = error.message
    else:
        clash = select(Site.name).where(Site.team_id == team_id, func.lower(Site.name) == name.lower())
        if site_id is not None:
            clash = clash.where(Site.id != site_id)
        existing = session.exec(clash).first()
        if existing is not None:
            errors["name"] = (
                f"This team already has a site called {existing}; choose another name, or reactivate "
                "that site if it was deactivated."
            )
    if kind not in SiteKind.choices():
        errors["kind"] = "Choose the kind of site."
    if errors:
        raise InputErrors(errors)
    return name, kind


def add_site(session: Session, user: User, team_id: int, name: str | None, kind: str | None, *,
             submission: str | None = None) -> Site:
    """Add a site to a team; a second call with the same `submission` token returns the first one's site."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    if (earlier := submissions.claim(session, user, submission, "site")) is not None:
        return _get(session, Site, earlier, "site")
    if session.get(Team, team_id) is None:
        raise InputErrors({"team_id": "Choose a team from the list."})
    name, kind = _site_values(session, team_id, name, kind)
    site = Site(team_id=team_id, name=name, kind=kind, updated_by_id=user.id)
    session.add(site)
    session.flush()
    submissions.fulfil(session, submission, site.id)
    audit.record(session, user, "add_site", entity="site", entity_id=site.id, detail=f"team {team_id}, {kind}")
    return site


def change_site(session: Session, user: User, site_id: int, expected_version: int,
                name: str | None, kind: str | None) -> Site:
    """Rename a site or change its kind. Old records show the new name (they refer to the site)."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    site = _get(session, Site, site_id, "site")
    locking.check_version(session, site, expected_version)
    name, kind = _site_values(session, site.team_id, name, kind, site_id)
    changes = []
    if name != site.name:
        changes.append(f"name {site.name} → {name}")
    if kind != site.kind:
        changes.append(f"kind {site.kind} → {kind}")
    if not changes:
        return site
    site.name, site.kind = name, kind
    locking.touch(site, user)
    session.add(site)
    locking.flush(session)
    audit.record(session, user, "change_site", entity="site", entity_id=site.id, detail="; ".join(changes))
    return site


def set_site_active(session: Session, user: User, site_id: int, expected_version: int, active: bool) -> Site:
    """Deactivate a site (it leaves the forms; old records keep it) or bring it back."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    site = _get(session, Site, site_id, "site")
    locking.check_version(session, site, expected_version)
    if site.active == active:
        return site
    site.active = active
    locking.touch(site, user)
    session.add(site)
    locking.flush(session)
    audit.record(session, user, "reactivate_site" if active else "deactivate_site", entity="site", entity_id=site.id)
    return site


def delete_site(session: Session, user: User, site_id: int, expected_version: int) -> None:
    """Delete a site added by mistake. A site any record names is never deleted: deactivate it."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    site = _get(session, Site, site_id, "site")
    locking.check_version(session, site, expected_version)
    uses = _uses_of_sites(session, [site.id])[site.id]
    if uses:
        raise InputErrors({"site_id": (
            f"{site.name} is named on {_number_of(uses, 'record', 'records')}, so it cannot be deleted. "
            "Deactivate it instead: it leaves the forms and stays on those records."
        )})
    session.delete(site)
    locking.flush(session)
    audit.record(session, user, "delete_site", entity="site", entity_id=site_id)


# --- Code lists ----------------------------------------------------------------------------


def list_codes(session: Session, user: User, code_list: CodeList | str) -> list[CodeItem]:
    """Every code of a list, withdrawn ones too, in the order the forms show them."""
    require(user, Permission.MANAGE_SERVICE)
    code_list = CodeList(code_list)
    query = (
        select(CodeItem)
        .where(CodeItem.list_name == code_list.value)
        .order_by(CodeItem.sort_order, CodeItem.label, CodeItem.id)
    )
    return list(session.exec(query).all())


def _code_label(session: Session, code_list: CodeList, label: str | None, item_id: int | None = None) -> str:
    label = _one_line("label", label, "label")
    clash = select(CodeItem.label).where(
        CodeItem.list_name == code_list.value, func.lower(CodeItem.label) == label.lower()
    )
    if item_id is not None:
        clash = clash.where(CodeItem.id != item_id)
    existing = session.exec(clash).first()
    if existing is not None:
        raise InputErrors({"label": (
            f"The list of {code_list.label.lower()} already has {existing}; choose another label, or "
            "reactivate that one if it was withdrawn."
        )})
    return label


def _national_code(code_list: CodeList, national_code: str | None) -> str | None:
    value = (national_code or "").strip().upper()
    if not value:
        if code_list in NATIONAL_CODE_LISTS:
            raise InputErrors({"national_code": (
                f"{code_list.label} need their national code (Mental Health Services Data Set), "
                "such as M6 for any other service or agency."
            )})
        return None
    if not NATIONAL_CODE.fullmatch(value):
        raise InputErrors({"national_code": "A national code is 1 to 10 letters or digits, such as E1 or M6."})
    allowed = NATIONAL_CODES.get(code_list)
    if allowed is not None and value not in allowed:
        raise InputErrors({"national_code": (
            f"{value} is not a national code for {code_list.label.lower()}: use one of {', '.join(allowed)}."
        )})
    return value


def _new_code(session: Session, code_list: CodeList, label: str) -> str:
    """A stable code made from the first label ("Veterans' hub" → "veterans_hub")."""
    stem = "_".join(re.findall(r"[a-z0-9]+", label.casefold().encode("ascii", "ignore").decode()))[:CODE_LIMIT - 4]
    stem = stem or "code"
    taken = set(session.exec(select(CodeItem.code).where(CodeItem.list_name == code_list.value)).all())
    code, number = stem, 2
    while code in taken:
        code, number = f"{stem}_{number}", number + 1
    return code


def add_code(session: Session, user: User, code_list: CodeList | str, label: str | None,
             national_code: str | None = None, *, submission: str | None = None) -> CodeItem:
    """Add a code to the end of a list. Its code is made once from the label and never changes.

    A second call with the same `submission` token returns the code the first one added.
    """
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    code_list = CodeList(code_list)
    if (earlier := submissions.claim(session, user, submission, "code_item")) is not None:
        return _get(session, CodeItem, earlier, "code")
    if code_list in FIXED_CODE_LISTS:
        raise InputErrors({"label": (
            f"{code_list.label} drive how requests are handled, so new ones cannot be added here; "
            "you can rename, reorder or withdraw the existing ones."
        )})
    errors: dict[str, str] = {}
    values: dict[str, str | None] = {}
    for name, check in (("label", lambda: _code_label(session, code_list, label)),
                        ("national_code", lambda: _national_code(code_list, national_code))):
        try:
            values[name] = check()
        except InputErrors as refused:
            errors.update(refused.errors)
    if errors:
        raise InputErrors(errors)
    last = session.exec(select(func.max(CodeItem.sort_order)).where(CodeItem.list_name == code_list.value)).one()
    item = CodeItem(list_name=code_list.value, code=_new_code(session, code_list, values["label"]),
                    label=values["label"], national_code=values["national_code"],
                    sort_order=(last if last is not None else -1) + 1, updated_by_id=user.id)
    session.add(item)
    session.flush()
    submissions.fulfil(session, submission, item.id)
    audit.record(session, user, "add_code", entity="code_item", entity_id=item.id,
                 detail=f"{code_list.value}: {item.code}")
    return item


def rename_code(session: Session, user: User, item_id: int, expected_version: int, label: str | None) -> CodeItem:
    """Change the local label; the code, and any national code beside it, stay as they are."""
    return _change_code(session, user, item_id, expected_version, "label", "rename_code",
                        lambda item: _code_label(session, CodeList(item.list_name), label, item.id))


def set_national_code(session: Session, user: User, item_id: int, expected_version: int,
                      national_code: str | None) -> CodeItem:
    """Give a code its national code, change it or take it away (where the list allows none).

    The national return reports every record with this code under the new national code, past
    months included: the audit row keeps the old and the new.
    """
    return _change_code(session, user, item_id, expected_version, "national_code", "set_national_code",
                        lambda item: _national_code(CodeList(item.list_name), national_code))


def _change_code(session: Session, user: User, item_id: int, expected_version: int, field: str, action: str,
                 checked: Callable[[CodeItem], str | None]) -> CodeItem:
    """One field of a code, checked against its list; audited with the old and new values when it changes."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    item = _get(session, CodeItem, item_id, "code")
    locking.check_version(session, item, expected_version)
    new_value = checked(item)
    previous = getattr(item, field)
    if new_value == previous:
        return item
    setattr(item, field, new_value)
    locking.touch(item, user)
    session.add(item)
    locking.flush(session)
    audit.record(session, user, action, entity="code_item", entity_id=item.id,
                 detail=f"{item.list_name}.{item.code}: {previous or 'none'} → {new_value or 'none'}")
    return item


def move_code(session: Session, user: User, item_id: int, expected_version: int, steps: int) -> CodeItem:
    """Move a code up (negative steps) or down the list the forms show; the list is renumbered."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    item = _get(session, CodeItem, item_id, "code")
    locking.check_version(session, item, expected_version)
    ordered = list_codes(session, user, item.list_name)
    position = next(index for index, other in enumerate(ordered) if other.id == item.id)
    target = min(max(position + steps, 0), len(ordered) - 1)
    if target == position:
        return item
    ordered.insert(target, ordered.pop(position))
    for order, other in enumerate(ordered):
        if other.sort_order != order:
            other.sort_order = order
            locking.touch(other, user)
            session.add(other)
    locking.flush(session)
    audit.record(session, user, "reorder_code", entity="code_item", entity_id=item.id,
                 detail=f"{item.list_name}.{item.code}: position {position + 1} → {target + 1}")
    return item


def set_code_active(session: Session, user: User, item_id: int, expected_version: int, active: bool) -> CodeItem:
    """Withdraw a code from new records (old records keep it) or bring it back."""
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    item = _get(session, CodeItem, item_id, "code")
    locking.check_version(session, item, expected_version)
    if item.active == active:
        return item
    item.active = active
    locking.touch(item, user)
    session.add(item)
    locking.flush(session)
    audit.record(session, user, "reactivate_code" if active else "deactivate_code", entity="code_item",
                 entity_id=item.id, detail=f"{item.list_name}.{item.code}")
    return item


# --- Settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingRow:
    key: str
    label: str
    value: int
    default: int
    minimum: int
    maximum: int
    unit: str
    version: int | None  # None: never changed, the default applies
    why: str = ""  # the source of the default and the reason for the range, shown beside the setting


def list_settings(session: Session, user: User) -> list[SettingRow]:
    require(user, Permission.MANAGE_SERVICE)
    stored = {row.key: row for row in session.exec(select(Setting)).all()}
    rows = []
    for key, definition in settings.DEFINITIONS.items():
        row = stored.get(key)
        rows.append(SettingRow(
            key=key, label=definition.label, value=settings.get_int(session, key), default=definition.default,
            minimum=definition.minimum, maximum=definition.maximum, unit=definition.unit,
            version=row.version if row else None, why=definition.why,
        ))
    return rows


def _describe_range(definition: settings.SettingDefinition) -> str:
    if definition.unit == "minutes" and definition.maximum == settings.MINUTES_IN_A_YEAR:
        return f"from {definition.minimum} to {definition.maximum:,} minutes (a year)"
    return f"from {definition.minimum:,} to {definition.maximum:,} {definition.unit}"


def _setting_value(key: str, value) -> int:
    definition = settings.DEFINITIONS[key]
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        number = int(value.strip())
    if number is None:
        raise FieldError(key, f"{definition.label} must be a whole number {_describe_range(definition)}.")
    if not definition.minimum <= number <= definition.maximum:
        raise FieldError(key, (
            f"{definition.label} must be {_describe_range(definition)}; you entered {number:,}."
        ))
    return number


def change_settings(session: Session, user: User, values: dict[str, object],
                    versions: dict[str, int | None]) -> list[str]:
    """Save the settings whose value changed, all or none; return the keys changed.

    `versions` holds the version of each setting as shown (None if it was still the default).
    Every value is checked against its range in services.settings.DEFINITIONS; each change is
    audited with its old and new value.
    """
    db.require_writing(session)
    require(user, Permission.MANAGE_SERVICE)
    errors: dict[str, str] = {}
    checked: dict[str, int] = {}
    for key, value in values.items():
        if key not in settings.DEFINITIONS:
            errors[key] = "There is no such setting."
            continue
        try:
            checked[key] = _setting_value(key, value)
        except FieldError as error:
            errors[key] = error.message
    if errors:
        raise InputErrors(errors)
    rows = {row.key: row for row in session.exec(select(Setting).where(Setting.key.in_(list(checked)))).all()}
    for key in checked:
        if key in rows:  # a row created or changed since the page was drawn is a Conflict
            locking.check_version(session, rows[key], versions.get(key))
    changed = []
    for key, number in checked.items():
        row = rows.get(key)
        old = settings.get_int(session, key)
        if number == old:
            continue
        if row is None:
            row = Setting(key=key, value=str(number))
        else:
            row.value = str(number)
        locking.touch(row, user)
        session.add(row)
        locking.flush(session)
        audit.record(session, user, "change_setting", entity="setting", entity_id=row.id,
                     detail=f"{key}: {old} → {number}")
        changed.append(key)
    return changed


# --- Staff ---------------------------------------------------------------------------------


def active_staff(session: Session, user: User) -> list[User]:
    """Every active member of staff, by name (to move between teams). Who may export is set on the
    Users page (accounts.set_export_permission), which refuses an administrator's own account."""
    require(user, Permission.MANAGE_SERVICE)
    return list(session.exec(select(User).where(User.active).order_by(User.full_name)).all())

