"""The addresses of single sign-on that people copy: the callback URI an admin registers at the identity
provider, and the console's sign-in link that offers a tenant's provider. Both start from
OIDC_REDIRECT_BASE_URL (the API's public URL behind a proxy), or else the URL the request reached."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from ragapi.core.settings import Settings


def _base(request: Request, settings: Settings) -> str:
    return (settings.oidc_redirect_base_url or settings.public_url or str(request.base_url)).rstrip("/")


def redirect_uri(request: Request, settings: Settings, tenant_id: uuid.UUID) -> str:
    return f"{_base(request, settings)}/v1/auth/oidc/{tenant_id}/callback"


def console_sign_in(request: Request, settings: Settings, tenant_id: uuid.UUID) -> str:
    return f"{_base(request, settings)}/console/login?tenant={tenant_id}"
