# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Both create .venv if there is none and install medcodec with its dependencies.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Independent DICOM/JPEG validators the conformance tests run, and the browser the viewer tests
# drive through Playwright (Debian chromium at /usr/bin/chromium; Playwright never downloads one),
# and Orthanc + its DICOMweb plugin, the peer the delivery benchmark runs on the same study and link.
# Installed when root + apt.
# (libatomic1: the node that Playwright's driver runs needs it, and a minimal Debian has none.)
SYSPKGS := dcmtk dicom3tools libgdcm-tools chromium libatomic1 orthanc orthanc-dicomweb unzip postgresql openssl nginx
# Services those packages start and enable on a systemd machine. The tests start their own
# instances; one that was neither enabled nor running before the install is stopped and disabled
# after it (Orthanc's held ports 8042 and 4242, nginx port 80); one a site runs is left alone.
SYSSERVICES := orthanc nginx postgresql

.PHONY: demo test lint bench evaluate clean install sysdeps jsdeps venvdeps

# $(call APT_INSTALL,packages): apt-get install as root, the package lists updated and the install
# tried again if it fails; its output in the recipe's $$log (a mktemp file), shown when it fails.
APT_INSTALL = { apt-get install -y --no-install-recommends $(1) \
	|| { apt-get update && apt-get install -y --no-install-recommends $(1); }; } >"$$log" 2>&1

# A minimal Debian / Ubuntu has python3 without its venv module (python3-venv): installed when
# root + apt, else one line says what to install. A venv that fails half-made (no pip) is removed,
# so the next `make` starts over instead of failing on "No module named pip".
$(BIN)/python:
	@$(PYTHON) -c "import ensurepip, venv" >/dev/null 2>&1 || $(MAKE) --no-print-directory venvdeps
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip || { rm -rf $(VENV); exit 1; }

venvdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing python3-venv (python3 has no venv module)"; log=$$(mktemp); \
	  $(call APT_INSTALL,python3-venv) || { echo "could not install python3-venv:"; tail -n 5 "$$log"; rm -f "$$log"; exit 1; }; \
	  rm -f "$$log"; \
	else \
	  echo "$(PYTHON) has no venv module: install it first (Debian / Ubuntu: sudo apt-get install python3-venv)"; exit 1; \
	fi

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"
	$(BIN)/python -m medcodec.codec.warmup  # compile the numba kernels once (a few minutes on 2 cores), not on the first command
	$(BIN)/python -c "from medcodec.dicom._mapping_kernels import warm; warm()"  # and the series mapping's two
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/medcodec demo  # the codec on real images, then delivery: ingest, serve on 127.0.0.1, download raw vs compressed

# DICOM validators used by tests/dicom/test_lossy.py (dciodvfy, dcmdjpeg, dcmdjpls): installed
# only as root with apt-get, never fatal (without them those tests skip locally and fail in CI).
sysdeps:
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	    && ! { command -v unzip && command -v openssl && ls /usr/lib/postgresql/*/bin/initdb && command -v dciodvfy && command -v dcmdjpeg && command -v gdcmconv && command -v chromium \
	         && command -v Orthanc && command -v nginx && test -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so && dpkg -s libatomic1; } >/dev/null 2>&1; then \
	  fresh=""; if [ -d /run/systemd/system ]; then for s in $(SYSSERVICES); do \
	    systemctl is-enabled --quiet $$s 2>/dev/null || systemctl is-active --quiet $$s 2>/dev/null || fresh="$$fresh $$s"; \
	  done; fi; \
	  log=$$(mktemp); $(call APT_INSTALL,$(SYSPKGS)) \
	  || { echo "sysdeps: could not install $(SYSPKGS); tests that need them skip (fail in CI). apt-get said:"; tail -n 5 "$$log"; }; \
	  rm -f "$$log"; \
	  if [ -n "$$fresh" ] && [ -d /run/systemd/system ] && systemctl disable --now $$fresh >/dev/null 2>&1; then \
	    echo "sysdeps: stopped and disabled the services of packages installed just now, tools for the tests:$$fresh"; \
	  fi; \
	fi

# The JavaScript DICOMweb client OHIF uses (tests/service/test_js_dicomweb_client.py), versions
# pinned in tests/js/package.json, from the npm registry with the machine's node (Debian's npm and
# nodejs installed when there is no npm, as root + apt); never fatal (without it that test skips
# locally and fails in CI).
jsdeps:
	-@if ! command -v npm >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  log=$$(mktemp); $(call APT_INSTALL,npm) || { echo "jsdeps: could not install npm. apt-get said:"; tail -n 5 "$$log"; }; \
	  rm -f "$$log"; \
	fi
	-@if command -v npm >/dev/null 2>&1 && [ ! -d tests/js/node_modules/dicomweb-client ]; then \
	  npm install --prefix tests/js --no-audit --no-fund --silent >/dev/null 2>&1 \
	  || echo "jsdeps: npm install --prefix tests/js failed; the JavaScript client test skips (fails in CI)"; \
	fi

# ruff (lint + format) and mypy (strict, configured in pyproject.toml) on src/, before the tests.
lint: $(STAMP)
	$(BIN)/python -m ruff check src tests
	$(BIN)/python -m ruff format --check src
	$(BIN)/python -m mypy

test: $(STAMP) sysdeps jsdeps lint
	$(BIN)/python -m pytest

# Every benchmark that prints an issue's targets as ratios to peers measured in the same run
# (~15 min on 2 cores; benchmarks/README.md). Results go to the terminal; each script's --markdown
# refreshes its own section of docs/benchmarks.md and leaves the rest of the page alone.
bench: $(STAMP) sysdeps
	$(BIN)/python benchmarks/run.py                          # every codec against every peer, ~1.5 min
	$(BIN)/python benchmarks/bench_jpeg_vs_libjpeg_turbo.py  # issue 11: standard JPEG vs libjpeg-turbo
	$(BIN)/python benchmarks/bench_mdc2.py --frames 6 --only "v2.12 default"  # issue 12: .mdc vs OpenJPEG
	$(BIN)/python benchmarks/check_mdc_unseen.py --default    # issue 12 on pydicom-data's images
	$(BIN)/python benchmarks/bench_speed.py                   # one- and two-thread speed, RSS, CLI start
	$(BIN)/python benchmarks/bench_delivery.py                # issue 9: raw / pre-computed / live / Orthanc

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis tests/js/node_modules demo-out
