"""The hub's web application: FastAPI with the routers the links contribute.

Links add routers through the ``carehub.routers`` entry-point group, so this
module imports none of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import entry_points

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hub import __version__
from hub.errors import HubError
from hub.settings import Settings, get_settings
from hub.store.db import Store


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the application on ``store`` (or the configured one)."""
    settings = settings or get_settings()
    own_store = store is None
    the_store = store or Store(settings.database_url, echo=settings.sql_echo)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own_store:
            the_store.dispose()

    app = FastAPI(title="Care Hub", version=__version__, lifespan=lifespan,
                  description="One shared care record from every system a council runs.")
    app.state.store = the_store
    app.state.settings = settings

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.http_status,
            media_type="application/problem+json",
            content={"type": f"https://carehub.example/errors/{exc.code}", "title": type(exc).__name__,
                     "status": exc.http_status, "detail": exc.message, "code": exc.code},
        )

    @app.get("/health", tags=["ops"], summary="Liveness and store reachability")
    def health() -> dict[str, str]:
        with the_store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__, "store": the_store.engine.dialect.name}

    for ep in entry_points(group="carehub.routers"):
        app.include_router(ep.load())
    return app
