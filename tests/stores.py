"""A test's own store: a catalog given as YAML text, written to
``ROOT/catalog.yaml``, compiled into ``ROOT/store`` and activated."""
from __future__ import annotations

import gc
from pathlib import Path

from rating_core.store import Store


def compiled(root: Path, catalog: str) -> Store:
    """The Store of ``root / "store"`` with ``catalog`` (YAML text)
    compiled as its active version. Raises what ``Store.compile`` raises."""
    (root / "catalog.yaml").write_text(catalog, encoding="utf-8")
    store = Store(root / "store")
    store.compile(root / "catalog.yaml", activate=True)
    return store


def compiled_dir(root: Path, catalog: str) -> Path:
    """``compiled``'s store directory, the Store dropped first (its LMDB
    environment closed), for an engine, server or command to open."""
    store = compiled(root, catalog)
    del store
    gc.collect()
    return root / "store"
