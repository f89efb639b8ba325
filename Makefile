# The two quick-start commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV_LINK_MODE ?= copy
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1  # the browser tests drive Debian's chromium (make services)

.PHONY: run test deps services lint typecheck imports docs validate pytest bench load stages eval clean cli demo

deps:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: deps  ## serve the API on http://127.0.0.1:$PORT (8000) with the embedded default; it prints its URL and first steps
	$(UV) run ragapi serve

cli: deps  ## the `ragapi` command, wherever uv is: make cli ARGS='tenants create "Acme" --json'
	@$(UV) run ragapi $(ARGS)

demo: deps  ## load the public-domain documents of examples/demo into a tenant "Demo" and ask a first question
	@$(UV) run python -m ragapi.api.demo examples/demo

test: deps services lint typecheck imports docs pytest  ## lint, types, import rules, the docs site, and the tests with the coverage gate

services:  ## Debian servers the tests start themselves (redis-server, rabbitmq-server, prometheus, nginx), and chromium
	@scripts/test-services.sh

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck:
	$(UV) run mypy

imports:  ## the import rules in pyproject.toml ([tool.importlinter]): dependencies point inward
	$(UV) run lint-imports

docs:  ## the documentation site (mkdocs.yml, docs/) into site/; strict: a warning or a broken link fails it
	NO_MKDOCS_2_WARNING=1 $(UV) run mkdocs build --strict --site-dir site

validate:  ## Dockerfile (hadolint), compose and workflow schemas, kustomize + Kubernetes schemas, offline
	$(UV) run pytest -q -p no:cacheprovider --no-cov tests/deploy/test_manifests.py

pytest:
	$(UV) run pytest --cov --cov-report=term --cov-fail-under=80

bench: deps  ## retrieval quality and speed on SciFact (see docs/benchmarks.md)
	$(UV) run python bench/run_scifact.py

load: deps  ## locust: 100 users for 3 minutes against a locally started service (docs/benchmarks.md)
	$(UV) run python bench/run_load.py

stages: deps  ## each query stage alone, at 1 and 100 concurrent requests
	$(UV) run python bench/stage_bench.py

clean:
	rm -rf .ragapi .pytest_cache .mypy_cache .ruff_cache .coverage site
