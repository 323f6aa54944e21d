#!/usr/bin/env bash
# Installs what building, running and testing Turnpike needs on Debian, and only what is missing:
# `apt-get update` runs only when a package has to be installed, so a second run is a no-op.
#   scripts/install-deps.sh         build and run dependencies
#   scripts/install-deps.sh test    also the test clients (mosquitto, paho-mqtt in .venv-test, kcat)
#                                   and a Kafka-protocol broker for the Kafka bridge tests
#                                   (noida-db in .venv-kafka), and PostgreSQL 15 for the
#                                   PostgreSQL bridge tests (the server is not on a fresh Debian),
#                                   and nats-server for the cluster tests, and chromium with
#                                   its driver for the dashboard test (Selenium in .venv-test)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libssl-dev librocksdb-dev libcurl4-openssl-dev librdkafka-dev libpq-dev libmicrohttpd-dev libnats-dev)
if [ "${1:-}" = test ]; then
    packages+=(mosquitto mosquitto-clients python3-venv kcat postgresql-15 nats-server chromium chromium-driver)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "error: no Swift toolchain on PATH; Turnpike needs Swift 6.0 or later (swift.org/install)" >&2
    exit 1
fi

if [ "${1:-}" = test ]; then
    req=Tests/integration/requirements.txt
    stamp=.venv-test/.requirements
    if [ ! -x .venv-test/bin/python ] || ! cmp -s "$req" "$stamp"; then
        python3 -m venv .venv-test
        .venv-test/bin/pip install -q --disable-pip-version-check -r "$req"
        cp "$req" "$stamp"
    fi
fi
if [ "${1:-}" = test ] && ! .venv-kafka/bin/python -c "import noida_db" 2>/dev/null; then
    python3 -m venv .venv-kafka
    .venv-kafka/bin/pip install -q --disable-pip-version-check noida-db==0.2.3
fi
