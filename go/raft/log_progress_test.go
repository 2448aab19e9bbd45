package raft

import (
	"testing"
)

// raftLog and progress, white-box (ported from tests/test_raft_log.py and
// tests/test_raft_progress.py, themselves after etcd-io/raft's log_test.go
// and tracker/progress_test.go).

func makeLog(t *testing.T, snap Snapshot, committed uint64, terms ...uint64) *raftLog {
	l := newRaftLog(snap, entsFrom(snap.Index+1, terms...))
	if committed > 0 {
		l.commitTo(committed)
	}
	return l
}

func expectInvariant(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if _, ok := recover().(*InvariantError); !ok {
			t.Fatal("expected an InvariantError")
		}
	}()
	f()
}

func TestEmptyLogHasIndexAndTermZero(t *testing.T) {
	l := newRaftLog(Snapshot{}, nil)
	if l.firstIndex() != 1 || l.lastIndex() != 0 || l.lastTerm() != 0 {
		t.Fatal(l)
	}
	if tm, ok := l.termAt(0); !ok || tm != 0 {
		t.Fatal(tm)
	}
	if _, ok := l.termAt(1); ok {
		t.Fatal("term at 1")
	}
}

func TestTermAtCoversSnapshotBoundaryAndNothingElse(t *testing.T) {
	l := makeLog(t, Snapshot{Index: 3, Term: 3}, 0, 4, 5)
	for _, tc := range []struct {
		i, term uint64
		ok      bool
	}{{2, 0, false}, {3, 3, true}, {4, 4, true}, {5, 5, true}, {6, 0, false}} {
		if tm, ok := l.termAt(tc.i); ok != tc.ok || tm != tc.term {
			t.Error(tc, tm, ok)
		}
	}
}

func TestRecoveredLogMustBeContiguousAfterSnapshot(t *testing.T) {
	_, err := NewCore("a", nil, testConfig(), newRand(), Options{Snapshot: &Snapshot{Index: 3, Term: 1}, Entries: []Entry{{Index: 5, Term: 1}}})
	if _, ok := err.(*InvariantError); !ok {
		t.Fatal(err)
	}
	_, err = NewCore("a", nil, testConfig(), newRand(), Options{Entries: []Entry{{Index: 1, Term: 1}, {Index: 3, Term: 1}}})
	if _, ok := err.(*InvariantError); !ok {
		t.Fatal(err)
	}
}

func TestRecoveredLogIsStableAndOnlySnapshotIsCommitted(t *testing.T) {
	l := makeLog(t, Snapshot{Index: 5, Term: 2}, 0, 2, 2)
	if l.stable != 7 || l.committed != 5 || l.applied != 5 || len(l.unstableEntries()) != 0 {
		t.Fatal(l)
	}
}

// §5.4.1: "If the logs have last entries with different terms, then the log
// with the later term is more up-to-date. If the logs end with the same
// term, then whichever log is longer is more up-to-date."
func TestIsUpToDateComparesLastTermThenLength(t *testing.T) {
	l := makeLog(t, Snapshot{}, 0, 1, 2, 3)
	for _, tc := range []struct {
		i, term uint64
		want    bool
	}{{2, 2, false}, {3, 2, false}, {4, 2, false}, {2, 3, false}, {3, 3, true}, {4, 3, true}, {1, 4, true}, {5, 4, true}} {
		if l.isUpToDate(tc.i, tc.term) != tc.want {
			t.Error(tc)
		}
	}
	s := newRaftLog(Snapshot{Index: 10, Term: 4}, nil)
	if !s.isUpToDate(10, 4) || s.isUpToDate(9, 4) || s.isUpToDate(20, 3) {
		t.Error("snapshot term")
	}
}

// Thesis §5.3: the largest index at or below index whose term is at most
// term.
func TestFindConflictByTerm(t *testing.T) {
	l := makeLog(t, Snapshot{}, 0, 1, 1, 2, 2, 4, 4)
	for _, tc := range []struct{ i, term, wi, wt uint64 }{
		{6, 4, 6, 4}, {6, 3, 4, 2}, {6, 2, 4, 2}, {6, 1, 2, 1}, {6, 0, 0, 0}, {3, 5, 3, 2}, {9, 4, 9, 0},
	} {
		if gi, gt := l.findConflictByTerm(tc.i, tc.term); gi != tc.wi || gt != tc.wt {
			t.Error(tc, gi, gt)
		}
	}
	s := makeLog(t, Snapshot{Index: 2, Term: 1}, 0, 2, 2, 4)
	if gi, gt := s.findConflictByTerm(5, 1); gi != 2 || gt != 1 {
		t.Error(gi, gt)
	}
	if gi, gt := s.findConflictByTerm(5, 0); gt != 0 || gi >= s.firstIndex() {
		t.Error(gi, gt)
	}
}

