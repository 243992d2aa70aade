"""The README's walkthrough, run verbatim against `make dev` (as a newcomer starts it): each
GraphQL block is sent as GraphiQL sends it (subscriptions over graphql-transport-ws, left
open while the blocks after them run), each shell block runs in bash, and the client files
it says to save are saved and run (npm `graphql-ws`, Python `gql`). The one change: the
port, 8000 in the README, is a free one here. Ctrl-C then ends `make dev` cleanly.

The Security section's block (a background `orders dev` with JWT_SECRET, then curl with a
staff token) runs verbatim too: its curl must wait for the server it just started."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.processes import ROOT, base_env, free_port

README = ROOT / "README.md"
BLOCK = re.compile(
    r"(?:Save this as `(?P<file>[^`]+)`:\n\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.DOTALL
)
FINAL = ("CONFIRMED", "REJECTED", "CANCELLED")
SETTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    file: str | None


def section(start: str, end: str) -> str:
    text = README.read_text()
    return text[text.index(start) : text.index(end)]


def blocks(text: str, port: int) -> list[Block]:
    return [
        Block(m["lang"], m["body"].replace("127.0.0.1:8000", f"127.0.0.1:{port}"), m["file"])
        for m in BLOCK.finditer(text)
    ]


def make_env(port: int, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in base_env().items() if not k.startswith(("MAKE", "MFLAGS"))}
    return {**env, "PORT": str(port), "ORDERS_DATA_DIR": str(data_dir)}


def workdir(tmp_path: Path) -> Path:
    """An empty folder with the project's environment at `.venv`, as in a clone."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    return work


