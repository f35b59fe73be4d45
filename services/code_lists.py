"""Reading the editable code lists (vulnerabilities, onward services, sources, closure reasons…)."""

from sqlmodel import Session, select

from models import CodeItem
from models.codes import CodeList
from services.errors import InputErrors


def active_items(session: Session, code_list: CodeList) -> list[CodeItem]:
    """What a new record may use, in the team's chosen order."""
    query = (
        select(CodeItem)
        .where(CodeItem.list_name == code_list.value, CodeItem.active)
        .order_by(CodeItem.sort_order, CodeItem.label)
    )
    return list(session.exec(query).all())


def labels(session: Session, code_list: CodeList) -> dict[str, str]:
    """Every code's label, inactive ones included, so old records still read properly."""
    query = select(CodeItem.code, CodeItem.label).where(CodeItem.list_name == code_list.value)
    return dict(session.exec(query).all())


def check_active(session: Session, code_list: CodeList, codes: dict[str, str | list[str] | None]) -> None:
    """Refuse codes that are unknown or deactivated. `codes` maps a form field to its code(s)."""
    allowed = {item.code for item in active_items(session, code_list)}
    errors = {}
    for field, value in codes.items():
        chosen = value if isinstance(value, list) else [value]
        stale = [code for code in chosen if code is not None and code not in allowed]
        if stale:
            errors[field] = (
                f"{', '.join(stale)} is not an active choice in {code_list.label.lower()}; "
                "choose one from the list (it may have been withdrawn by an administrator)."
            )
    if errors:
        raise InputErrors(errors)
