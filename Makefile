# Tether — run `make` (or `make help`) to list the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
GO ?= go
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION = 1

.PHONY: help dev test test-deps test-go test-cdk lint bench fuzz docs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

dev: ## run the whole stack locally on embedded defaults
	$(GO) run ./cmd/tetherctl dev

test: test-deps lint test-go test-cdk ## run every test in every module (installs test tools first)

test-deps: ## bring up what tests need (PostgreSQL, chromium, poppler, fauxqs, CDK CLI, moto, cfn-lint, checkov, schemathesis), idempotently
	@scripts/test-deps.sh

test-go: ## the product module's tests, PostgreSQL- and browser-backed ones included
	$(GO) test -count=1 -timeout 30m ./...

test-cdk: ## synthesize the CDK apps (deploy/cdk, deploy/plane) and check their templates
	@if [ -f deploy/cdk/go.mod ]; then cd deploy/cdk && $(GO) test -count=1 -timeout 30m ./...; fi
	@if [ -f deploy/plane/go.mod ]; then cd deploy/plane && $(GO) test -count=1 -timeout 30m ./...; fi

lint: ## gofmt and go vet on every module
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if [ -f deploy/cdk/go.mod ]; then cd deploy/cdk && $(GO) vet ./...; fi
	@if [ -f deploy/plane/go.mod ]; then cd deploy/plane && $(GO) vet ./...; fi

bench: ## run the benchmarks under bench/ and print ratios against their baselines
	@for s in bench/*.sh; do [ -x "$$s" ] && "$$s"; done

docs: ## regenerate the generated documents and sections: docs/iam.md, docs/preflight.md, the payload fields (docs/support.md) and the keys of deployment.yaml (docs/deployment-config.md)
	$(GO) test -count=1 ./internal/ctl -run '^(TestIAMDoc|TestPreflightDoc)$$' -update
	$(GO) test -count=1 ./internal/doccheck -run '^TestGeneratedSections$$' -update

fuzz: ## run each fuzz target for a short while (FUZZTIME=30s by default)
	@scripts/fuzz-all.sh $${FUZZTIME:-30s}
