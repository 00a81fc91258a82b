#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, bans and sources, which need only Cargo.lock.
# Installs cargo-deny when missing (a build from crates.io: several minutes on 2 cores).
# The advisories check needs the RustSec database from GitHub; it runs only when
# DENY_ADVISORIES=1 (on a machine that reaches GitHub), see README "Dependency policy".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deny >/dev/null 2>&1; then
    started=$(date +%s)
    cargo install cargo-deny --locked
    echo "cargo-deny installed in $(( $(date +%s) - started )) s"
fi

checks=(licenses bans sources)
if [ "${DENY_ADVISORIES:-0}" = "1" ]; then
    checks+=(advisories)
fi
cargo deny --log-level error check --hide-inclusion-graph --show-stats "${checks[@]}"
