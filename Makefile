# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Both create .venv if there is none and install medcodec with its dependencies.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench evaluate clean install sysdeps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/medcodec demo

# DICOM validators used by tests/dicom/test_lossy.py (dciodvfy, dcmdjpeg, dcmdjpls): installed
# only as root with apt-get, never fatal (without them those tests skip locally and fail in CI).
sysdeps:
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	    && ! { command -v dciodvfy && command -v dcmdjpeg; } >/dev/null 2>&1; then \
	  apt-get install -y --no-install-recommends dcmtk dicom3tools >/dev/null 2>&1 \
	  || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends dcmtk dicom3tools >/dev/null 2>&1; } \
	  || echo "sysdeps: could not install dcmtk dicom3tools; continuing"; \
	fi

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
