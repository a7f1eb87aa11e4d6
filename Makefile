# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:4317

.PHONY: run test lint typecheck protos bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: start phimask on its embedded defaults and stream a demo feed through it
run: $(STAMP)
	@echo "phimask serving on $(LISTEN); demo feed follows (Ctrl-C stops both)"
	@$(BIN)/phimask serve --listen $(LISTEN) --state-dir .state & pid=$$!; \
	  trap 'kill -TERM $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/python -m bench.demo --target $(LISTEN)

## test: ruff, mypy and the whole pytest suite (which checks generated code is fresh)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache
