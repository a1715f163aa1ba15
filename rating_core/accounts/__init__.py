"""Customer operations on the live customer layer (see ``operations``) and
the per-process view the kernels read (``view``)."""
from .operations import Accounts
from .view import open_view

__all__ = ["Accounts", "open_view"]
