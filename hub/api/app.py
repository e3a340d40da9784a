"""The hub's web application: FastAPI with the shared record, the FHIR facade, pages and link routers.

Links add routers through the ``carehub.routers`` entry-point group (API routes,
bearer token) and ``carehub.pages`` (server-rendered pages, the sign-in cookie),
so this module imports none of them. Every request outside a short list of public paths
(health, the demo JWKS, static files, the OpenAPI document) is audited by
:class:`hub.api.middleware.AuditMiddleware`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hub import __version__
from hub.access.policy import Policy
from hub.access.tokens import TokenVerifier, demo_issuer
from hub.api import (
    admin,
    auditing,
    deliveries,
    fhir,
    identity,
    identity_pages,
    ops,
    pages,
    persons,
    problems,
    transitions,
    transitions_pages,
)
from hub.api.access_log import install as install_path_only_access_log
from hub.api.deps import current_caller
from hub.api.hot import HotRoutes
from hub.api.middleware import AuditMiddleware
from hub.api.params import RefuseControlCharacters
from hub.api.reads import ReadThreads
from hub.audit import AuditTrail
from hub.registry import build_pipeline
from hub.runtime import SERVING, settle
from hub.settings import Settings, get_settings
from hub.store.db import Store

HERE = Path(__file__).resolve().parent


def serving_app() -> FastAPI:
    """The application as ``carehub serve`` runs it in each worker process: the configured store, and the
    heap made at start-up (modules, models, policy, routes) frozen out of the collector's way
    (:func:`hub.runtime.settle`): otherwise every full collection walks them all on a worker's only event
    loop, while every request on that worker waits (it set the council's day p95, bench/api_load.py).
    """
    app = create_app()
    settle(SERVING)
    return app


def create_app(settings: Settings | None = None, store: Store | None = None,
               clock: Callable[[], float] = time.time) -> FastAPI:
    """Build the application on ``store`` (or the configured one); ``clock`` (seconds since the epoch) is the time
    bearer tokens are issued (demo) and checked on."""
    settings = settings or get_settings()
    own_store = store is None
    the_store = store or Store(settings.database_url, echo=settings.sql_echo)

    trail = AuditTrail(the_store)
    reads = ReadThreads(the_store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        reads.close()
        trail.close()
        if own_store:
            the_store.dispose()

    app = FastAPI(title="Care Hub", version=__version__, lifespan=lifespan,
                  description="One shared care record from every system a council runs. Every call needs an "
                              "OAuth2 bearer token and is audited.")
    app.state.store = the_store
    app.state.reads = reads
    app.state.settings = settings
    app.state.policy = Policy.of(settings)
    app.state.demo_issuer = demo_issuer(settings, clock)  # ConfigError beside a real tenant
    install_path_only_access_log()  # whatever server runs the app, its access log writes paths without their queries
    app.state.verifier = TokenVerifier(settings.auth, app.state.demo_issuer, clock)
    app.state.pipeline = build_pipeline(settings, the_store)
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    if settings.api.hot_routes:
        app.add_middleware(HotRoutes)  # inside the audit: the busiest reads, straight to their routes
    app.add_middleware(RefuseControlCharacters)  # before any route reads the path or the query, audited
    app.add_middleware(AuditMiddleware, trail=trail)
    problems.install(app)
    problems.install_openapi(app)

    @app.get("/health", tags=["ops"], summary="Liveness and store reachability")
    def health() -> dict[str, str]:
        with the_store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__, "store": the_store.engine.dialect.name}

    @app.get("/.well-known/jwks.json", tags=["auth"], summary="Public keys of the local demo issuer")
    def jwks() -> dict[str, Any]:
        issuer = app.state.demo_issuer
        return issuer.jwks() if issuer is not None else {"keys": []}

    for module in (persons, admin, ops, deliveries, auditing, fhir, pages, identity, identity_pages, transitions,
                   transitions_pages):
        app.include_router(module.router)
    app.state.templates.env.filters.update(pages.TEAM_FILTERS)  # the pages name teams (team, team_name)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for ep in entry_points(group="carehub.routers"):  # every link's routes need a signed-in caller
        app.include_router(ep.load(), dependencies=[Depends(current_caller)])
    for ep in entry_points(group="carehub.pages"):  # a link's pages sign their user in by the page cookie
        app.include_router(ep.load())
    return app
