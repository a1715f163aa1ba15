"""What a worker (re)start loads: opening the engine must not load
``phonenumbers``' geocoding data (about 0.5 s of a respawn; only compiling
a catalog's region tables needs it)."""
from __future__ import annotations

import subprocess
import sys

from test_live_full import CATALOG

from rating_core.store import Store

PROBE = """
import sys
from rating400_server.engine import open_engine
engine = open_engine(sys.argv[1])
loaded = [m for m in ("phonenumbers.geodata", "phonenumbers.carrierdata") if m in sys.modules]
engine.close()
print(",".join(loaded) or "none")
"""


def test_opening_the_engine_loads_no_region_data(tmp_path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    Store(tmp_path / "store").compile(tmp_path / "catalog.yaml", activate=True)
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "store")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
