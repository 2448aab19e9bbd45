package raft

// What a leader knows about one follower's log, and how fast it may send.
//
// Three states, as in etcd-io/raft's tracker/progress.go:
//
//   - probe: we do not know where the follower's log agrees with ours; send
//     one append at a time and wait for the answer (or the next heartbeat
//     reply).
//   - replicate: the follower is in step; stream appends optimistically, at
//     most MaxInflight unacknowledged messages at once.
//   - snapshot: the entries it needs are compacted away; an InstallSnapshot
//     is on its way and nothing else is sent until it is answered.

// ProgressState is how the leader sends to one follower.
type ProgressState int

const (
	ProgressProbe ProgressState = iota
	ProgressReplicate
	ProgressSnapshot
)

// String returns Python's ProgressState value.
func (s ProgressState) String() string {
	switch s {
	case ProgressProbe:
		return "probe"
	case ProgressReplicate:
		return "replicate"
	case ProgressSnapshot:
		return "snapshot"
	}
	return "unknown"
}

// SnapshotRetryHeartbeats is how many heartbeat replies to wait for a lost
// InstallSnapshot before sending it again.
const SnapshotRetryHeartbeats = 10

// progress is the leader's view of one follower: match (highest index known
// stored there), next (next index to send), its state, the appends in
// flight, and whether it answered lately (check-quorum) and which heartbeat
// it last echoed (read index).
type progress struct {
	match, next     uint64
	state           ProgressState
	probeSent       bool
	pendingSnapshot uint64
	snapshotWait    int
	inflight        []uint64 // last index of each unacknowledged append
	recentActive    bool     // answered since the last check-quorum round
	readAck         uint64   // highest heartbeat sequence number it echoed
}

func newProgress(next uint64) *progress {
	return &progress{next: next}
}

func (p *progress) isPaused(maxInflight int) bool {
	switch p.state {
	case ProgressProbe:
		return p.probeSent
	case ProgressReplicate:
		return len(p.inflight) >= maxInflight
	}
	return true
}

func (p *progress) becomeProbe() {
	if p.state == ProgressSnapshot {
		p.next = maxU64(p.match+1, p.pendingSnapshot+1)
	} else {
		p.next = p.match + 1
	}
	p.state = ProgressProbe
	p.probeSent = false
	p.pendingSnapshot = 0
	p.inflight = nil
}

func (p *progress) becomeReplicate() {
	p.state = ProgressReplicate
	p.next = p.match + 1
	p.probeSent = false
	p.pendingSnapshot = 0
	p.inflight = nil
}

func (p *progress) becomeSnapshot(snapshotIndex uint64) {
	p.state = ProgressSnapshot
	p.pendingSnapshot = snapshotIndex
	p.snapshotWait = 0
	p.inflight = nil
}

// sent records an append just sent whose last entry is lastIndex.
func (p *progress) sent(lastIndex uint64, entryCount int) {
	if p.state == ProgressReplicate {
		if entryCount > 0 {
			p.next = lastIndex + 1
			p.inflight = append(p.inflight, lastIndex)
		}
	} else {
		p.probeSent = true
	}
}

// maybeUpdate: the follower confirmed its log matches ours through index.
func (p *progress) maybeUpdate(index uint64) bool {
	updated := index > p.match
	if updated {
		p.match = index
		p.probeSent = false
	}
	p.next = maxU64(p.next, index+1)
	for len(p.inflight) > 0 && p.inflight[0] <= index {
		p.inflight = p.inflight[1:]
	}
	return updated
}

// maybeDecreaseTo: an append at prevLogIndex rejected was refused; back next
// off. It returns false for a stale rejection (one about an append we have
// already moved past), which must be ignored.
//
// match normally never goes down: what a follower confirmed is on its disk.
// It does when a follower lost entries it had confirmed (its disk dropped the
// end of its log, or the operator wiped its storage dir so it rejoins empty):
// the rejection of the append right after match then comes back with a hint
// below match. Clamping next at match + 1 would send that same append
// forever, so match is forgotten and the follower probed from its hint.
// Lowering match is always safe (commit indexes never go back; at worst a
// few entries are sent again).
func (p *progress) maybeDecreaseTo(rejected, matchHint uint64) bool {
	if p.state == ProgressReplicate {
		lost := rejected == p.match && p.match == p.next-1 && matchHint < p.match
		if rejected <= p.match && !lost {
			return false
		}
		if lost {
			p.match = 0
			p.becomeProbe()
			p.next = maxU64(1, minU64(rejected, matchHint+1)) // from its hint
			return true
		}
		p.next = p.match + 1
		return true
	}
	if p.next-1 != rejected {
		return false
	}
	if matchHint < p.match {
		p.match = 0 // lost entries it had confirmed (see above)
	}
	p.next = maxU64(minU64(rejected, matchHint+1), p.match+1)
	p.probeSent = false
	return true
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func minU64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}
