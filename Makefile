# The two commands a newcomer needs: `make run` and `make test`. Everything else follows.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= $(or $(STREAMLIT_SERVER_PORT),8501)
PROXY_PORT ?= 8443
PROXY_HTTP_PORT ?= 8080
PROXY_DIR := $(CURDIR)/data/proxy
REPLICAS ?= 2

.PHONY: run test lint bench chromium nginx proxy serve clean

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
test: $(VENV)/.dev-installed chromium nginx
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

## Debian's nginx and openssl for the reverse-proxy tests (tests/test_proxy.py) and `make proxy`;
## installed only when missing and we are root. The package may not start Debian's own nginx service:
## a policy-rc.d that says no is put in place for the install when the machine has none.
nginx:
	@if { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's nginx and openssl for the reverse-proxy tests"; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; \
			chmod +x /usr/sbin/policy-rc.d; added_policy=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx openssl >/dev/null; \
		status=$$?; if [ -n "$$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$status; \
	else echo "nginx or openssl is missing and cannot be installed here: the reverse-proxy tests will be skipped"; fi

## A self-signed certificate for localhost, made on first use, for `make proxy` and `make serve`.
$(PROXY_DIR)/certificate.pem: | nginx
	@mkdir -p $(PROXY_DIR)
	@openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout $(PROXY_DIR)/key.pem -out $(PROXY_DIR)/certificate.pem 2>/dev/null && \
	chmod 600 $(PROXY_DIR)/key.pem

## Try the reverse proxy of deploy/ locally: https://localhost:$(PROXY_PORT) in front of `make run`
## (start that first, in another terminal), with a self-signed certificate made on first use.
proxy: $(VENV)/.runtime-installed nginx $(PROXY_DIR)/certificate.pem
	@$(BIN)/python deploy/render_nginx.py --server-name localhost --port $(PROXY_PORT) \
		--http-port $(PROXY_HTTP_PORT) --listen-address 127.0.0.1 --upstream 127.0.0.1:$(PORT) \
		--certificate $(PROXY_DIR)/certificate.pem --certificate-key $(PROXY_DIR)/key.pem \
		--local-folder $(PROXY_DIR) >/dev/null
	@nginx=$$(command -v nginx || echo /usr/sbin/nginx); \
	$$nginx -t -q -p $(PROXY_DIR) -c nginx.conf -e logs/error.log && \
	echo "Open https://localhost:$(PROXY_PORT) (self-signed certificate: the browser warns once); Ctrl+C stops nginx." && \
	exec $$nginx -p $(PROXY_DIR) -c nginx.conf -e logs/error.log -g 'daemon off;'

## REPLICAS Streamlit processes (ports $(PORT) upwards) on one database, behind nginx with sticky
## routing on https://localhost:$(PROXY_PORT), set up as `make run` does. In another terminal,
## `.venv/bin/python deploy/serve.py restart N` restarts process N while the others serve (deploy/README.md).
serve: $(VENV)/.runtime-installed nginx $(PROXY_DIR)/certificate.pem
	@export DEMO=$${DEMO:-1}; \
	$(BIN)/python manage.py init-db && \
	if [ "$$DEMO" != "0" ]; then $(BIN)/python manage.py seed-demo --if-empty; fi && \
	exec $(BIN)/python deploy/serve.py --folder $(PROXY_DIR) run --replicas $(REPLICAS) --base-port $(PORT) \
		--port $(PROXY_PORT) --http-port $(PROXY_HTTP_PORT) \
		--certificate $(PROXY_DIR)/certificate.pem --certificate-key $(PROXY_DIR)/key.pem

bench: $(VENV)/.dev-installed
	$(BIN)/python manage.py bench $(if $(SIZES),--sizes $(SIZES),)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
