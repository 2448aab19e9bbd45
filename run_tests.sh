#!/usr/bin/env bash
# Run the test suite, creating .venv and installing what it needs on first use.
#   ./run_tests.sh                 the default suite
#   ./run_tests.sh -k raft         any pytest arguments
#   ZMQNODE_SIM_SEEDS=20000 ./run_tests.sh tests/test_raft_sim.py   a longer simulation
set -euo pipefail
cd "$(dirname "$0")"
. scripts/ensure_venv.sh
ensure_venv test
exec "$VENV_PYTHON" -m pytest "$@"
