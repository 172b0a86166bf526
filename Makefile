# curriculens: the two quickstart targets (`make demo`, `make test`) set everything up themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup browser demo test test-fast lint clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch (a plain `torch` would pull a multi-GB CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# Debian chromium + chromedriver for the browser tests and figure export (root only; skipped if present).
# apt waits up to APT_LOCK_WAIT seconds for another apt/dpkg process to release its lock.
APT_LOCK_WAIT ?= 600
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT) install -y -qq chromium chromium-driver >/dev/null; \
		else echo "browser tests need: sudo apt-get install chromium chromium-driver"; fi; \
	fi

demo: setup
	$(VENV)/bin/curriculens demo --out demo_out

test: setup browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

# ruff: pyflakes/pycodestyle, blind excepts, no print() outside the CLI, benchmarks and scripts; the format
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf demo_out .pytest_cache
