#!/usr/bin/env bash
# The project's test command: makes sure the local AWS emulator the tests
# use is installed, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
FAKECLOUD_VERSION=0.51.0
if [ -z "${FAKECLOUD_BIN:-}" ] && ! command -v fakecloud >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/fakecloud" ]; then
  echo "Installing fakecloud $FAKECLOUD_VERSION, the local AWS emulator the tests use (about 25 minutes the first time on 2 cores)..." >&2
  cargo install fakecloud --version "$FAKECLOUD_VERSION" --locked
fi
# Incremental state is gigabytes and a one-shot run never reuses it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
exec cargo test --locked "$@"
