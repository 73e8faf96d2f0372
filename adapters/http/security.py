"""Who may call what: bearer tokens, roles, and what each role may see.

Every route but ``GET /api/health`` (and /docs, /openapi.json, and /metrics when made
public) declares the roles it admits with :func:`require`; admin is always admitted. No token
→ 401, a token whose role is not admitted → 403. The admitted roles also appear in the
OpenAPI document as ``x-roles`` on each operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.http.problems import ProblemException
from adapters.http.tokens import Role, TokenInfo

bearer = HTTPBearer(auto_error=False, description="A token made by `bss tokens create`.")

PERSONAL_FIELDS = ("name", "email", "phone", "address", "licence")


@dataclass(frozen=True)
class Principal:
    """The caller: their token's id, name and role."""

    token_id: str
    name: str
    role: Role

    @property
    def sees_personal(self) -> bool:
        """Analysts see read models without personal fields."""
        return self.role is not Role.analyst

    @property
    def sees_rfid(self) -> bool:
        """Full RFID codes are for admins; everyone else sees them masked."""
        return self.role is Role.admin


def mask_rfid(code: str | None, principal: Principal) -> str | None:
    """``A1B2C3D4`` → ``****C3D4`` for everyone but admins."""
    if code is None or principal.sees_rfid:
        return code
    visible = code[-4:] if len(code) > 6 else ""
    return "*" * max(4, len(code) - len(visible)) + visible


def personal(value: Any, principal: Principal) -> Any:
    """A personal field as this caller may see it (None for analysts)."""
    return value if principal.sees_personal else None


def _unauthorized(detail: str) -> ProblemException:
    problem = ProblemException(401, "unauthorized", detail)
    problem.headers = {"WWW-Authenticate": 'Bearer realm="bss"'}
    return problem


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller of a request (401 without a valid token). May read the token table."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required (bss tokens create)")
    tokens = request.app.state.api.tokens
    info: TokenInfo | None = tokens.verify(credentials.credentials)
    if info is None:
        raise _unauthorized("the token is unknown or revoked")
    return Principal(info.token_id, info.name, info.role)


async def authenticate_async(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """:func:`authenticate` off the event loop when the token table must be read."""
    tokens = request.app.state.api.tokens
    if credentials is None or tokens.is_cached(credentials.credentials):
        return authenticate(request, credentials)
    return await anyio.to_thread.run_sync(authenticate, request, credentials)


class RoleGuard:
    """A dependency admitting admin plus ``roles``; returns the Principal."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = (Role.admin, *(r for r in roles if r is not Role.admin))

    async def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),
    ) -> Principal:
        principal = await authenticate_async(request, credentials)
        if principal.role not in self.roles:
            raise ProblemException(
                403,
                "forbidden",
                f"role {principal.role.value} may not do this "
                f"(allowed: {', '.join(r.value for r in self.roles)})",
            )
        return principal


def require(*roles: Role) -> Callable[..., Any]:
    """The guard for a route admitting admin and ``roles``."""
    return RoleGuard(roles)


ADMIN: tuple[Role, ...] = ()
OPERATOR = (Role.operator,)
READERS = (Role.operator, Role.auditor, Role.analyst)
AUDITORS = (Role.auditor,)
ANY_ROLE = (Role.operator, Role.auditor, Role.analyst)
