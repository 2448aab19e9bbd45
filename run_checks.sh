#!/usr/bin/env bash
# Lint, formatting, types and the layer contract, creating .venv and installing
# the dev tools (setup.cfg's `dev` extra) on first use. Stops at the first check
# that fails. CI (.ci/run) runs it before the tests.
#   ./run_checks.sh
set -euo pipefail
cd "$(dirname "$0")"
. scripts/ensure_venv.sh
ensure_venv dev
BIN="$(dirname "$VENV_PYTHON")"

# Everything with Python in it; harness/ only once it exists (the cluster
# harness moving out of bench/).
paths=()
for p in zmqnode client bench tests harness; do
  if [ -e "$p" ]; then paths+=("$p"); fi
done

# check NAME HINT COMMAND...: run COMMAND; on failure say which check failed and
# how to fix it, and stop.
check() {
  local name="$1" hint="$2"
  shift 2
  echo "== $name: ${*#"$BIN/"}" >&2
  if ! "$@"; then
    echo >&2
    echo "run_checks.sh: the $name check failed. $hint" >&2
    exit 1
  fi
}

check lint "Fix the findings above (.venv/bin/ruff check --fix PATH fixes some)." \
  "$BIN/ruff" check "${paths[@]}"
check format "Run .venv/bin/ruff format on the files listed above." \
  "$BIN/ruff" format --check "${paths[@]}"
check types "Fix the mypy errors above (configuration: [tool.mypy] in pyproject.toml)." \
  "$BIN/mypy" zmqnode client
if grep -q '^\[tool\.importlinter\]' pyproject.toml; then
  check layers "An import breaks a layer contract ([tool.importlinter] in pyproject.toml)." \
    "$BIN/lint-imports"
fi
echo "run_checks.sh: every check passed" >&2
