"""GraphiQL in a real browser, offline: headless Debian chromium (driven by playwright)
opens the page `orders dev` serves, runs a query and a subscription, and every request it
makes goes to the server itself (anything else is aborted and fails the test). On `orders
api` with authentication, it loads the schema with the staff token in its headers.

The screenshot is saved as a test artifact: tests/artifacts/graphiql.png (or
$ORDERS_TEST_ARTIFACTS/graphiql.png).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
from playwright.async_api import BrowserContext, Page, Request, Route, async_playwright

from tests.e2e.client import Api, accepted, add_item, add_product, create_order, register_customer
from tests.e2e.conftest import embedded_stack, postgres_stack
from tests.e2e.processes import ROOT, Stack

CHROMIUM = os.environ.get("ORDERS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("ORDERS_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
WAIT_MS = 20_000


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
async def dev_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """`orders dev` of its own (fresh data dir)."""
    logs = tmp_path_factory.mktemp("graphiql-browser")
    data_dir = logs / "data"
    data_dir.mkdir()
    async with embedded_stack(logs, data_dir) as stack:
        yield stack


SECRET = f"graphiql-secret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
async def secured_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """`orders api` with authentication on, so introspection is for staff only (the
    default); it serves the page and the schema, nothing is written."""
    logs = tmp_path_factory.mktemp("graphiql-secured")
    async with postgres_stack(logs, {"JWT_SECRET": SECRET}, api_only=True) as stack:
        yield stack


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserContext]:
    """Chromium with a fresh profile (user data dir)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    async with async_playwright() as playwright:
        # Debian's chromium: `playwright install` would download a browser of its own.
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            await context.close()


class OfflinePage:
    """A page that may reach only the server under test; it records what else it tried
    and every script error."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.blocked: list[str] = []
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def install(self) -> None:
        async def only_local(route: Route, request: Request) -> None:
            parts = urlsplit(request.url)
            if f"{parts.scheme}://{parts.netloc}" == self.origin or parts.scheme == "data":
                await route.continue_()
            else:
                self.blocked.append(request.url)
                await route.abort("internetdisconnected")

        await self.page.route("**/*", only_local)

    async def set_query(self, text: str, operation: str) -> None:
        """Replace the query editor's text as a user would (select all, then type), and
        wait until GraphiQL has parsed it: it reads the operation to run, and whether it
        is a subscription, from a parse it makes a moment after each edit."""
        await self.page.click(".graphiql-query-editor .CodeMirror")
        await self.page.keyboard.press("Control+A")
        await self.page.keyboard.insert_text(text)
        await self.page.wait_for_function(
            """operation => {
                const editor = document.querySelector('.graphiql-query-editor .CodeMirror');
                return editor.CodeMirror.operationName === operation;
            }""",
            arg=operation,
            timeout=WAIT_MS,
        )

    async def run(self) -> None:
        await self.page.click("button.graphiql-execute-button")

    async def response_containing(self, *needles: str) -> str:
        """The response pane's text once it contains every needle."""
        await self.page.wait_for_function(
            """needles => {
                const pane = document.querySelector('.graphiql-response .CodeMirror');
                const text = pane ? pane.CodeMirror.getValue() : '';
                return needles.every(needle => text.includes(needle));
            }""",
            arg=list(needles),
            timeout=WAIT_MS,
        )
        return await self.page.evaluate(
            "() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
        )


