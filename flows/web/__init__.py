"""``kizuna web``: the browser face of the warehouse for staff and admins, one ASGI app
(Starlette, served by uvicorn) with server-rendered pages, signed-cookie sessions, CSRF on
every form, and every row read through ``warehouse.access.scope``.
"""

__all__ = ["app", "auth", "customers", "oidc", "pages", "render", "secret"]
