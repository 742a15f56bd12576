# shellcheck shell=bash
# Installs the real Kafka clients the broker's integration tests drive, and exports where
# they are. Sourced (not run) by scripts/test.sh, which has `set -euo pipefail` active:
#
#   source scripts/install-test-clients.sh
#
# * kcat from Debian (`apt-get install kcat`; Debian 12 ships kcat 1.7.1 on librdkafka
#   2.0.2, an older client that is strict about tagged fields) -> GREGOR_KCAT.
# * a virtualenv with kafka-python (pure Python, plus the lz4, zstandard and python-snappy
#   codecs it needs to read compressed batches) and confluent-kafka (whose wheel bundles a
#   current librdkafka) -> GREGOR_CLIENTS_VENV (default: $PWD/target/clients-venv).
# * Shopify's Sarama from Debian (`golang-github-shopify-sarama-dev` 1.22.1, a Go client of
#   the Kafka 0.10-2.1 era, with its dependencies as Debian source packages under
#   /usr/share/gocode) and Debian's Go (`golang-go` 1.19) -> GREGOR_GO and
#   GREGOR_SARAMA_GOPATH. The tests build their driver from these offline, in GOPATH mode
#   (broker/tests/support/sarama.rs).
#
# Idempotent: a second run only checks what is there (well under a second). Needs root (or
# sudo) for apt-get only when kcat, Go, Sarama or python3-venv is missing. Wheels only, no
# builds.

# Everything happens in a function so the caller's shell gets no stray variables.
_gregor_install_test_clients() {
    # Pinned versions; bump them together and the venv is rebuilt on the next run.
    local -a requirements=(
        "kafka-python==3.0.12"
        "confluent-kafka==2.16.1"
        "lz4==4.4.5"
        "zstandard==0.25.0"
        "python-snappy==0.7.3"
        "cramjam==2.14.0"
        # kafka-python's lz4 for magic 0 message sets (api_version 0.8/0.9) hashes the
        # frame descriptor the way Kafka before 0.10 did, with xxhash.
        "xxhash==3.6.0"
    )
    local venv="${GREGOR_CLIENTS_VENV:-$PWD/target/clients-venv}"
    local python="${GREGOR_PYTHON:-python3}"
    local sudo=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    fi

    # apt-get install, refreshing the package lists first only if the package is unknown.
    _gregor_apt_install() {
        local package="$1"
        if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            echo "install-test-clients: apt-get update (no candidate for $package)"
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        fi
        echo "install-test-clients: apt-get install $package"
        $sudo env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "$package" >/dev/null
    }

    # 1. kcat (Debian's build, with its own librdkafka).
    if ! command -v kcat >/dev/null 2>&1; then
        _gregor_apt_install kcat
    fi
    GREGOR_KCAT="$(command -v kcat)"

    # 2. Sarama (Go sources) and the Go toolchain that builds the tests' driver from them.
    local gopath="${GREGOR_SARAMA_GOPATH:-/usr/share/gocode}"
    if [ ! -d "$gopath/src/github.com/Shopify/sarama" ]; then
        _gregor_apt_install golang-github-shopify-sarama-dev
    fi
    if ! command -v go >/dev/null 2>&1 && [ -z "${GREGOR_GO:-}" ]; then
        _gregor_apt_install golang-go
    fi
    GREGOR_GO="${GREGOR_GO:-$(command -v go)}"
    GREGOR_SARAMA_GOPATH="$gopath"

    # 3. the virtualenv with the Python clients.
    local stamp="$venv/.gregor-requirements"
    local wanted
    wanted="$("$python" -c 'import sys; print(sys.version.split()[0])') ${requirements[*]}"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        # `python3 -m venv` needs ensurepip, which Debian splits into python3-venv.
        if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
            _gregor_apt_install python3-venv
        fi
        echo "install-test-clients: creating $venv"
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv --clear "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --only-binary=:all: "${requirements[@]}"
        printf '%s\n' "$wanted" >"$stamp"
    fi
    # Fail here, not in the middle of the tests, if anything is missing.
    "$venv/bin/python" -c 'import kafka, confluent_kafka, lz4.frame, zstandard, snappy'
    GREGOR_CLIENTS_VENV="$venv"

    local kcat_version
    kcat_version="$("$GREGOR_KCAT" -V 2>&1 |
        sed -n 's/^Version \([0-9.]*\).*librdkafka \([0-9.]*\).*/kcat \1, librdkafka \2/p' || true)"
    echo "install-test-clients: kcat: $GREGOR_KCAT (${kcat_version:-unknown version})"
    local sarama_version
    sarama_version="$(dpkg-query -W -f '${Version}' golang-github-shopify-sarama-dev 2>/dev/null ||
        echo unknown)"
    echo "install-test-clients: Sarama $sarama_version ($GREGOR_SARAMA_GOPATH)," \
        "$("$GREGOR_GO" version)"
    "$venv/bin/python" -c 'import kafka, confluent_kafka
print("install-test-clients: kafka-python", kafka.__version__,
      "| confluent-kafka", confluent_kafka.__version__,
      "(librdkafka", confluent_kafka.libversion()[0] + ")")'
    unset -f _gregor_apt_install
}

_gregor_install_test_clients
unset -f _gregor_install_test_clients
export GREGOR_CLIENTS_VENV GREGOR_KCAT GREGOR_GO GREGOR_SARAMA_GOPATH
