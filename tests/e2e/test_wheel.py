"""The package as a `pip install` user gets it: a wheel built from a clean clone (the
committed files only) carries GraphiQL's assets and leaves no `build/` folder; its sdist
carries them too, so a wheel built from the sdist needs no npm; installed into a fresh
environment without extras (what the Docker image does), `orders` seeds, serves GraphiQL's
page and assets, and answers the README's walkthrough. Without its assets the server still
starts, warns once naming the missing files and prints no GraphiQL URL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import zipfile
from pathlib import Path

import httpx

from tests.e2e.processes import ROOT, base_env, free_port
from tests.e2e.test_walkthrough import (
    answer_to,
    blocks,
    first_push,
    post,
    section,
    user_errors,
    watch,
)

ASSETS_IN_WHEEL = "app/graphiql_assets/dist/"


def uv() -> str:
    """The uv `make install` put in the cache (Makefile's UV)."""
    version = re.search(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert version is not None
    cache = os.environ.get("ORDERS_CACHE_DIR") or str(Path.home() / ".cache" / "orders")
    return f"{cache}/uv-{version[1]}/bin/uv"


def run(args: list[str], cwd: Path, **env: str) -> str:
    done = subprocess.run(
        args,
        cwd=cwd,
        env={**base_env(), "UV_PYTHON_DOWNLOADS": "never", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def built(directory: Path, suffix: str) -> Path:
    (path,) = directory.glob(f"*{suffix}")
    return path


def build_from_a_clean_clone(tmp_path: Path) -> Path:
    """The wheel built from the sdist of a fresh clone of HEAD; checks both on the way."""
    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", str(ROOT), str(clone)], tmp_path)
    run([uv(), "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "direct")], clone)
    assert not (clone / "build").exists()  # `pip install .` leaves no build/ folder either
    direct = zipfile.ZipFile(built(tmp_path / "direct", ".whl")).namelist()
    assert f"{ASSETS_IN_WHEEL}VERSION" in direct

    run([uv(), "build", "--quiet", "--sdist", "--out-dir", str(tmp_path / "sdist")], clone)
    sdist = built(tmp_path / "sdist", ".tar.gz")
    # From the sdist with an empty asset cache: nothing is built (no npm), the sdist's
    # assets go into the wheel.
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    wheels = tmp_path / "wheels"
    run(
        [uv(), "build", "--quiet", "--wheel", "--out-dir", str(wheels), str(sdist)],
        tmp_path,
        ORDERS_CACHE_DIR=str(empty_cache),
    )
    assert list(empty_cache.iterdir()) == []
    wheel = built(wheels, ".whl")
    assert sorted(n for n in zipfile.ZipFile(wheel).namelist() if ASSETS_IN_WHEEL in n) == sorted(
        n for n in direct if ASSETS_IN_WHEEL in n
    )
    return wheel


def start_dev(venv: Path, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(venv / "bin" / "orders"), "dev"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    return out


def text_of(log: Path) -> str:
    return log.read_text()


async def wait_healthy(url: str, process: subprocess.Popen[str], log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(300):
            assert process.poll() is None, text_of(log)
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"no /healthz: {text_of(log)}")


async def test_a_wheel_from_a_clean_clone_installs_without_extras_and_serves_everything(
    tmp_path: Path,
) -> None:
    wheel = await asyncio.to_thread(build_from_a_clean_clone, tmp_path)
    venv = tmp_path / "venv"
    await asyncio.to_thread(run, [uv(), "venv", "--quiet", str(venv)], tmp_path)
    await asyncio.to_thread(
        run,
        [uv(), "pip", "install", "--quiet", "--python", str(venv / "bin/python"), str(wheel)],
        tmp_path,
    )
    port = free_port()
    home = tmp_path / "home"  # not the clone: the installed package, nothing else
    home.mkdir()
    env = {
        **{k: v for k, v in base_env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        "PORT": str(port),
        "ORDERS_DATA_DIR": str(tmp_path / "data"),
    }
    seeded = await asyncio.to_thread(run, [str(venv / "bin/orders"), "seed"], home, **env)
    assert seeded.startswith("seed: the demo catalog (5 products) and 4 customers are in place")

    base, url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/graphql"
    log = tmp_path / "dev.log"
    process = start_dev(venv, env, home, log)
    try:
        await wait_healthy(base, process, log)
        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(url, headers={"accept": "text/html"})
            assert page.status_code == 200
            assets = re.findall(r'(?:src|href)="(/graphiql/[^"]+)"', page.text)
            assert len(assets) == 7
            for asset in assets:
                assert (await http.get(f"{base}{asset}")).status_code == 200, asset
            # The walkthrough's GraphiQL requests, the subscription left open meanwhile.
            pushes: list[dict[str, object]] = []
            watching = None
            steps = blocks(section("<!-- walkthrough:start -->", "<!-- walkthrough:end -->"), port)
            answers = {}
            for block in steps:
                if block.lang != "graphql":
                    continue
                if block.body.lstrip().startswith("subscription"):
                    watching = asyncio.create_task(watch(url, block.body, pushes))
                    await first_push(pushes, watching)
                else:
                    answers[block.body] = await post(http, url, block.body)
            assert watching is not None
            await asyncio.wait_for(watching, 60)
        assert all(user_errors(answer) == [] for answer in answers.values()), answers
        assert pushes[-1]["status"] == "CONFIRMED"
        assert answer_to(answers, 'order(id: "walk-2")')["order"]["status"] == "REJECTED"
    finally:
        out = await asyncio.to_thread(stop, process)
    assert f"GraphiQL: {url}" in out.splitlines()

    # Without its assets: one warning naming the files, no GraphiQL URL, the API still up.
    (dist,) = venv.glob("lib/python*/site-packages/app/graphiql_assets/dist")
    (version,) = [p for p in dist.iterdir() if p.name == "VERSION"]
    version.rename(tmp_path / "VERSION")
    (dist / "graphiql" / "graphiql.min.js").unlink()
    log = tmp_path / "dev-without-assets.log"
    process = start_dev(venv, env, home, log)
    try:
        await wait_healthy(base, process, log)
    finally:
        out = await asyncio.to_thread(stop, process)
    assert not any("GraphiQL:" in line for line in out.splitlines()), out
    warnings = [line for line in log.read_text().splitlines() if "GraphiQL is not served" in line]
    assert len(warnings) == 1, log.read_text()
    assert "VERSION, graphiql/graphiql.min.js (a wheel or sdist" in warnings[0]