func TestEntriesFromRespectsMaxBytesButReturnsAtLeastOne(t *testing.T) {
	var es []Entry
	for i := uint64(1); i <= 5; i++ {
		es = append(es, Entry{Index: i, Term: 1, Data: make([]byte, 100)})
	}
	l := newRaftLog(Snapshot{}, es)
	per := 100 + 32
	for _, tc := range []struct {
		from uint64
		max  int
		n    int
	}{{1, 1e6, 5}, {1, 2 * per, 2}, {1, 3*per - 1, 2}, {1, 1, 1}, {4, 1e6, 2}, {6, 1e6, 0}} {
		if got := len(l.entriesFrom(tc.from, tc.max)); got != tc.n {
			t.Error(tc, got)
		}
	}
	c := makeLog(t, Snapshot{Index: 5, Term: 1}, 0, 1, 1)
	expectInvariant(t, func() { c.entriesFrom(5, 100) })
	if got := c.entriesFrom(6, 1e6); len(got) != 2 || got[0].Index != 6 {
		t.Fatal(got)
	}
}

// Figure 2, AppendEntries receiver rules 2-4; the result is the index of the
// last new entry.
func TestMaybeAppend(t *testing.T) {
	type ent struct{ i, t uint64 }
	for _, tc := range []struct {
		prevI, prevT uint64
		new          []ent
		ok           bool
		last         uint64
		terms        []uint64
	}{
		{3, 2, nil, false, 0, []uint64{1, 2, 3}},
		{4, 3, []ent{{5, 4}}, false, 0, []uint64{1, 2, 3}},
		{3, 3, nil, true, 3, []uint64{1, 2, 3}},
		{3, 3, []ent{{4, 4}}, true, 4, []uint64{1, 2, 3, 4}},
		{3, 3, []ent{{4, 4}, {5, 4}}, true, 5, []uint64{1, 2, 3, 4, 4}},
		{2, 2, []ent{{3, 4}}, true, 3, []uint64{1, 2, 4}},
		{1, 1, []ent{{2, 4}, {3, 4}, {4, 4}}, true, 4, []uint64{1, 4, 4, 4}},
		{2, 2, []ent{{3, 3}}, true, 3, []uint64{1, 2, 3}},
		{1, 1, []ent{{2, 2}}, true, 2, []uint64{1, 2, 3}},
		{0, 0, []ent{{1, 1}}, true, 1, []uint64{1, 2, 3}},
		{0, 0, nil, true, 0, []uint64{1, 2, 3}},
	} {
		l := makeLog(t, Snapshot{}, 1, 1, 2, 3)
		var es []Entry
		for _, e := range tc.new {
			es = append(es, Entry{Index: e.i, Term: e.t})
		}
		last, ok := l.maybeAppend(tc.prevI, tc.prevT, es)
		if ok != tc.ok || last != tc.last || !eqU64(termsOf(l.entries), tc.terms) {
			t.Error(tc, last, ok, termsOf(l.entries))
		}
	}
	l := makeLog(t, Snapshot{}, 0, 1, 1, 1, 1, 1)
	if last, _ := l.maybeAppend(1, 1, []Entry{{Index: 2, Term: 1}, {Index: 3, Term: 1}}); last != 3 || l.lastIndex() != 5 {
		t.Fatal("a delayed shorter append truncated the log")
	}
	c := makeLog(t, Snapshot{}, 2, 1, 2, 3)
	expectInvariant(t, func() { c.maybeAppend(1, 1, []Entry{{Index: 2, Term: 9}}) })
	if !eqU64(termsOf(c.entries), []uint64{1, 2, 3}) {
		t.Fatal(termsOf(c.entries))
	}
	g := makeLog(t, Snapshot{}, 0, 1, 1, 1)
	g.append(entsFrom(2, 2, 2))
	if !eqU64(termsOf(g.entries), []uint64{1, 2, 2}) {
		t.Fatal(termsOf(g.entries))
	}
	expectInvariant(t, func() { g.append(entsFrom(5, 2)) })
}

