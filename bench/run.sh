#!/usr/bin/env bash
# `make bench`: Turnpike against mosquitto on loopback; writes bench/results/<date>.md and charts.
#   bench/run.sh                       3 runs of every scenario (~50 min)
#   bench/run.sh --quick --runs 1      smoke test (~2 min)
#   bench/run.sh --scenarios b,d       some scenarios only; see bench/run.py --help
# Installs what is missing (mosquitto via scripts/install-deps.sh test, matplotlib in .venv-bench),
# builds release, then hands its arguments to bench/run.py. BENCH_BUILD=DIR builds with
# `swift build --scratch-path DIR` and runs DIR/release's binaries instead of .build/release's.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test

req=bench/requirements.txt
stamp=.venv-bench/.requirements
if [ ! -x .venv-bench/bin/python ] || ! cmp -s "$req" "$stamp"; then
    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
fi

if [ -n "${BENCH_BUILD:-}" ]; then
    swift build -c release --scratch-path "$BENCH_BUILD"
    export BENCH_BUILD
else
    swift build -c release
fi
exec .venv-bench/bin/python bench/run.py "$@"
