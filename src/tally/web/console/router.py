"""The operator console's routes: staff-only by default, sign-in apart."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from tally.web.console import actions, home, member_page, sign_in
from tally.web.console.auth import current_staff

#: Every route here requires a signed-in staff member (and a CSRF token on every POST).
staff_only = APIRouter(include_in_schema=False, dependencies=[Depends(current_staff)])
for module in (home, member_page, actions):
    staff_only.include_router(module.router, prefix="/console")

public = sign_in.public
