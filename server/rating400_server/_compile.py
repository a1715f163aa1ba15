"""Child process of the Compile RPC: ``python -m rating400_server._compile
STORE_DIR CATALOG_PATH``. Prints one JSON line: {"version": N},
{"problems": [...]} or {"not_found": path}."""
from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    store_dir, path = argv
    from rating_core.errors import CatalogError
    from rating_core.store import Store

    try:
        version = Store(store_dir).compile(path)
    except CatalogError as e:
        print(json.dumps({"problems": list(getattr(e, "problems", None) or [str(e)])}))
        return 0
    except FileNotFoundError as e:
        print(json.dumps({"not_found": str(e)}))
        return 0
    print(json.dumps({"version": int(version)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
