"""The FastAPI application; its lifespan owns central's background work (ingest, confirmations)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from central.api.routes import alerts, gateways, machines, pages, records, stream, system
from central.api.views import attach_stream
from central.runtime import Central
from plantpulse import __version__


def create_app(central: Central) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await central.start()
        attach_stream(central)
        try:
            yield
        finally:
            await central.stop()

    app = FastAPI(
        title="plantpulse central",
        version=__version__,
        description="Live machine status, history, downtime and gateways (docs/central.md).",
        lifespan=lifespan,
    )
    app.state.central = central
    for module in (machines, gateways, records, alerts, stream, system, pages):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)

    return app
