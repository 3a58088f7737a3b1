# make run   - set up everything on a fresh machine and serve the demo trial at http://127.0.0.1:8000
# make test  - the whole test suite (PostgreSQL and Redis when reachable, SQLite otherwise)
# make bench - the benchmarks, as a table
# make mutation - mutation testing of the modules that protect the trial (long; outside CI)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export TRIAL_VAR_DIR ?= $(CURDIR)/var

.PHONY: run test bench mutation lint typecheck messages install setup clean-var

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

setup: install
	mkdir -p var
	$(PY) manage.py ensure_encryption_key
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo

run: setup
	@echo "Serving the demo trial at http://127.0.0.1:8000 with a Celery worker and beat (Ctrl-C stops all)."
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.dev start

# The suite, then its race tests again with every CPU kept busy (scripts/test.sh).
test: install
	bash scripts/test.sh --with-busy-races $(PYTEST_ARGS)

bench: install
	bash scripts/bench.sh

# mutmut over randomisation, the allocation lists and the caseload (setup.cfg); scores per module at the end.
mutation: install
	bash scripts/mutation.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

# mypy with django-stubs (configured in mypy.ini); tests/test_typecheck.py runs it in `make test` too.
typecheck: install
	$(VENV)/bin/mypy .

# Re-extract the translatable strings (needs GNU gettext) after changing user-facing text.
messages: install
	$(PY) manage.py makemessages -l nb --no-obsolete --ignore=.venv --ignore=staticfiles --ignore=var --ignore=tests --ignore=bench
	$(PY) manage.py compilemessages -l nb --ignore=.venv
