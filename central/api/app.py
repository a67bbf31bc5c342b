"""The FastAPI application over a running ``Central`` (which the CLI owns, not the HTTP lifespan).

Read access is decided here, once, for every route: the data routers (``/api/v1/...`` and
``/metrics``) are included with the ``reader`` dependency, so a new route cannot forget it; only
the routes in ``PUBLIC`` (liveness, the pages' static files, the API docs) are open. Writes need a
write key on top (``Writer`` in each write route). ``tests/central/test_read_access.py`` checks
every route of the table against this rule.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from central.api.deps import reader
from central.api.routes import (
    alerts,
    audit,
    gateways,
    health,
    imports,
    machineday,
    machines,
    metrics,
    oee,
    orders,
    pages,
    qr,
    records,
    reports,
    site,
    stream,
    summaries,
)
from central.api.sitescope import PREFIX, SiteScope
from central.runtime import Central
from plantpulse import __version__

DOCS_STATIC = "/static-offline-docs"
PUBLIC = frozenset({"/", "/static/{name}", "/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
                    DOCS_STATIC, "/static/vendor/{name}", "/machines/{machine_id}", *pages.PAGES})
"""Routes that carry no plant data: everything else needs a read key (unless ``api.open_reads``)."""


def create_app(central: Central) -> FastAPI:
    # Swagger UI and ReDoc from the fastapi-offline package, not a CDN: a plant LAN has no internet
    app = FastAPIOffline(
        title="plantpulse central",
        version=__version__,
        description=("Live machine status, history, downtime, gateways and work orders "
                     "(docs/central.md, docs/progress.md).\n\n"
                     "A central serves one site (`GET /api/v1/site`). Every `/api/v1/<path>` is also reachable "
                     f"site-qualified as `{PREFIX}{{site}}/<path>` on the central serving that site, with the "
                     f"same answer (e.g. `{PREFIX}suzhou-1/orders`, the live stream too): a group's reverse proxy "
                     "routes each site's prefix to that plant's central, and ids kept elsewhere always carry "
                     "their site. Another site's prefix answers 404 (docs/scaling.md, \"One site per central\")."),
        static_url=DOCS_STATIC,
    )
    app.state.central = central
    app.add_middleware(SiteScope, site=lambda: central.cfg.site)  # /api/v1/sites/{site}/... (sitescope.py)
    for module in (machines, machineday, qr, site, gateways, records, alerts, imports, orders, reports, oee, summaries,
                   audit, stream, metrics):
        app.include_router(module.router, dependencies=[Depends(reader)])
    for module in (health, pages):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)

    return app
