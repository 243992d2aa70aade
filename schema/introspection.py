"""Who may introspect the schema: `__schema` and `__type` (`__typename` is always answered).

The policy (the INTROSPECTION setting) is one of
- `on`: everyone;
- `off`: nobody: a validation error with code INTROSPECTION_DISABLED (HTTP 400);
- `staff`: principals who see everything (write_model/access.py: staff, our processes, and
  the anonymous principal of an API without authentication); a customer gets a validation
  error with code FORBIDDEN (HTTP 403, as for anything else a customer may not do).

The refusal is a validation rule added per operation for who asks, so it is checked before
anything runs, over HTTP and websockets alike (both run operations through the schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal, assert_never

from graphql import FieldNode, GraphQLError, ValidationRule, get_named_type, is_introspection_type
from graphql.language.visitor import SKIP, VisitorAction
from strawberry.extensions import SchemaExtension

from schema.errors import ForbiddenRequest
from write_model.access import sees_everything
from write_model.command_context import ANONYMOUS, Principal

IntrospectionPolicy = Literal["on", "off", "staff"]
DISABLED_CODE = "INTROSPECTION_DISABLED"


class _IntrospectionRefused(ValidationRule):
    """Reports each introspection field once (not the introspection fields inside it)."""

    reason: ClassVar[str]
    code: ClassVar[str]

    def enter_field(self, node: FieldNode, *_args: Any) -> VisitorAction:
        named = get_named_type(self.context.get_type())
        if named is not None and is_introspection_type(named):
            self.report_error(
                GraphQLError(
                    f"{self.reason}, but the query asks for `{node.name.value}`",
                    node,
                    extensions={"code": self.code},
                )
            )
            return SKIP
        return None


class IntrospectionDisabled(_IntrospectionRefused):
    reason = "GraphQL introspection has been disabled on this server (INTROSPECTION=off)"
    code = DISABLED_CODE


class IntrospectionForStaff(_IntrospectionRefused):
    reason = (
        "GraphQL introspection (__schema, __type) is for staff only on this server: send a "
        "staff token (in GraphiQL, in its headers editor)"
    )
    code = ForbiddenRequest.code  # HTTP 403


def refusal(policy: IntrospectionPolicy, principal: Principal) -> type[ValidationRule] | None:
    """The rule that refuses `principal` introspection under `policy`, or None."""
    match policy:
        case "on":
            return None
        case "off":
            return IntrospectionDisabled
        case "staff":
            return None if sees_everything(principal) else IntrospectionForStaff
        case _:
            assert_never(policy)


class IntrospectionAccess(SchemaExtension):
    """Adds the policy's refusal for the operation's principal (the request context's; an
    operation run without one, such as `orders schema export`, is anonymous)."""

    def __init__(self, policy: IntrospectionPolicy) -> None:
        self.policy = policy

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        principal = getattr(context, "principal", ANONYMOUS)
        rule = refusal(self.policy, principal)
        if rule is not None:
            # A fixed class per refusal: the validation cache keys on the rules.
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                rule,
            )
        yield
