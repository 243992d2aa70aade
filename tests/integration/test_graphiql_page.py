"""The GraphiQL page and its assets, served by the API itself (app/graphiql.py): every URL
the page loads is the server's own, versioned, and cached for good; without the assets the
page says how to install them. (tests/e2e/test_graphiql_browser.py runs it in a browser.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from app.graphiql import IMMUTABLE, GraphiQL
from app.server import create_app
from app.settings import Settings


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # The embedded stores (SQLite in tmp_path, documents in memory): no service needed.
    app = create_app(Settings(orders_data_dir=tmp_path), embedded=True)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http,
    ):
        yield http


def page_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


async def test_the_page_loads_only_versioned_assets_of_the_server(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "<title>Orders GraphiQL</title>" in page.text
    version = GraphiQL().version()
    assert version is not None, "assets not built: app/graphiql_assets/build"
    urls = [url for url in page_urls(page.text) if not url.startswith("data:")]
    assert len(urls) == 7  # React, ReactDOM, GraphiQL (js, css), explorer (js, css), graphql-ws
    for url in urls:
        assert url.startswith(f"/graphiql/{version}/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == IMMUTABLE
        assert len(asset.content) > 1000, url


async def test_an_unknown_asset_is_a_404_that_is_not_cached(client: httpx.AsyncClient) -> None:
    version = GraphiQL().version()
    missing = await client.get(f"/graphiql/{version}/graphiql/nope.js")
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "no-store"
    old_version = await client.get("/graphiql/0000000000000000/graphiql/graphiql.min.js")
    assert old_version.status_code == 404


async def test_without_its_assets_the_page_says_how_to_install_them(tmp_path: Path) -> None:
    graphiql = GraphiQL(assets_dir=tmp_path / "dist")
    page_route = Route("/", lambda request: graphiql.response())
    app = Starlette(routes=[page_route, graphiql.assets_route()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http:
        page = await http.get("/")
    assert page.status_code == 503
    assert "make install" in page.text
    assert str(tmp_path / "dist") in page.text


def test_default_headers_reach_the_page_escaped_for_a_script_element() -> None:
    # The hook auth will use: a pre-filled headers editor.
    page = GraphiQL(default_headers={"Authorization": "Bearer </script>"}).page()
    assert '"headers":{"Authorization":"Bearer <\\/script>"}' in page
    assert page.count("</script>") == page.count("<script")
