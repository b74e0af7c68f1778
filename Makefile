# The two commands a user needs: `make run` and `make test`. Both set the environment up themselves.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup run test test-fast lint bench collector clean ui-vendor

ACCEL_SRC := sink-accel/pyproject.toml sink-accel/Cargo.toml sink-accel/Cargo.lock $(wildcard sink-accel/src/*.rs)
UI_VENDOR := sink/src/shellspan_sink/ui/vendor

setup: $(VENV)/.synced $(VENV)/.accel $(UI_VENDOR)/node_modules/.installed

# uv is installed from PyPI into a private tool environment, so a machine needs only Python.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: $(UV) pyproject.toml instrumentation/pyproject.toml sink/pyproject.toml testing/pyproject.toml $(wildcard uv.lock)
	$(UV) sync --all-packages --group dev --python $(PYTHON)
	touch $@

# The sink's optional compiled encoder (byte-identical to the Python one, much faster). `uv sync`
# removes what uv.lock does not list, so it is reinstalled after every sync.
$(VENV)/.accel: $(VENV)/.synced $(ACCEL_SRC)
	@if command -v cargo >/dev/null 2>&1; then \
		$(UV) pip install --python $(VENV)/bin/python ./sink-accel && touch $@ \
		|| echo "shellspan-sink-accel failed to build: the sink uses its Python encoder"; \
	else \
		echo "cargo not found: skipping shellspan-sink-accel (the sink uses its Python encoder)"; \
	fi

# The web UI's terminal player (xterm.js) from the npm registry, exactly as package-lock.json pins
# it, into a directory the sink serves (not committed).
ui-vendor: $(UI_VENDOR)/node_modules/.installed

$(UI_VENDOR)/node_modules/.installed: $(UI_VENDOR)/package.json $(UI_VENDOR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(UI_VENDOR) --ignore-scripts --no-audit --no-fund && touch $@ \
		|| echo "npm ci failed: the web UI works, without its terminal player"; \
	else \
		echo "npm not found: the web UI works, without its terminal player (install Node.js, then make setup)"; \
	fi

run: setup
	$(VENV)/bin/shellspan-sink serve

lint: setup
	bash scripts/install-test-deps.sh lint
	$(VENV)/bin/ruff check .
	bash scripts/lint-hooks.sh

test: setup lint
	bash scripts/install-test-deps.sh
	@$(MAKE) --no-print-directory ui-vendor
	$(VENV)/bin/pytest

# The parts that need no shell, browser or collector: unit and sink tests (under a minute).
test-fast: setup
	$(VENV)/bin/pytest -m "(unit or sink) and not slow" -q -n 2 --dist loadfile

bench: setup
	$(VENV)/bin/python bench/run.py

# An OpenTelemetry Collector built from the official modules (cached outside the repository).
collector:
	bash collector_config/build.sh

clean:
	rm -rf $(VENV) $(TOOLS)
