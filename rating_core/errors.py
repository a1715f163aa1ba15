"""Errors raised at the edge of the engine.

Everything below the edge (compiled snapshot, kernels) trusts its input;
these are the only places input is judged.
"""


class CatalogError(ValueError):
    """A catalog source that cannot be compiled.

    ``problems`` lists every problem found, each naming file, record, field.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


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
