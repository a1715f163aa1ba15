"""Errors raised at the edge of the engine.

Everything below the edge (compiled snapshot, kernels) trusts its input;
these are the only places input is judged.
"""


# The problems a CatalogError lists: a catalog with one mistake made many
# times (20,000 unknown keys) has as many problems, and the first ones say
# what the rest repeat.
MAX_PROBLEMS = 100


class CatalogError(ValueError):
    """A catalog source that cannot be compiled.

    ``problems`` lists the first MAX_PROBLEMS problems found, in the order
    found, each naming file, record, field; ``count`` is how many were
    found in all (the message ends "... and N more problems" when it is more).
    """

    def __init__(self, problems):
        found = list(problems)
        self.count = len(found)
        self.problems = found[:MAX_PROBLEMS]
        more = self.count - len(self.problems)
        super().__init__("\n".join(self.problems) + (f"\n... and {more} more problems" if more else ""))


class InvalidInput(ValueError):
    """One request or record with a bad field (the gRPC edge maps this to
    INVALID_ARGUMENT)."""

    def __init__(self, field: str, message: str, record: str | None = None):
        self.field = field
        self.record = record
        self.message = message
        where = f"{record}: " if record else ""
        super().__init__(f"{where}{field}: {message}")


class OverLimit(RuntimeError):
    """A request that would make the server hold more than an operator's
    bound allows (gRPC RESOURCE_EXHAUSTED): ``field`` names what is bounded,
    ``message`` the bound and what to do instead."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class StoreError(RuntimeError):
    """A missing or unusable catalog store, version or ledger."""


class Contended(StoreError):
    """A commit found the customer layer changed under every attempt (an
    account operation landing between each refresh and commit): nothing was
    written, and sending the same request again is safe (a commit is
    exactly once by call id). gRPC: UNAVAILABLE, which clients retry."""


class StaleView(Contended):
    """The Router's view of the customer layer is behind the account it
    decides for: the account's stored balance belongs to a package period
    the view does not know yet (a package change or renewal since the view
    was built, and a money operation of the new period). Nothing was decided
    or held; ``Engine`` refreshes its view and decides again. Reaching a
    client (a Router no engine refreshes, or a view that stayed behind every
    attempt): UNAVAILABLE, which clients retry."""


class NotFound(LookupError):
    """A request names a record that does not exist (gRPC NOT_FOUND);
    ``field`` is the request field that named it."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class Refused(RuntimeError):
    """An operation not allowed in the current state (gRPC
    FAILED_PRECONDITION); ``reason`` is a machine-readable code such as
    ``realname_not_verified`` or ``below_minimum``."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")
