package raft

// raftLog is the in-memory view of one node's Raft log: snapshot + entries +
// cursors (Python's RaftLog).
//
// Indexes are Raft's, starting at 1. snapshot.Index is the last index the
// snapshot covers; entries[k] holds index snapshot.Index + 1 + k. Cursors,
// always snapshot.Index <= applied <= committed and stable <= lastIndex():
//
//   - stable: the last index the caller has made durable (Ready.Entries above
//     it have not been persisted yet);
//   - committed: the last index known committed (Raft §5.3);
//   - applied: the last index handed to the state machine.
//
// It panics with *InvariantError (recovered by the Core's exported methods)
// rather than overwrite a committed entry, leave a gap, or commit past the
// last index.
type raftLog struct {
	snapshot  Snapshot
	entries   []Entry
	stable    uint64
	committed uint64
	applied   uint64
	// A snapshot received from the leader that the caller has not persisted yet.
	pendingSnapshot *Snapshot

	// Mutation vote_ignores_log: every candidate's log counts as up to date.
	mutVoteIgnoresLog bool
}

func newRaftLog(snapshot Snapshot, entries []Entry) *raftLog {
	l := &raftLog{snapshot: snapshot, entries: append([]Entry(nil), entries...)}
	for offset, e := range l.entries {
		if e.Index != snapshot.Index+1+uint64(offset) {
			invariant("recovered log is not contiguous after snapshot %d: entry %d has index %d",
				snapshot.Index, offset, e.Index)
		}
	}
	l.stable = l.lastIndex()
	l.committed = snapshot.Index
	l.applied = snapshot.Index
	return l
}

// -- reading -----------------------------------------------------------------

func (l *raftLog) firstIndex() uint64 { return l.snapshot.Index + 1 }

func (l *raftLog) lastIndex() uint64 { return l.snapshot.Index + uint64(len(l.entries)) }

func (l *raftLog) lastTerm() uint64 {
	if len(l.entries) > 0 {
		return l.entries[len(l.entries)-1].Term
	}
	return l.snapshot.Term
}

// termAt is the term of the entry at index; false if compacted away or absent.
func (l *raftLog) termAt(index uint64) (uint64, bool) {
	if index < l.snapshot.Index {
		return 0, false
	}
	offset := index - l.snapshot.Index
	if offset == 0 {
		return l.snapshot.Term, true
	}
	if offset > uint64(len(l.entries)) {
		return 0, false
	}
	return l.entries[offset-1].Term, true
}

func (l *raftLog) matchTerm(index, term uint64) bool {
	t, ok := l.termAt(index)
	return ok && t == term
}

// entriesFrom returns entries from index on, at least one, at most maxBytes
// of data (each entry costs its data plus 32 bytes).
func (l *raftLog) entriesFrom(index uint64, maxBytes int) []Entry {
	if index <= l.snapshot.Index {
		invariant("entry %d is compacted (snapshot %d)", index, l.snapshot.Index)
	}
	start := index - l.snapshot.Index - 1
	if start >= uint64(len(l.entries)) {
		return nil
	}
	var batch []Entry
	size := 0
	for _, e := range l.entries[start:] {
		size += len(e.Data) + 32
		if len(batch) > 0 && size > maxBytes {
			break
		}
		batch = append(batch, e)
	}
	return batch
}

// isUpToDate: Raft §5.4.1, is a candidate's log at least as up-to-date as ours?
func (l *raftLog) isUpToDate(lastIndex, lastTerm uint64) bool {
	if l.mutVoteIgnoresLog {
		return true // mutation vote_ignores_log: BUG, no §5.4.1 check
	}
	return lastTerm > l.lastTerm() || (lastTerm == l.lastTerm() && lastIndex >= l.lastIndex())
}

// findConflictByTerm returns the largest index <= index whose term is <=
// term, with its term. Used on both sides of a rejected append to skip a
// whole term of conflicting entries in one round trip (thesis §5.3
// optimization).
func (l *raftLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	if index > l.lastIndex() {
		return index, 0
	}
	for {
		t, ok := l.termAt(index)
		if !ok {
			return index, 0
		}
		if t <= term {
			return index, t
		}
		if index == 0 { // cannot happen: termAt(0) is 0 or absent
			return 0, 0
		}
		index--
	}
}

func (l *raftLog) unstableEntries() []Entry {
	if l.stable < l.snapshot.Index {
		// Every entry is after the snapshot, hence after stable. (Python
		// slices with a negative start here and would return only the last
		// few; no caller reaches this, but all of them is the right answer.)
		return append([]Entry(nil), l.entries...)
	}
	start := l.stable - l.snapshot.Index
	if start < uint64(len(l.entries)) {
		return append([]Entry(nil), l.entries[start:]...)
	}
	return nil
}

func (l *raftLog) committedToApply() []Entry {
	if l.committed <= l.applied {
		return nil
	}
	lo := l.applied - l.snapshot.Index
	hi := l.committed - l.snapshot.Index
	return append([]Entry(nil), l.entries[lo:hi]...)
}

// -- writing -----------------------------------------------------------------

// append appends, replacing any suffix from entries[0].Index on.
func (l *raftLog) append(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	first := entries[0].Index
	if first <= l.committed {
		invariant("refusing to overwrite committed entry %d (commit %d)", first, l.committed)
	}
	if first > l.lastIndex()+1 {
		invariant("gap: appending %d after %d", first, l.lastIndex())
	}
	// first > committed >= snapshot.Index, so the offset is not negative.
	// A fresh slice: entries handed out earlier (Ready) must not change.
	keep := l.entries[:first-l.snapshot.Index-1]
	merged := make([]Entry, 0, len(keep)+len(entries))
	merged = append(merged, keep...)
	l.entries = append(merged, entries...)
	if first-1 < l.stable {
		l.stable = first - 1
	}
}

// maybeAppend applies AppendEntries receiver rules 2-4 (Figure 2).
//
// It returns the index of the last new entry, or false when the log does not
// contain prevIndex at prevTerm. Existing entries that agree are kept: a
// delayed, shorter append must never cut entries off the log.
func (l *raftLog) maybeAppend(prevIndex, prevTerm uint64, entries []Entry) (uint64, bool) {
	if !l.matchTerm(prevIndex, prevTerm) {
		return 0, false
	}
	for pos, e := range entries {
		if !l.matchTerm(e.Index, e.Term) {
			l.append(entries[pos:])
			break
		}
	}
	return prevIndex + uint64(len(entries)), true
}

func (l *raftLog) commitTo(index uint64) bool {
	if index > l.committed {
		if index > l.lastIndex() {
			invariant("commit %d beyond last index %d", index, l.lastIndex())
		}
		l.committed = index
		return true
	}
	return false
}

func (l *raftLog) stableTo(index, term uint64) {
	if l.matchTerm(index, term) && index > l.stable {
		l.stable = index
	}
}

// restore replaces the whole log with a snapshot received from the leader.
func (l *raftLog) restore(snap Snapshot) {
	l.snapshot = snap
	l.entries = nil
	l.stable = snap.Index
	l.committed = snap.Index
	l.applied = snap.Index
	s := snap
	l.pendingSnapshot = &s
}

// compact drops entries covered by a snapshot the local state machine took.
func (l *raftLog) compact(snap Snapshot) {
	drop := snap.Index - l.snapshot.Index
	if drop > uint64(len(l.entries)) {
		drop = uint64(len(l.entries))
	}
	l.entries = append([]Entry(nil), l.entries[drop:]...)
	l.snapshot = snap
}
