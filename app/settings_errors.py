"""Bad settings as one line per variable: the environment variable (as it was set, aliases
included), its value with secrets masked, and what is allowed; the CLI exits with 2.

Works from pydantic's ValidationError alone, so every field of Settings is covered, those
added later and those read under other names (`validation_alias`) too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, AliasPath, BaseModel, ValidationError
from pydantic.fields import FieldInfo

# Field or variable names whose values are never shown.
SECRET_NAME = re.compile(
    r"(^|_)(secret|password|token|private_key|credentials?)($|_)", re.IGNORECASE
)


def _names(name: str, field: FieldInfo) -> list[str]:
    """The variables a field is read from, its own name first."""
    names = [name]
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    for choice in choices:
        if isinstance(choice, str):
            names.append(choice)
        elif isinstance(choice, AliasPath) and isinstance(choice.path[0], str):
            names.append(choice.path[0])
    if field.alias:
        names.append(field.alias)
    return names


def _variable(model: type[BaseModel], loc: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """(the environment variable set for `loc`, upper case; the field's description)."""
    set_names = {key.lower(): key for key in environ}
    for name, field in model.model_fields.items():
        names = _names(name, field)
        if loc.lower() in (n.lower() for n in names):
            for candidate in names:
                if candidate.lower() in set_names:
                    return set_names[candidate.lower()].upper(), field.description or ""
            return loc.upper(), field.description or ""
    return loc.upper(), ""


def shown(variable: str, value: object) -> str:
    """The value as it may be printed: secrets masked, a URL's password hidden."""
    text = value if isinstance(value, str) else repr(value)
    if SECRET_NAME.search(variable):
        return f"<{len(text)} characters, hidden>"
    if "://" in text:
        try:
            parts = urlsplit(text)
            if parts.password is not None:
                netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
                text = urlunsplit(parts._replace(netloc=netloc))
        except ValueError:
            text = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", text)
    return repr(text)


def _allowed(message: str) -> str:
    return message.removeprefix("Value error, ")


def settings_error_lines(
    error: ValidationError, model: type[BaseModel], environ: Mapping[str, str] | None = None
) -> list[str]:
    """One line per bad variable."""
    environ = os.environ if environ is None else environ
    lines = []
    for item in error.errors(include_url=False):
        if not item["loc"]:  # a rule over several settings: its message names them
            lines.append(_allowed(item["msg"]))
            continue
        loc = str(item["loc"][0])
        variable, description = _variable(model, loc, environ)
        # As it was set, before any validator normalised it.
        value = next((v for k, v in environ.items() if k.upper() == variable), item.get("input"))
        line = f"{variable}={shown(variable, value)}: {_allowed(item['msg'])}"
        if description:
            line += f" ({variable}: {description})"
        lines.append(line)
    return lines
