# The two commands a newcomer needs: `make run` and `make test`. Everything else follows.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= $(or $(STREAMLIT_SERVER_PORT),8501)

.PHONY: run test lint bench chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

## Set up and run the app on SQLite with demo data (DEMO=0 for a real start: no demo accounts).
run: $(VENV)/.runtime-installed
	@export DEMO=$${DEMO:-1}; \
	$(BIN)/python manage.py init-db && \
	if [ "$$DEMO" != "0" ]; then $(BIN)/python manage.py seed-demo --if-empty; fi && \
	echo "Open http://localhost:$(PORT) in a browser (Ctrl+C stops the app)." && \
	$(BIN)/streamlit run app.py --server.port $(PORT)

## Set up and pass the tests: lint, then the whole suite (PostgreSQL half when it answers).
test: $(VENV)/.dev-installed chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

## Debian's chromium for the browser tests; installed only when missing and we are root.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is missing and cannot be installed here: browser tests will be skipped"; fi

bench: $(VENV)/.dev-installed
	$(BIN)/python manage.py bench $(if $(SIZES),--sizes $(SIZES),)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
