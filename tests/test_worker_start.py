"""What a worker (re)start loads: opening the engine must not load
``phonenumbers``' geocoding data (about 0.5 s of a respawn; only compiling
a catalog's region tables needs it), and the runtime -- the server's
services, an engine that authorises and rates -- never imports the catalog
compiler (``rating_core.compile``) or the reference implementations."""
from __future__ import annotations

import subprocess
import sys

from test_live_full import CATALOG

from rating_core.store import Store

PROBE = """
import sys
from rating400_server.engine import open_engine
engine = open_engine(sys.argv[1])
import rating400_server.services, rating400_server.accounts, rating400_server.worker  # noqa: E401
engine.authorize("4000000102", "13912345678")
loaded = [m for m in ("phonenumbers.geodata", "phonenumbers.carrierdata") if m in sys.modules]
loaded += sorted(m for m in sys.modules if m.startswith(("rating_core.compile", "rating_core.reference")))
engine.close()
print(",".join(loaded) or "none")
"""


def test_the_runtime_loads_no_region_data_no_compiler_no_reference(tmp_path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    Store(tmp_path / "store").compile(tmp_path / "catalog.yaml", activate=True)
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "store")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
