"""Rendering a console page: the shared frame (``gateway.web.pages``) in the ``admin``
catalogue, and a viewer's page masked once more (``masking.text``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import auth, masking
from gateway.admin.context import AdminServices
from gateway.console.model import OperatorView, Role


def render(
    request: Request,
    svc: AdminServices,
    operator: OperatorView,
    template: str,
    context: dict[str, object],
    status: int = 200,
) -> Response:
    """A console page; a viewer's has every mainland mobile number masked, once more."""
    context = {"section": "", **context}
    response = svc.pages.render(request, template, context, status=status, domain=auth.DOMAIN)
    if not operator.may(Role.SUPPORT):
        body = masking.text(bytes(response.body).decode())
        response.body = body.encode()
        response.headers["content-length"] = str(len(response.body))
    return response
