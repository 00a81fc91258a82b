#!/usr/bin/env bash
# Browser end-to-end test of Tessera's hosted sign-in, through the demo relying party.
#
# Builds the server, starts it on a free loopback port with a fresh data directory, waits
# until /readyz answers 200, runs the node:test suite in this directory against it with
# Debian's Chromium (installed here when missing), then stops the server and exits with
# the suite's status. TESSERA_DATABASE_URL, when set, reaches the server unchanged, so the
# same run works against PostgreSQL.
#
# The tests need the demo user and relying party, so TESSERA_DEMO=true is set.
#
# Usage: bash tests/e2e/run.sh        (from any directory)
# Screenshots land in tests/e2e/screenshots/ (ignored by git).
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
CHROMIUM="/usr/bin/chromium"
READY_TIMEOUT_SECS=60

log() { printf 'e2e: %s\n' "$*" >&2; }

# --- Chromium (Debian's; Playwright never downloads a browser here) -------------------
if [ ! -x "$CHROMIUM" ]; then
  log "installing Debian's chromium"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# --- Node dependencies (playwright-core only) ----------------------------------------
log "npm ci"
(cd "$E2E_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

# --- Server ---------------------------------------------------------------------------
log "cargo build --bin tessera"
(cd "$ROOT" && cargo build --quiet --bin tessera)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tessera"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
[ -x "$BIN" ] || { log "no server binary at $BIN"; exit 1; }

# A free loopback port: the kernel picks one, the probe socket is closed at once.
PORT="$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
')"
# localhost, not 127.0.0.1: WebAuthn needs a hostname as relying-party ID, and Chromium treats
# http://localhost as a secure context.
BASE_URL="http://localhost:$PORT"
DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tessera-e2e.XXXXXX")"
SERVER_LOG="$DATA_DIR/server.log"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  { wait "$SERVER_PID"; } 2>/dev/null || true
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting tessera at $BASE_URL (data dir $DATA_DIR${TESSERA_DATABASE_URL:+, database from TESSERA_DATABASE_URL})"
TESSERA_DATA_DIR="$DATA_DIR" \
TESSERA_BIND="127.0.0.1:$PORT" \
TESSERA_ISSUER="$BASE_URL" \
TESSERA_DEMO=true \
TESSERA_DEMO_REAUTHENTICATE_AFTER_SECS="${TESSERA_DEMO_REAUTHENTICATE_AFTER_SECS:-5}" \
  "$BIN" serve >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# Ready means /readyz answers 200 (database reachable, signing key loaded).
ready() {
  node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1));
  ' "$BASE_URL/readyz"
}
deadline=$((SECONDS + READY_TIMEOUT_SECS))
until ready; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the server exited before it was ready; its log:"
    cat "$SERVER_LOG" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "the server was not ready within ${READY_TIMEOUT_SECS}s; its log:"
    cat "$SERVER_LOG" >&2
    exit 1
  fi
  sleep 0.5
done
log "server ready"

# A second account for the passkey tests, so the demo user keeps its password-only shape.
PASSKEY_EMAIL="passkey@example.com"
PASSKEY_PASSWORD="passkey-user-password"
printf '%s\n' "$PASSKEY_PASSWORD" | TESSERA_DATA_DIR="$DATA_DIR" TESSERA_ISSUER="$BASE_URL" \
  "$BIN" user create --email "$PASSKEY_EMAIL" --name "Passkey User" --password-stdin >/dev/null
# An account the recovery test makes passkey-only and then recovers.
RECOVERY_EMAIL="recover@example.com"
RECOVERY_PASSWORD="recovery-user-password"
printf '%s\n' "$RECOVERY_PASSWORD" | TESSERA_DATA_DIR="$DATA_DIR" TESSERA_ISSUER="$BASE_URL" \
  "$BIN" user create --email "$RECOVERY_EMAIL" --name "Recovery User" --password-stdin >/dev/null

# --- Tests ----------------------------------------------------------------------------
# The server's log is kept next to the screenshots (both ignored by git); nothing is printed
# after the test run, so the output ends with node's pass/fail summary.
ARTIFACTS="$E2E_DIR/screenshots"
mkdir -p "$ARTIFACTS"
log "screenshots and the server log (after the run) go to $ARTIFACTS"
status=0
(cd "$E2E_DIR" && TESSERA_URL="$BASE_URL" CHROMIUM_PATH="$CHROMIUM" \
  PASSKEY_EMAIL="$PASSKEY_EMAIL" PASSKEY_PASSWORD="$PASSKEY_PASSWORD" \
  RECOVERY_EMAIL="$RECOVERY_EMAIL" RECOVERY_PASSWORD="$RECOVERY_PASSWORD" \
  node --test --test-concurrency=1 signin.test.mjs passkeys.test.mjs qr.test.mjs admin.test.mjs recovery.test.mjs signup.test.mjs upstream.test.mjs) || status=$?
cp "$SERVER_LOG" "$ARTIFACTS/server.log" 2>/dev/null || true
exit "$status"
