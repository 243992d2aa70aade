"""Bad settings: one line per bad variable naming the environment variable, its value
(secrets masked) and what is allowed, exit status 2 for every command that reads them,
before any connection is tried; aliased fields and fields added later are named the same."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import AliasChoices, Field, ValidationError

from app.cli import main
from app.settings import Settings
from app.settings_errors import settings_error_lines

COMMANDS = [
    ["migrate"],
    ["seed"],
    ["dev"],
    ["api"],
    ["projector"],
    ["saga"],
    ["participant", "payment"],
    ["projections", "status"],
    ["projections", "rebuild", "orders"],
    ["token", "ada"],
]
SECRET = "too-short-but-private"

BAD = {
    "SAGA_MODE": ("foo", "'orchestration' or 'choreography'"),
    "TAX_RATE": ("2", "less than 1"),
    "PORT": ("abc", "a valid integer"),
    "LOG_LEVEL": ("verbose", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    "DATABASE_URL": ("postgress://orders:hunter2@db/orders", "postgresql:// or postgres://"),
    "MONGO_URL": ("mongo://db:27017", "mongodb:// or mongodb+srv://"),
}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("variable", sorted(BAD))
def test_a_bad_setting_is_one_line_naming_the_variable_and_exits_2(
    command: list[str], variable: str
) -> None:
    value, allowed = BAD[variable]
    result = CliRunner().invoke(
        main, command, env={variable: value, "STARTUP_TIMEOUT_SECONDS": "30"}
    )
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {variable}=")
    assert allowed in line
    assert "Traceback" not in result.output
    if "hunter2" in value:
        assert "hunter2" not in line
        assert "orders:***@db" in line
    else:
        assert repr(value) in line


def test_every_bad_variable_gets_its_own_line_and_secrets_are_never_printed() -> None:
    result = CliRunner().invoke(
        main, ["dev"], env={"JWT_SECRET": SECRET, "OPS_TOKEN": "abc", "PORT": "70000"}
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "error: PORT",
        "error: JWT_SECRET",
        "error: OPS_TOKEN",
    ]
    assert "less than or equal to 65535" in lines[0]
    assert "at least 32 characters" in lines[1]
    assert SECRET not in result.output
    assert f"<{len(SECRET)} characters, hidden>" in lines[1]


class LaterSettings(Settings):
    """A field added later, read under a new name and its old one."""

    follower_batch_size: int = Field(
        500,
        ge=1,
        validation_alias=AliasChoices("follower_batch_size", "projector_batch_size"),
        description="events per batch",
    )


@pytest.mark.parametrize("variable", ["FOLLOWER_BATCH_SIZE", "PROJECTOR_BATCH_SIZE"])
def test_an_aliased_field_is_named_by_the_variable_that_was_set(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "0")
    with pytest.raises(ValidationError) as raised:
        LaterSettings()
    lines = settings_error_lines(raised.value, LaterSettings)
    assert f"{variable}='0': Input should be greater than or equal to 1" in lines[-1]
