# domo: build, test and check. `make help` lists the targets.

GO          ?= go
FUZZTIME    ?= 30s
# package:target pairs: the wire decoders of MDP and of ZMTP
FUZZ_TARGETS := ./mdp/:FuzzParse ./mdp/:FuzzHeaders ./mdp/:FuzzEnvelope ./mdp/:FuzzUnpack \
	./internal/zmtp/:FuzzParse ./internal/zmtp/:FuzzMetadata ./journal/sqlite/:FuzzSegment
STATICCHECK_VERSION ?= latest
COVERPROFILE ?= cover.out

# System packages: a C compiler and libzmq for cgo (pebbe/zmq4, the journal's SQLite), pyzmq for the interop tests,
# PostgreSQL for the journal's tests (make test-postgres).
APT_PACKAGES := gcc libc6-dev libzmq3-dev pkg-config python3-zmq iproute2 postgresql chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help build test test-postgres race fuzz bench bench-e2e compare lint tidy cover deps demo clean

help:
	@echo 'targets:'
	@echo '  deps    install system packages with apt ($(APT_PACKAGES))'
	@echo '  build   build bin/domo'
	@echo '  test    run the whole test suite with the race detector'
	@echo '  test-postgres  the journal tests against a throwaway PostgreSQL (scripts/postgres-test.sh)'
	@echo '  race    same as test'
	@echo '  fuzz    run each fuzz target (the MDP and ZMTP decoders, the journal's segments) for FUZZTIME ($(FUZZTIME))'
	@echo '  bench   run the benchmarks'
	@echo '  bench-e2e  end-to-end load, one process per role (scripts/bench-e2e.sh)'
	@echo '  compare  domo against NATS and the floors, same work (bench/; COMPARE_FLAGS=-quick for a smoke run)'
	@echo '  lint    gofmt, go vet, staticcheck (skipped if it cannot be installed)'
	@echo '  tidy    go mod tidy; fail if go.mod or go.sum changed'
	@echo '  cover   test with coverage into $(COVERPROFILE)'
	@echo '  demo    run a broker with the example services'

build:
	$(GO) build -o bin/domo ./cmd/domo

# The whole suite; the journal's PostgreSQL tests get a throwaway cluster
# when Debian's postgresql is installed (make deps) and DOMO_TEST_POSTGRES
# names none, and skip otherwise.
test:
	@set -e; \
	if [ -z "$$DOMO_TEST_POSTGRES" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		eval "$$(scripts/postgres-test.sh start)"; \
		trap 'scripts/postgres-test.sh stop "$$DOMO_TEST_POSTGRES_DIR"' EXIT; \
	fi; \
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'TestOneTurnPerSequentialCall' ./client # scheduling-sensitive: built without -race

race: test

# The journal's tests with a throwaway PostgreSQL cluster (Debian's postgresql).
test-postgres:
	@set -e; eval "$$(scripts/postgres-test.sh start)"; \
	trap 'scripts/postgres-test.sh stop "$$DOMO_TEST_POSTGRES_DIR"' EXIT; \
	$(GO) test -race -count=1 ./journal/...

fuzz:
	@set -e; for pt in $(FUZZ_TARGETS); do \
		p=$${pt%%:*}; t=$${pt#*:}; \
		if ! $(GO) test -list "^$$t\$$" $$p | grep -qx "$$t"; then \
			echo "fuzz: no target $$t in $$p" >&2; exit 1; \
		fi; \
		echo "== $$p $$t ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) $$p; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

# End to end, one process per role on 127.0.0.1 (see docs/benchmarks.md).
bench-e2e: build
	scripts/bench-e2e.sh

# domo against NATS request-reply and the floors (a Go TCP relay, a raw libzmq
# echo), the same work, systems interleaved: bench/ is its own Go module.
COMPARE_FLAGS ?=
compare:
	cd bench && $(GO) run . $(COMPARE_FLAGS)


lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then \
		echo "gofmt: these files need formatting:" >&2; echo "$$out" >&2; exit 1; \
	fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then \
		echo staticcheck ./...; staticcheck ./...; \
	elif GOBIN="$(CURDIR)/bin" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); then \
		echo bin/staticcheck ./...; "$(CURDIR)/bin/staticcheck" ./...; \
	else \
		echo "lint: staticcheck could not be installed; skipped" >&2; \
	fi

tidy:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

cover:
	$(GO) test -race -count=1 -covermode=atomic -coverprofile=$(COVERPROFILE) ./...
	$(GO) tool cover -func=$(COVERPROFILE) | tail -n 1
	@echo 'HTML report: $(GO) tool cover -html=$(COVERPROFILE)'

deps:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES)

demo:
	$(GO) run ./cmd/domo demo

clean:
	rm -rf bin $(COVERPROFILE)
