# Run `make help` for the list of targets.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 20s
BIN       ?= bin

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: test
test: check ## Run every test with the race detector (needs redis-server; see .ci/run)
	$(GO) test -race -count=1 -timeout 14m $(PKGS)

.PHONY: check
check: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target (response decoders, snapshot codec) for FUZZTIME each (default 20s)
	@for p in ./dcsapi ./results; do \
	  for t in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
	    echo "== $$p $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; done; done

.PHONY: bench
bench: ## Run the benchmarks
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -benchtime 1x $(PKGS)

.PHONY: build
build: ## Build the binaries into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: sim
sim: ## Run the DCS simulator on the default inventory
	$(GO) run ./cmd/dcs-sim
