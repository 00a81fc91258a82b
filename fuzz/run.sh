#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS each, default 20) on the
# stable toolchain, and exits non-zero on the first crash, leak or timeout libFuzzer reports.
# Crashing inputs are left in fuzz/artifacts/<target>/; add them to fuzz/corpus/<target>/
# once fixed, so tests/fuzz_corpus.rs keeps them fixed.
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets the stable
# compiler accept them. New inputs found go to a scratch corpus, never into the committed one.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(authorization_request token_request client_auth jwt redirect_uri cookie)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    started=$(date +%s)
    cargo install cargo-fuzz --locked
    echo "cargo-fuzz installed in $(( $(date +%s) - started )) s"
fi

export RUSTC_BOOTSTRAP=1
# One build for all targets, kept in fuzz/target (git-ignored).
cargo fuzz build --sanitizer address

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target" "artifacts/$target"
    echo "== fuzzing $target for ${seconds}s"
    # First corpus directory receives new inputs; the committed seeds are read only.
    if ! cargo fuzz run --sanitizer address "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        2>"$scratch/$target.log"; then
        tail -n 60 "$scratch/$target.log"
        echo "fuzz target $target FAILED (artifacts in fuzz/artifacts/$target/)"
        exit 1
    fi
    grep -E "stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done" \
        "$scratch/$target.log" || tail -n 3 "$scratch/$target.log"
done
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, no crash"
