# `make run` and `make test` work on a fresh machine: each creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run simulate test lint bench-ingress bench-e2e bench-pipeline clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

# The demo runs everything on this machine: frames and webhooks on 127.0.0.1 must be allowed.
DEMO_ENV := FRAMEWATCH_DELIVER_ALLOW_PRIVATE=true FRAMEWATCH_FETCH_ALLOW_PRIVATE=true \
	FRAMEWATCH_FETCH_ALLOWED_HOSTS=127.0.0.1,*.myqcloud.com

run: install  ## apply the demo config and run the whole pipeline on 127.0.0.1:8080 and :8090 (needs RabbitMQ)
	$(DEMO_ENV) $(BIN)/framewatch config apply examples/demo.toml
	@echo "framewatch: callbacks on http://127.0.0.1:8080 (/callbacks/tencent, /callbacks/alibaba, /covers/, probes at"
	@echo "            /healthz /readyz), admin API and /metrics on http://127.0.0.1:8090. Next, in another terminal:"
	@echo "              make simulate   # 20 streams of screenshots through the pipeline, report at the end"
	$(DEMO_ENV) $(BIN)/framewatch run

simulate: install  ## play the provider and the platform against `make run` for 30 s
	$(BIN)/framewatch simulate --streams 20 --interval 1 --duration 30 --sink-port 9090 \
		--webhook-secret whsec_ZnJhbWV3YXRjaC1kZW1vLXdlYmhvb2stc2VjcmV0ISE=

bench-e2e: install  ## the simulator against the fleet, one process per stage (needs RabbitMQ)
	$(BIN)/python bench/e2e.py

bench-pipeline: install  ## CPU per screenshot: framewatch vs the same job written with Celery (needs RabbitMQ)
	$(BIN)/pip install --quiet -e ".[test,bench]"
	$(BIN)/python bench/pipeline.py

test: install  ## the whole suite against the real RabbitMQ, Redis and PostgreSQL
	$(BIN)/ruff check framewatch ingest workers schemas tests bench
	$(BIN)/ruff format --check --quiet framewatch ingest workers schemas tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q

bench-ingress: install  ## framewatch ingest (in-process and Redis window) vs the naive reference receiver (needs wrk)
	$(BIN)/python bench/ingress.py --rounds 3 --redis

clean:
	rm -rf $(VENV) data .pytest_cache
