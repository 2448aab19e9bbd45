#!/usr/bin/env bash
# Run the test suite, creating .venv and installing what it needs on first use.
#   ./run_tests.sh                                 the whole suite (what CI runs)
#   ./run_tests.sh -m "not process and not slow"   the one-minute loop: no node process
#   ./run_tests.sh -k raft                         any pytest arguments
#   ./run_tests.sh --fuzz-seed random              the port fuzzer under a new seed
#   ZMQNODE_SIM_SEEDS=20000 ./run_tests.sh -m sim  a longer simulation
#   ZMQNODE_IMPLS=py,go,py ./run_tests.sh -m conformance   the conformance suite, mixed
# Under CI (CI set) with no arguments: the whole suite, then the conformance
# suite again on mixed clusters, Python, Go, Python and then Python, Go,
# Kotlin (the original's section 4); all must pass.
# Markers and seeds: README.md, "Running the tests".
# As root, it installs iptables (and iproute2) when missing, for the
# network-partition tests: scripts/ensure_system.sh.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/ensure_venv.sh
. scripts/ensure_system.sh
ensure_venv test
ensure_system_packages
if [ -z "${CI:-}" ] || [ $# -gt 0 ]; then
  exec "$VENV_PYTHON" -m pytest "$@"
fi
default=0 mixed=0 three=0
"$VENV_PYTHON" -m pytest || default=$?
echo "== the conformance suite again, mixed: ZMQNODE_IMPLS=py,go,py pytest -m conformance" >&2
ZMQNODE_IMPLS=py,go,py "$VENV_PYTHON" -m pytest -m conformance || mixed=$?
echo "== and with all three languages: ZMQNODE_IMPLS=py,go,kotlin pytest -m conformance" >&2
ZMQNODE_IMPLS=py,go,kotlin "$VENV_PYTHON" -m pytest -m conformance || three=$?
echo "== default suite: exit $default; mixed py,go,py: exit $mixed; mixed py,go,kotlin: exit $three" >&2
if [ "$default" -ne 0 ]; then exit "$default"; fi
if [ "$mixed" -ne 0 ]; then exit "$mixed"; fi
exit "$three"