def run_shell(body: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", body],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert done.returncode == 0, f"{body}\n{done.stdout}\n{done.stderr}"
    return done.stdout


async def watch(url: str, document: str, pushes: list[dict[str, Any]]) -> None:
    """A GraphiQL subscription tab: every push, until the order is final."""
    transport = WebsocketsTransport(url=url.replace("http://", "ws://"))
    async with Client(transport=transport) as session:
        async for result in session.subscribe(GraphQLRequest(document)):
            pushes.append(result["orderUpdated"])
            if result["orderUpdated"]["status"] in FINAL:
                return


async def first_push(pushes: list[dict[str, Any]], watching: asyncio.Task[None]) -> None:
    """Until the subscription tab shows the order as it is (then the next request runs)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while not pushes:
        assert not watching.done(), watching
        assert asyncio.get_running_loop().time() < deadline, "no first push"
        await asyncio.sleep(0.05)


async def post(http: httpx.AsyncClient, url: str, document: str) -> dict[str, Any]:
    """A GraphiQL request; a read of an order still being fulfilled is run again until the
    saga has decided (a person reads it a moment later)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while True:
        body = (await http.post(url, json={"query": document})).json()
        assert "errors" not in body, (document, body)
        settled = document.lstrip().startswith("mutation") or "SUBMITTED" not in json.dumps(body)
        if settled or asyncio.get_running_loop().time() > deadline:
            return body["data"]
        await asyncio.sleep(0.1)


def answer_to(answers: dict[str, Any], part: str) -> Any:
    """What the one block containing `part` answered."""
    (answer,) = [answer for body, answer in answers.items() if part in body]
    return answer


def user_errors(data: Any) -> list[Any]:
    if isinstance(data, dict):
        found = [data] if "code" in data else []
        return found + [e for value in data.values() for e in user_errors(value)]
    if isinstance(data, list):
        return [e for value in data for e in user_errors(value)]
    return []


def start_make_dev(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    """`make dev` in a session of its own (a terminal's process group), once it says where
    GraphiQL is; the lines it printed until then."""
    process = subprocess.Popen(
        ["make", "--no-print-directory", "dev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    seen = []
    while not any(line.startswith("GraphiQL: ") for line in seen):
        line = process.stdout.readline()
        assert line, f"make dev ended: {''.join(seen)}\n{log.read_text()}"
        seen.append(line)
    return process, "".join(seen)


async def test_the_walkthrough_runs_verbatim_on_make_dev(tmp_path: Path) -> None:
    port = free_port()
    env = make_env(port, tmp_path / "data")
    url = f"http://127.0.0.1:{port}/graphql"
    steps = blocks(section("<!-- walkthrough:start -->", "<!-- walkthrough:end -->"), port)
    assert [b.lang for b in steps].count("graphql") >= 6 and {"sh", "js", "python"} <= {
        b.lang for b in steps
    }
    work = workdir(tmp_path)
    process, banner = await asyncio.wait_for(
        asyncio.to_thread(start_make_dev, env, tmp_path / "make-dev.log"), 180
    )
    try:
        assert "seed: the demo catalog (5 products) and 4 customers are in place" in banner
        assert "declines every payment of demo-declined" in banner
        assert f"GraphiQL: {url}" in banner
        answers: dict[str, dict[str, Any]] = {}  # by block
        shell_out: dict[str, str] = {}
        pushes: list[dict[str, Any]] = []
        watching: asyncio.Task[None] | None = None
        async with httpx.AsyncClient(timeout=30) as http:
            for block in steps:
                if block.file:
                    (work / block.file).write_text(block.body)
                elif block.lang == "sh":
                    shell_out[block.body] = await asyncio.to_thread(
                        run_shell, block.body, work, env
                    )
                elif block.body.lstrip().startswith("subscription"):
                    watching = asyncio.create_task(watch(url, block.body, pushes))
                    await first_push(pushes, watching)
                else:
                    answers[block.body] = await post(http, url, block.body)
        assert watching is not None
        await asyncio.wait_for(watching, SETTLE_SECONDS)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        out, _ = await asyncio.to_thread(process.communicate, timeout=30)
    errors = await asyncio.to_thread((tmp_path / "make-dev.log").read_text)

    assert all(user_errors(answer) == [] for answer in answers.values()), answers
    created = answer_to(answers, 'createOrder(input: {orderId: "walk-1"')
    addressed = answer_to(answers, 'setShippingAddress(input: {orderId: "walk-1"')
    submitted = answer_to(answers, 'submitOrder(input: {orderId: "walk-1"}')
    rejected = answer_to(answers, 'submitOrder(input: {orderId: "walk-2"}')
    walk_2 = answer_to(answers, 'order(id: "walk-2")')
    history = answer_to(answers, 'orderHistory(id: "walk-1")')
    assert created["createOrder"]["order"] == {
        "status": "DRAFT",
        "total": {"amount": "54.78", "currency": "USD"},  # 2 x 24.90 + 10 % tax
    }
    assert addressed["setShippingAddress"]["order"]["shippingAddress"]["city"] == "London"
    assert submitted["submitOrder"]["order"]["status"] == "SUBMITTED"
    # The subscription tab: the draft, then every version up to CONFIRMED, one push each.
    statuses = [push["status"] for push in pushes]
    assert statuses[0] == "DRAFT" and statuses[-1] == "CONFIRMED" and "SUBMITTED" in statuses
    # One push per version of the read document: a new order version or fulfillment step,
    # so with both selected, as the README says, no two pushes look the same.
    versions = [push["version"] for push in pushes]
    assert versions == sorted(versions)
    assert all(before != after for before, after in itertools.pairwise(pushes)), pushes
    assert pushes[-1]["fulfillment"]["state"] == "COMPLETED"
    assert rejected["submit"]["order"]["status"] == "SUBMITTED"
    order = walk_2["order"]
    assert order["status"] == "REJECTED"
    assert "payment declined for customer demo-declined" in order["fulfillment"]["reason"]
    types = [event["type"] for event in history["orderHistory"]]
    assert types[:4] == ["OrderCreated", "OrderItemAdded", "ShippingAddressSet", "OrderSubmitted"]
    assert types[-1] == "OrderConfirmed"
    assert history["orderAt"] == {
        "status": "DRAFT",
        "shippingAddress": None,
        "total": {"amount": "54.78"},
    }
    # The clients: Node's graphql-ws and Python's gql print the versions up to the end.
    node_out = answer_to(shell_out, "node watch-order.mjs walk-1")
    python_out = answer_to(shell_out, "watch_order.py walk-2")
    assert re.fullmatch(r"(walk-1 v\d+ \w+\n)*walk-1 v\d+ CONFIRMED\n", node_out), node_out
    assert re.fullmatch(r"(walk-2 v\d+ \w+\n)*walk-2 v\d+ REJECTED\n", python_out), python_out
    table = answer_to(shell_out, "orders projections status")
    for name in ("customers", "orders", "products"):
        assert re.search(rf"{name}\s+│\s+\d+\s+│", table), table
    # Ctrl-C: the server stops, and neither click nor make reports an error.
    assert "Traceback" not in errors and "Aborted!" not in errors + out, errors
    assert "make: ***" not in errors + out, errors + out


async def test_the_security_example_waits_for_the_server_it_starts(tmp_path: Path) -> None:
    port = free_port()
    env = make_env(port, tmp_path / "data")
    (block,) = blocks(section("For development, `orders token c-42`", "**Roles.**"), port)
    assert block.lang == "sh" and "orders dev &" in block.body
    out = await asyncio.to_thread(run_shell, block.body, workdir(tmp_path), env)
    answer = json.loads(out.splitlines()[-1])
    assert [p["name"] for p in answer["data"]["projections"]] == [
        "customers",
        "orders",
        "products",
    ]
