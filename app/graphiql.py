"""GraphiQL served by the API itself, so it works without internet.

The page (app/graphiql.html) loads GraphiQL 3, React 18, the explorer plugin and graphql-ws
from `/graphiql/<version>/...`, files that `app/graphiql_assets/build` installs from the
npm lock file into app/graphiql_assets/dist. The version (a hash of the lock) is part of
every asset URL, so the assets are cached by browsers for a year and never go stale: a new
lock gives new URLs.

The page and its assets need no token. The page sends the headers editor's headers with
every HTTP request (its introspection too, which is for staff only where authentication is
on) and as the subscriptions' `connection_init` payload; `GraphiQL(default_headers=...)`
pre-fills that editor.
"""

from __future__ import annotations

import html
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("graphiql.html")
ASSETS_DIR = Path(__file__).with_name("graphiql_assets") / "dist"
ASSETS_PREFIX = "/graphiql"
# Versioned URLs: the content behind one URL never changes.
IMMUTABLE = "public, max-age=31536000, immutable"

DEFAULT_QUERY = """\
# Orders GraphiQL: run with Ctrl-Enter (or the play button).
# `make dev` seeds a demo catalog and customers (`orders seed`).
{
  products(first: 5) {
    edges { node { id name price { amount currency } stockAvailable } }
  }
  customers(first: 5) {
    edges { node { id name email } }
  }
}
"""


class GraphiQLAssetsMissing(RuntimeError):
    """The page's assets were not installed: GraphiQL cannot load without them."""


class ImmutableStaticFiles(StaticFiles):
    """Static files with a year-long, immutable Cache-Control (their URLs are versioned)."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = IMMUTABLE
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as error:
            if error.status_code != 404:
                raise
            # A 404 must not be cached for a year: the file may appear with a rebuild.
            return PlainTextResponse("Not Found", 404, headers={"Cache-Control": "no-store"})


@dataclass(frozen=True)
class GraphiQL:
    """The GraphiQL page for `endpoint` and the route serving its assets."""

    endpoint: str = "/graphql"
    assets_dir: Path = ASSETS_DIR
    default_headers: Mapping[str, str] = field(default_factory=dict)

    def version(self) -> str | None:
        try:
            return (self.assets_dir / "VERSION").read_text().strip() or None
        except FileNotFoundError:
            return None

    def missing_files(self) -> list[str]:
        """The files the page loads (and VERSION) that are not in the assets folder."""
        wanted = ["VERSION", *re.findall(r"\{\{assets\}\}/([^\"'\s]+)", PAGE.read_text())]
        return [name for name in wanted if not (self.assets_dir / name).is_file()]

    def assets_route(self) -> Mount:
        """`/graphiql/<version>/...`; mounted even before the assets exist (check_dir off),
        so a server started without them serves the page's clear error, not a crash."""
        version = self.version() or "missing"
        return Mount(
            f"{ASSETS_PREFIX}/{version}",
            app=ImmutableStaticFiles(directory=self.assets_dir, check_dir=False),
            name="graphiql-assets",
        )

    def page(self) -> str:
        version = self.version()
        if version is None:
            raise GraphiQLAssetsMissing(
                f"GraphiQL's assets are not installed in {self.assets_dir} (missing: "
                f"{', '.join(self.missing_files())}): in a clone, run `make install` (or "
                "app/graphiql_assets/build), then restart the server; a wheel or sdist of "
                "orders carries them (reinstall it)"
            )
        config = {
            "endpoint": self.endpoint,
            "headers": dict(self.default_headers),
            "defaultQuery": DEFAULT_QUERY,
        }
        # `</` inside the JSON would end the <script> element that carries it.
        config_json = orjson.dumps(config).decode().replace("</", "<\\/")
        return (
            PAGE.read_text()
            .replace("{{assets}}", f"{ASSETS_PREFIX}/{version}")
            .replace("{{config}}", config_json)
        )

    def response(self) -> Response:
        try:
            body = self.page()
        except GraphiQLAssetsMissing as error:
            log.error("%s", error)
            message = html.escape(str(error))
            return HTMLResponse(
                f"<!doctype html><title>GraphiQL unavailable</title><p>{message}</p>",
                status_code=503,
                headers={"Cache-Control": "no-store"},
            )
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})
