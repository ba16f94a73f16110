# Thin aliases over cargo; the logic lives in code and tests.

export PATH := env_var('PATH') + ":/usr/sbin"

# Start the registry on the embedded log (127.0.0.1:8080; set MODELREG_LISTEN to change).
run *ARGS:
    cargo run -p modelreg -- serve {{ARGS}}

# Everything CI checks: formatting, lints (warnings denied), and the whole test suite.
test: deps lint
    cargo fmt --all -- --check
    cargo build -p modelreg
    cargo test --workspace

# Benchmarks: ratios against raw baselines measured in the same run.
bench *ARGS: deps
    cargo run --release -p bench -- {{ARGS}}

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Tests and benchmarks start their own nats-server processes; install Debian's if missing.
deps:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v nats-server >/dev/null && exit 0
    command -v apt-get >/dev/null || { echo "install nats-server 2.9+ and retry" >&2; exit 1; }
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server
