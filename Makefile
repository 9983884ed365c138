# Two commands do all the set-up: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.requirements-installed
DEV_STAMP := $(VENV)/.requirements-dev-installed

.PHONY: run test check api-fuzz migrate seed serve clean

# Runtime only: `make run` never installs a test or lint tool. The first install
# (torch among them) takes minutes, so pip shows its progress.
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

# Runtime plus development tools, for `make test` and `make check`.
$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $(DEV_STAMP)

# A local demo secret, made once and kept out of git (var/ is ignored).
var/secret_key:
	mkdir -p var
	$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key

# The demo's audit-checkpoint signing key (Ed25519: 32 random bytes), made once, kept out of git.
var/audit_signing_key:
	mkdir -p var
	$(PYTHON) -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())" > var/audit_signing_key

run: $(STAMP) var/secret_key var/audit_signing_key
	export SECRET_KEY="$$(cat var/secret_key)" HTTPS=false LOUPE_AUDIT_SIGNING_KEY="$$(cat var/audit_signing_key)"; \
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py collectstatic --noinput --verbosity 0 && \
	$(PY) manage.py seed_demo && \
	echo "" && echo "Loupe is starting on http://127.0.0.1:$(PORT)/  (Ctrl-C stops web, worker and beat)" && echo "" && \
	WEB_PORT=$(PORT) exec $(VENV)/bin/honcho start --procfile Procfile

# PYTHONDONTWRITEBYTECODE is cleared for the suite: some machines set it, and then every test
# process compiles the project and pytest rewrites every test module's asserts afresh (about 6 s of
# CPU per xdist worker, every run); cached, a second run collects in half the time.
test: $(DEV_STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest $(PYTEST_ARGS)

# What a reviewer checks (CI runs it before the tests): lint, format, the import
# contracts (.importlinter), no missing migration, and Django's deployment checklist,
# drf-spectacular's schema warnings included, with production-like settings and zero
# warnings. DATABASE_URL and CELERY_BROKER_URL are taken from the environment if set.
check: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	export DEBUG=false HTTPS=true ALLOWED_HOSTS=loupe.example.org \
		SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		LOUPE_AUDIT_SIGNING_KEY="$$($(PY) -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"; \
	$(PY) manage.py makemigrations --check --dry-run && \
	$(PY) manage.py check --deploy --fail-level WARNING

# schemathesis against the served OpenAPI schema: a throw-away seeded SQLite
# database, gunicorn on a free port, no 5xx and no answer outside its documented
# schema (.ci/api-fuzz; about 90 s, API_FUZZ_MAX_TIME bounds the fuzzing).
api-fuzz: $(DEV_STAMP)
	.ci/api-fuzz

clean:
	rm -rf var staticfiles
