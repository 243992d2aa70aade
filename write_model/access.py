"""Who may read and change what: the one access rule, pure, used by the command bus and its
handlers (writes) and by `read_model.scoped.ScopedReadModel` (reads).

- A customer reads and changes only its own orders and its own customer record. Someone
  else's order or customer answers exactly like a missing one (NotFound / null), so that an
  id tells nothing about whether it exists.
- Staff and our own processes (system principals, such as the saga) may do everything;
  only they may change the catalog, run the saga's commands, and read the operators' views
  (projections, dead letters).
- The anonymous principal is what every request is when no authentication is configured:
  the server is open then and it may do everything, as it always could. Where
  authentication is configured, a request without a valid token never gets this far (HTTP
  401), so no anonymous principal reaches the rule.
"""

from __future__ import annotations

from write_model import commands
from write_model.command_context import Principal, PrincipalKind


class Forbidden(Exception):
    """The principal may not do this at all (not a question of which entity)."""


# Commands that change the catalog or that only the fulfillment saga sends.
STAFF_COMMANDS: tuple[type, ...] = (
    commands.AddProduct,
    commands.RenameProduct,
    commands.ChangeProductPrice,
    commands.RestockProduct,
    commands.ReserveStock,
    commands.ReleaseStockReservation,
    commands.ConfirmOrder,
    commands.RejectOrder,
)


def sees_everything(principal: Principal) -> bool:
    return principal.kind is not PrincipalKind.CUSTOMER


def may_act_for(principal: Principal, customer_id: str | None) -> bool:
    """Whether `principal` may read or change what belongs to customer `customer_id` (its
    orders, its record). None: nobody's (a missing entity), which only the unrestricted see."""
    return sees_everything(principal) or (customer_id is not None and principal.id == customer_id)


def check_command(principal: Principal, command: object) -> None:
    """Refuse what the principal may not send whatever its target: Forbidden."""
    if sees_everything(principal):
        return
    if isinstance(command, STAFF_COMMANDS):
        raise Forbidden(f"{type(command).__name__} is for staff only")


def check_operator(principal: Principal, what: str) -> None:
    """The operators' views (projections, dead letters): staff and processes only."""
    if not sees_everything(principal):
        raise Forbidden(f"{what} is for staff only")
