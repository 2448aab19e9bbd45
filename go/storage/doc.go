// Package storage is the Go node's durable storage: the same directory
// layout and the same bytes as the Python node's zmqnode/storage, so that a
// storage directory means the same thing to both implementations.
//
//	<storage-dir>/
//	  raft_state.json      term and vote (hardstate.go)
//	  raft.log             the Raft log (logfile.go)
//	  snapshot/            the latest snapshot, snapshot.bin (snapshot.go)
//	  models/<id>.bin      model files (models.go)
//	  joined_at            the JOIN's index, the vote floor (smallfiles.go)
//	  member_keys          the member allow-list shared with the trainer
//	  worker_<port>.log    the node's log lines (the monitor's /logs)
//
// NodeStorage is what the node's event loop talks to: Open once at start-up,
// Persist for every Ready, Compact after the state machine took a snapshot.
// Every method returns only once what it wrote is durable.
//
// Errors mirror zmqnode/storage/errors.py: *CorruptionError (Python's
// StorageCorruption) means bytes on disk fail a check and the node must not
// start from them; *BrokenError (StorageBroken) means an earlier write or
// fsync failed and the object refuses further use. SPEC_NOTES.md records
// where the Python code was the only specification.
package storage
