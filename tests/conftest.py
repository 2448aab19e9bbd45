"""Suite-wide settings."""

import os

# Clients in tests name their keys explicitly. Without this, a developer's
# ./run_cluster.sh keys (.cluster/keys) would be picked up by the CLI run
# against the tests' plaintext fake nodes (client.api.default_keys).
os.environ["ZMQNODE_KEYS"] = ""
