# The two commands a user needs: `make run` and `make test`. Both set the environment up themselves.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup run test lint bench collector clean

setup: $(VENV)/.synced

# uv is installed from PyPI into a private tool environment, so a machine needs only Python.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: $(UV) pyproject.toml instrumentation/pyproject.toml sink/pyproject.toml $(wildcard uv.lock)
	$(UV) sync --all-packages --group dev --python $(PYTHON)
	touch $@

run: setup
	$(VENV)/bin/shellspan-sink serve

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(VENV)/bin/pytest

bench: setup
	$(VENV)/bin/python bench/run.py

# An OpenTelemetry Collector built from the official modules (cached outside the repository).
collector:
	bash collector_config/build.sh

clean:
	rm -rf $(VENV) $(TOOLS)
