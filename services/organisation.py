"""Teams and sites as the forms need them."""

from sqlmodel import Session, select

from models import Site, Team, User
from services.permissions import Permission, has_permission, require


def list_teams(session: Session, user: User) -> list[Team]:
    """Administrators see every team; everyone else only their own."""
    require(user, Permission.VIEW_HOME)
    query = select(Team).order_by(Team.name)
    if not has_permission(user, Permission.MANAGE_USERS):
        query = query.where(Team.id == user.team_id)
    return list(session.exec(query).all())


def active_sites(session: Session, user: User) -> list[Site]:
    """Sites a new record may use: the user's team's active sites."""
    require(user, Permission.VIEW_HOME)
    query = select(Site).where(Site.team_id == user.team_id, Site.active).order_by(Site.name)
    return list(session.exec(query).all())
