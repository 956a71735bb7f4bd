# `make run` and `make test` work on a fresh machine: each creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench-ingress clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

run: install  ## apply the demo config and run the whole pipeline on 127.0.0.1:8080 (needs RabbitMQ)
	FRAMEWATCH_DELIVER_ALLOW_PRIVATE=true $(BIN)/framewatch config apply examples/demo.toml
	@echo "framewatch: POST signed CSS callbacks for domain demo.live (key demoKey123) to"
	@echo "            http://127.0.0.1:8080/callbacks/tencent ; probes at /healthz /readyz /metrics"
	FRAMEWATCH_DELIVER_ALLOW_PRIVATE=true $(BIN)/framewatch run

test: install  ## the whole suite against the real RabbitMQ, Redis and PostgreSQL
	$(BIN)/ruff check framewatch tests bench
	$(BIN)/pytest -q

bench-ingress: install  ## framewatch ingest vs the naive reference receiver (needs wrk)
	$(BIN)/python bench/ingress.py --rounds 3

clean:
	rm -rf $(VENV) data .pytest_cache
