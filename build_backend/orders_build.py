"""The package's build backend: setuptools, with GraphiQL's browser assets built first.

A wheel or sdist built from a clone runs app/graphiql_assets/build (npm ci from the lock
file, cached outside the clone by the lock's hash) so both carry app/graphiql_assets/dist;
one built from an sdist finds them already there, current for its lock, and needs no npm.
A wheel built in the source tree leaves no `build/` folder behind (`pip install .`).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the hooks this module does not change)

ASSETS = Path("app") / "graphiql_assets"


def assets_key(assets: Path = ASSETS) -> str:
    """The assets' version: what app/graphiql_assets/build writes into dist/VERSION."""
    digest = hashlib.sha256((assets / "package-lock.json").read_bytes())
    digest.update((assets / "build").read_bytes())
    return digest.hexdigest()[:16]


def ensure_assets() -> None:
    version = ASSETS / "dist" / "VERSION"
    if version.is_file() and version.read_text().strip() == assets_key():
        return
    subprocess.run([str(ASSETS / "build")], check=True)


@contextmanager
def _no_build_folder_left() -> Iterator[None]:
    existed = Path("build").exists()
    try:
        yield
    finally:
        if not existed:
            shutil.rmtree("build", ignore_errors=True)


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    ensure_assets()
    with _no_build_folder_left():
        return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    ensure_assets()
    return _setuptools.build_sdist(sdist_directory, config_settings)


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    with _no_build_folder_left():
        return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
