# The two commands a newcomer needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
SWIFT ?= swift
PYTEST := .venv-test/bin/pytest

.PHONY: run test test-cluster deps test-deps build release unit integration clean fuzz bench bench-rules bench-durability bench-cluster bench-admin bench-sessions

## run: install what is missing, build release, make the development certificates when absent,
## start the broker on the embedded defaults (MQTT on 1883, TLS on 8883), or on CONFIG=FILE
## (e.g. make run CONFIG=examples/fleet/turnpike.toml: Kafka, PostgreSQL and webhook bridges)
run: release
	certs/make-dev-certs.sh
	.build/release/turnpike serve $(if $(CONFIG),--config $(CONFIG))

## test: install what is missing, then the unit tests, the integration tests, and the MQTT
## behaviour tests again against a three-node cluster on NATS (CLUSTER_TESTS)
CLUSTER_TESTS := $(addprefix Tests/integration/test_,publish.py subscribe.py retain.py session.py will.py shared.py v5_properties.py connect.py)
test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	TURNPIKE_BIN=$(CURDIR)/.build/debug/turnpike $(PYTEST) Tests/integration
	TURNPIKE_CLUSTER=3 TURNPIKE_BIN=$(CURDIR)/.build/debug/turnpike $(PYTEST) $(CLUSTER_TESTS)

## test-cluster: every integration test against three Turnpike nodes on a NATS cluster, each new
## connection on the next node (tests of one node's own state are skipped, with the reason)
test-cluster: test-deps build
	TURNPIKE_CLUSTER=3 TURNPIKE_BIN=$(CURDIR)/.build/debug/turnpike $(PYTEST) Tests/integration

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh test

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## unit / integration: one half of `make test` each
unit: test-deps
	$(SWIFT) test

integration: test-deps build
	TURNPIKE_BIN=$(CURDIR)/.build/debug/turnpike $(PYTEST) Tests/integration

clean:
	rm -rf .build

## fuzz: libFuzzer + ASan for FUZZ_SECONDS (default 60) on FUZZ_TARGET: codec (the MQTT decoder,
## default), record (the storage record reader), stored (the broker's stored records) or admin
## (the admin listener's request targets and routing)
fuzz: deps
	fuzz/run.sh $(or $(FUZZ_SECONDS),60) $(or $(FUZZ_TARGET),codec)

## bench: Turnpike against mosquitto, all scenarios (a)-(h), 3 runs (~60 min); results in bench/results/
bench: deps
	bench/run.sh

## bench-rules: rule evaluations per second per core (release build)
bench-rules: deps
	$(SWIFT) build -c release --product rulebench
	.build/release/rulebench

## bench-durability: what the durable store costs (Turnpike sync/periodic/none vs mosquitto with
## persistence), and restart time with 100,000 and 1,000,000 stored sessions (~10 min)
bench-durability: deps
	scripts/install-deps.sh test
	$(SWIFT) build -c release
	python3 bench/durability.py $(BENCH_ARGS)

## bench-cluster: what the NATS hop costs (a 3-server NATS cluster, Turnpike single node, same node
## and across nodes) and a model of 10,000,000 cars on 50 nodes (~5 min)
bench-cluster: deps
	scripts/install-deps.sh test
	$(SWIFT) build -c release
	python3 bench/cluster.py $(BENCH_ARGS)

## bench-admin: what the admin listener costs with 19,000 clients connected: broker CPU with a
## Prometheus scrape every second and with a dashboard tab open, GET /api/v5/clients?limit=100
## latency (~4 min); results in bench/results/<date>-admin.md
bench-admin: deps
	$(SWIFT) build -c release
	python3 bench/admin.py $(BENCH_ARGS)

## bench-sessions: 1,000,000 persistent sessions in one process on the broker's own session, topic-tree,
## routing and store code (release build, no sockets): memory per session, subscribe cost, routing cost
## at 10k/100k/1M (fails unless 1M/10k <= 1.5), then the 1M stored and recovered (~2 min, ~3 GB RAM);
## results in bench/results/<date>-sessions.md and .json
bench-sessions: deps
	$(SWIFT) build -c release --product sessionbench
	BENCH_REV=$$(git rev-parse --short HEAD) .build/release/sessionbench \
	  --markdown bench/results/$$(date -u +%F)-sessions.md --json bench/results/$$(date -u +%F)-sessions.json $(BENCH_ARGS)