func TestUnstableEntriesStableToAndTruncation(t *testing.T) {
	l := makeLog(t, Snapshot{}, 0, 1, 1)
	l.append(entsFrom(3, 2, 2))
	idx := func() []uint64 {
		var out []uint64
		for _, e := range l.unstableEntries() {
			out = append(out, e.Index)
		}
		return out
	}
	if !eqU64(idx(), []uint64{3, 4}) {
		t.Fatal(idx())
	}
	l.stableTo(4, 1) // wrong term: an entry replaced meanwhile
	if !eqU64(idx(), []uint64{3, 4}) {
		t.Fatal(idx())
	}
	l.stableTo(3, 2)
	if !eqU64(idx(), []uint64{4}) {
		t.Fatal(idx())
	}
	l.stableTo(4, 2)
	l.stableTo(3, 2) // never goes backwards
	if len(idx()) != 0 || l.stable != 4 {
		t.Fatal(l.stable)
	}
	tr := makeLog(t, Snapshot{}, 0, 1, 1, 1, 1)
	tr.maybeAppend(2, 1, entsFrom(3, 3))
	if tr.stable != 2 || len(tr.unstableEntries()) != 1 || tr.unstableEntries()[0].Term != 3 {
		t.Fatal(tr.stable)
	}
}

func TestCommitToNeverDecreasesAndNeverPassesLastIndex(t *testing.T) {
	l := makeLog(t, Snapshot{}, 0, 1, 1, 1)
	if !l.commitTo(2) || l.commitTo(1) || l.committed != 2 {
		t.Fatal(l.committed)
	}
	expectInvariant(t, func() { l.commitTo(4) })
}

func TestCommittedToApplyAndCompaction(t *testing.T) {
	l := makeLog(t, Snapshot{}, 0, 1, 1, 2, 2, 3)
	l.commitTo(4)
	l.applied = 2
	if got := l.committedToApply(); len(got) != 2 || got[0].Index != 3 {
		t.Fatal(got)
	}
	l.applied = 4
	l.compact(Snapshot{Index: 3, Term: 2, Data: []byte("s")})
	if l.firstIndex() != 4 || l.lastIndex() != 5 || l.lastTerm() != 3 || len(l.committedToApply()) != 0 {
		t.Fatal(l.firstIndex(), l.lastIndex())
	}
	if _, ok := l.termAt(2); ok {
		t.Fatal("compacted")
	}
	l.commitTo(5)
	if got := l.committedToApply(); len(got) != 1 || got[0].Index != 5 {
		t.Fatal(got)
	}
	s := makeLog(t, Snapshot{Index: 10, Term: 1}, 12, 2, 2, 2)
	if got := s.committedToApply(); len(got) != 2 || got[0].Index != 11 {
		t.Fatal(got)
	}
}

// §7: "the follower discards its entire log; it is all superseded by the
// snapshot."
func TestRestoreReplacesTheWholeLog(t *testing.T) {
	l := makeLog(t, Snapshot{}, 2, 1, 1, 2, 2, 2)
	snap := Snapshot{Index: 4, Term: 3, Data: []byte("state")}
	l.restore(snap)
	if len(l.entries) != 0 || l.lastIndex() != 4 || l.lastTerm() != 3 || l.stable != 4 || l.committed != 4 ||
		l.applied != 4 || l.pendingSnapshot == nil || len(l.unstableEntries()) != 0 {
		t.Fatal(l)
	}
	if last, ok := l.maybeAppend(4, 3, []Entry{{Index: 5, Term: 3}}); !ok || last != 5 {
		t.Fatal(last)
	}
}

// -- progress -------------------------------------------------------------------------

func prog(state ProgressState, match, next uint64) *progress {
	p := newProgress(next)
	p.match = match
	switch state {
	case ProgressReplicate:
		p.becomeReplicate()
		p.next = next
	case ProgressSnapshot:
		p.becomeSnapshot(next)
	}
	return p
}