async def test_graphiql_runs_a_query_and_a_subscription_offline(
    dev_server: Stack, browser: BrowserContext, artifacts: Path, uid: str
) -> None:
    async with Api.connect(dev_server.graphql_url) as api:
        customer = await register_customer(api, uid)
        sku = f"sku-{uid}"
        await add_product(api, sku, f"Browser lamp {uid}", "12.50", stock=7)
        order_id = f"o-{uid}"
        await create_order(api, order_id, customer["customerId"])

        tab = await browser.new_page()
        try:
            page = OfflinePage(tab, dev_server.base_url)
            await page.install()
            response = await page.page.goto(
                dev_server.graphql_url, wait_until="networkidle", timeout=WAIT_MS
            )
            assert response is not None and response.status == 200
            await page.page.wait_for_selector(".graphiql-query-editor .CodeMirror")
            # The explorer plugin loads and lists the schema's fields (introspection).
            await page.page.click("button[aria-label='Show GraphiQL Explorer']")
            await page.page.wait_for_selector(
                ".graphiql-explorer-root :text('orderHistory')", timeout=WAIT_MS
            )

            # A query, and its result in the response pane.
            await page.set_query(
                f'query ProductInBrowser {{ product(id: "{sku}") '
                "{ id name price { amount } stockAvailable } }",
                "ProductInBrowser",
            )
            await page.run()
            result = json.loads(await page.response_containing(f"Browser lamp {uid}"))
            assert result == {
                "data": {
                    "product": {
                        "id": sku,
                        "name": f"Browser lamp {uid}",
                        "price": {"amount": "12.50"},
                        "stockAvailable": 7,
                    }
                }
            }

            # A subscription over the websocket, and the push a mutation causes.
            # `afterVersion: 1`: had the mutation landed before the subscription started,
            # the server would still push version 2 first, so there is no race to sleep on.
            await page.set_query(
                f'subscription OrderPushes {{ orderUpdated(id: "{order_id}", afterVersion: 1) '
                "{ id version items { productId quantity } } }",
                "OrderPushes",
            )
            await page.run()
            accepted(await add_item(api, order_id, sku, 3), "OrderAccepted")
            pushed = json.loads(await page.response_containing(sku, '"version": 2'))
            assert pushed == {
                "data": {
                    "orderUpdated": {
                        "id": order_id,
                        "version": 2,
                        "items": [{"productId": sku, "quantity": 3}],
                    }
                }
            }

            assert page.blocked == [], "GraphiQL tried to reach beyond the server"
            assert page.errors == [], "script errors on the GraphiQL page"
        finally:
            # Saved whether the test passed or not: on a failure it shows what was on screen.
            await tab.screenshot(path=str(artifacts / "graphiql.png"))
            await tab.close()


def _bearer(subject: str, *, staff: bool) -> dict[str, str]:
    claims = {
        "sub": subject,
        "exp": int(time.time()) + 600,
        **({"roles": ["staff"]} if staff else {}),
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"}


@pytest.mark.postgres
@pytest.mark.mongo
async def test_graphiql_loads_the_schema_with_a_staff_token_in_its_headers(
    secured_api: Stack, browser: BrowserContext
) -> None:
    for headers, staff in (
        (_bearer("c-1", staff=False), False),
        (_bearer("ada", staff=True), True),
    ):
        tab = await browser.new_page()
        try:
            page = OfflinePage(tab, secured_api.base_url)
            await page.install()
            # The headers as the user typed them earlier: GraphiQL keeps them
            # (shouldPersistHeaders) and introspects with them when the page loads.
            await tab.add_init_script(
                f"localStorage.setItem('graphiql:headers', {json.dumps(json.dumps(headers))})"
            )
            response = await tab.goto(
                secured_api.graphql_url, wait_until="networkidle", timeout=WAIT_MS
            )
            assert response is not None and response.status == 200
            await tab.wait_for_selector(".graphiql-query-editor .CodeMirror")
            if not staff:
                # A customer's token: the server's reason, where GraphiQL shows answers.
                await page.response_containing("is for staff only", "FORBIDDEN")
                continue
            await tab.click("button[aria-label='Show GraphiQL Explorer']")
            await tab.wait_for_selector(
                ".graphiql-explorer-root :text('orderHistory')", timeout=WAIT_MS
            )
            await page.set_query("query Ops { projections { name } }", "Ops")
            await page.run()
            result = json.loads(await page.response_containing('"projections"'))
            assert {p["name"] for p in result["data"]["projections"]} >= {"orders", "products"}
            assert page.blocked == [] and page.errors == []
        finally:
            await tab.close()
