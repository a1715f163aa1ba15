# The two set-up commands (see README): `make demo` and `make test`.
# Each installs what it needs first, so either works on a fresh machine.
# The Python environment: the active virtual environment (or PY=...), else
# .venv here, made on first use: Debian's own python3 refuses pip installs
# outside a virtual environment (PEP 668, "externally-managed-environment").
IN_VENV := $(shell python3 -c 'import sys; print(int(sys.prefix != sys.base_prefix))' 2>/dev/null)
ifeq ($(IN_VENV),1)
PY ?= python3
else
PY ?= .venv/bin/python
endif
DEMO_CDRS ?= 200000

.PHONY: install install-bench demo test bench bench-smoke fuzz lint py
# `make install` does its work once per Python environment (a stamp under
# .make/ named after the environment's prefix), again only when the build
# inputs change or the kernels no longer import there: a second `make demo`
# or `make test` does not rebuild (pip's editable install rebuilds the
# kernels every time, minutes on a small machine).
ENV_ID_PY := import hashlib, sys, rating_core.kernels.rating; print(hashlib.sha1(sys.prefix.encode()).hexdigest()[:12])
ENV_ID := $(shell $(PY) -c '$(ENV_ID_PY)' 2>/dev/null || echo absent-$$$$)
STAMP := .make/installed-$(ENV_ID)
BUILD_INPUTS := pyproject.toml setup.py Makefile $(wildcard rating_core/kernels/*.pyx rating_core/kernels/*.pxd rating_core/kernels/*.pxi)

install: $(STAMP)

$(STAMP): $(BUILD_INPUTS)
	@test -x $(PY) || command -v $(PY) >/dev/null 2>&1 || python3 -m venv .venv 2>/dev/null || { \
	  (apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null) && python3 -m venv .venv; }
	$(PY) -m pip install --quiet -e '.[test]'
	@command -v h2load >/dev/null 2>&1 || { \
	  (apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null) \
	  || echo "note: could not install nghttp2-client (h2load); wire benchmarks will skip"; }
	@# Statements: Pango for WeasyPrint (PDF), a CJK font, pdftoppm for the PDF test.
	@{ command -v pdftoppm >/dev/null 2>&1 && fc-list :lang=zh | grep -q . ; } || { \
	  (apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils fonts-wqy-microhei >/dev/null) \
	  || echo "note: could not install Pango, poppler-utils or fonts-wqy-microhei; PDF statements may fail"; }
	@# openssl: README's certificate recipe (tests/test_auth.py runs it).
	@command -v openssl >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq openssl >/dev/null) \
	  || echo "note: could not install openssl; the certificate recipe test will fail"; }
	@{ command -v kamailio >/dev/null 2>&1 && command -v sipp >/dev/null 2>&1 \
	  && test -e /usr/lib/x86_64-linux-gnu/kamailio/modules/app_python3.so; } || { \
	  (apt-get update -qq && apt-get install -y -qq kamailio kamailio-python3-modules sip-tester >/dev/null) \
	  || echo "note: could not install kamailio / sip-tester; the softswitch end-to-end tests will skip"; }
	@# Named after the environment now that the kernels import there.
	@mkdir -p .make && touch .make/installed-$$($(PY) -c '$(ENV_ID_PY)')

# The benchmark peers at their pinned versions (pyproject's `bench` extra).
install-bench: .make/bench-$(ENV_ID)

.make/bench-$(ENV_ID): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@touch .make/bench-$$($(PY) -c '$(ENV_ID_PY)')

demo: install
	@# demo-out is this target's own output: a second `make demo` starts afresh
	@# (rating400 demo refuses to rate into an earlier demo's ledger).
	rm -rf demo-out
	$(PY) -m rating_core demo --cdrs $(DEMO_CDRS) --dir demo-out
	$(PY) -m rating_core bill demo-out/rated.parquet --store demo-out/store --out demo-out/bills.csv --show 10
	$(PY) -m rating_core bill demo-out/rated.parquet --store demo-out/store --out demo-out/statement.json \
	  --account hangzhou_tea --month 2026-10 --statements demo-out/statements --format html,pdf

test: install
	$(PY) -m pytest -q

bench: install-bench
	$(PY) -m pytest benchmarks -q --benchmark-columns=min,median,max,rounds

# A small-size benchmark run, so the suites never rot (CI runs this).
bench-smoke: install-bench
	RATING400_BENCH_SMALL=1 $(PY) -m pytest benchmarks -q --benchmark-disable-gc --benchmark-min-rounds=1 --benchmark-max-time=0.1

# Fuzz harnesses (tests/test_fuzz.py), FUZZ_SECONDS each; CI runs them for 40 s.
# The seed is fixed so that CI replays a sequence that has been run here for longer
# (FUZZ_SEED=0 draws one from the clock, for exploring; each report names its seed).
FUZZ_SECONDS ?= 40
FUZZ_SEED ?= 20261129
fuzz: install
	RATING400_FUZZ_SECONDS=$(FUZZ_SECONDS) RATING400_FUZZ_SEED=$(FUZZ_SEED) $(PY) -m pytest -q -s -p no:cacheprovider tests/test_fuzz.py -k "fuzz_"

# Lint and types (CI): ruff's default rules, mypy (config in pyproject.toml),
# and the kernels' .pyi stubs against the built modules.
lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m mypy.stubtest rating_core.kernels.ids rating_core.kernels.prefix rating_core.kernels.rating rating_core.kernels.routing rating_core.kernels.crm rating_core.kernels.edge \
	  --allowlist .ci/stubtest-allowlist

# The Python this Makefile uses (.ci/run asks it for the debug build's step).
py:
	@echo $(PY)