func TestProgressProbeReplicateSnapshot(t *testing.T) {
	p := newProgress(5)
	if p.state != ProgressProbe || p.isPaused(4) {
		t.Fatal(p)
	}
	p.sent(6, 2)
	if !p.isPaused(100) || p.next != 5 {
		t.Fatal("a probe does not move next optimistically")
	}
	if !p.maybeUpdate(6) || p.isPaused(100) || p.match != 6 || p.next != 7 {
		t.Fatal(p)
	}
	r := prog(ProgressReplicate, 5, 6)
	for _, last := range []uint64{7, 9, 11} {
		if r.isPaused(3) {
			t.Fatal("paused early")
		}
		r.sent(last, 2)
	}
	if r.next != 12 || !r.isPaused(3) {
		t.Fatal(r)
	}
	if !r.maybeUpdate(9) || len(r.inflight) != 1 || r.inflight[0] != 11 || r.isPaused(3) {
		t.Fatal(r.inflight)
	}
	e := prog(ProgressReplicate, 5, 6)
	e.sent(5, 0)
	if len(e.inflight) != 0 || e.next != 6 {
		t.Fatal("an empty append is not in flight")
	}
	m := prog(ProgressReplicate, 5, 10)
	if m.maybeUpdate(3) || m.match != 5 || m.next != 10 || !m.maybeUpdate(7) || m.next != 10 {
		t.Fatal(m)
	}
	s := prog(ProgressSnapshot, 2, 20)
	if s.pendingSnapshot != 20 || !s.isPaused(100) {
		t.Fatal(s)
	}
	s.becomeProbe()
	if s.state != ProgressProbe || s.next != 21 || s.pendingSnapshot != 0 {
		t.Fatal(s)
	}
	b := prog(ProgressReplicate, 5, 6)
	b.sent(9, 4)
	b.becomeProbe()
	if b.next != 6 || len(b.inflight) != 0 || b.isPaused(1) {
		t.Fatal(b)
	}
	a := prog(ProgressSnapshot, 2, 20)
	a.maybeUpdate(20)
	a.becomeProbe()
	a.becomeReplicate()
	if a.state != ProgressReplicate || a.match != 20 || a.next != 21 {
		t.Fatal(a)
	}
}

func TestProgressMaybeDecreaseTo(t *testing.T) {
	r := prog(ProgressReplicate, 5, 6)
	r.sent(10, 5)
	if !r.maybeDecreaseTo(8, 3) || r.next != 6 {
		t.Fatal("never below what the follower confirmed", r.next)
	}
	for _, rej := range []uint64{3, 5} {
		s := prog(ProgressReplicate, 5, 12)
		if s.maybeDecreaseTo(rej, 0) || s.state != ProgressReplicate || s.match != 5 || s.next != 12 {
			t.Fatal("stale rejection", rej)
		}
	}
	p := prog(ProgressProbe, 0, 11)
	p.sent(10, 0)
	if !p.maybeDecreaseTo(10, 4) || p.next != 5 || p.isPaused(1) {
		t.Fatal(p)
	}
	for _, rej := range []uint64{7, 10, 12} {
		o := prog(ProgressProbe, 0, 9)
		o.sent(8, 0)
		if o.maybeDecreaseTo(rej, 1) || o.next != 9 || !o.isPaused(1) {
			t.Fatal("stale probe rejection", rej)
		}
	}
	h := prog(ProgressProbe, 3, 9)
	if !h.maybeDecreaseTo(8, 5) || h.match != 3 || h.next != 6 {
		t.Fatal(h)
	}
	h = prog(ProgressProbe, 0, 9)
	if !h.maybeDecreaseTo(8, 50) || h.next != 8 {
		t.Fatal(h)
	}
	lost := prog(ProgressProbe, 3, 9)
	lost.sent(8, 0)
	if !lost.maybeDecreaseTo(8, 0) || lost.match != 0 || lost.next != 1 || lost.isPaused(1) {
		t.Fatal(lost)
	}
	lr := prog(ProgressReplicate, 7, 8)
	if !lr.maybeDecreaseTo(7, 4) || lr.state != ProgressProbe || lr.match != 0 || lr.next != 5 {
		t.Fatal(lr)
	}
	st := prog(ProgressReplicate, 7, 8)
	if st.maybeDecreaseTo(7, 7) || st.state != ProgressReplicate || st.match != 7 || st.next != 8 {
		t.Fatal(st)
	}
}
