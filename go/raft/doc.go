// Package raft is the Raft consensus algorithm as a pure state machine
// (sans-IO), a port of the Python core zmqnode/raft.
//
// A Core never touches a socket, a file, the clock or global randomness.
// Its caller feeds it Tick, Step, Propose and ReadIndex, then collects a
// Ready (what to persist, send, apply) and reports back with Advance. The
// same Core runs under the Go node's event loop and under the Python
// deterministic simulator (through go/simcore).
//
// The role is a function value, as in etcd-io/raft: becomeFollower,
// becomePreCandidate, becomeCandidate and becomeLeader set c.stepRole;
// Step first handles what every role shares (terms, votes), then hands
// over. Section numbers refer to the Raft paper (§) and Ongaro's thesis.
//
// Heartbeats go out as one broadcast (the node's PUB socket) carrying the
// term, the leader's commit index and a sequence number; followers answer on
// the RPC path. A broadcast cannot carry each follower's own commit bound, so
// a follower advances its commit from a heartbeat only up to confirmedIndex:
// the last index that an AppendEntries of the current term proved identical
// to the leader's log.
//
// Every decision is the Python core's: the same messages in the same order,
// the same progress states, the same membership rules, so that Python and Go
// nodes can share one cluster and one simulator. Membership.Encode is
// byte-identical to Python's Membership.encode(), because the bytes travel in
// CONFIG entries and snapshots between implementations.
//
// Errors: where the Python core raises LogInvariantError, Step, Advance,
// Compact and NewCore return an *InvariantError (a node must stop then); a
// CONFIG entry whose data is not an encoded membership gives a
// *MembershipError. Internally these travel as panics of a private type and
// are recovered at the exported method; nothing panics out of the package
// for them.
//
// Ownership: the core keeps the Entries (and their Data) of a message passed
// to Step, and the byte slices in a Ready (entry data, snapshots) may be
// shared with its log; callers treat both as read-only. Propose copies its
// data. HasReady is not a pure query: like Python's has_ready it first
// batches pending appends and due heartbeats, so callers that want the same
// messages as a Python core call it at the same points.
//
// Options.Mutations switches on deliberate bugs (the Python simulator's
// tests/sim/mutations.py), so that the simulator can prove it notices when
// the Go core breaks a rule; see MutationNames.
package raft
