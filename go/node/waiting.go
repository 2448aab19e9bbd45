package node

import (
	"container/heap"
	"fmt"
	"sort"
	"time"
)

// Waiter is one parked request: Callback when its condition holds, else
// OnTimeout at Deadline; exactly one of them runs (waiting.py Waiter).
type Waiter struct {
	Deadline  time.Time
	callback  func()
	onTimeout func()
	done      bool
	seq       uint64
}

type deadlineHeap []*Waiter

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if h[i].Deadline.Equal(h[j].Deadline) {
		return h[i].seq < h[j].seq
	}
	return h[i].Deadline.Before(h[j].Deadline)
}
func (h deadlineHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)   { *h = append(*h, x.(*Waiter)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

// ReadIndexRetry: a read index request or its answer can be lost (a dropped
// message, a partition that heals, a leader change), and Raft does not
// resend it: the reads still waiting after this long are asked for again
// (etcd's readIndexRetryTime; waiting.py READ_INDEX_RETRY_S). Asking again
// is always safe: a later read index is at least as new.
const ReadIndexRetry = 500 * time.Millisecond

type applyWait struct {
	index uint64
	w     *Waiter
}

// Waiters holds every request parked on this node, each with a deadline;
// reads are batched into one read index per loop turn (waiting.py Waiters).
type Waiters struct {
	Now       func() time.Time
	readTag   string
	seq       uint64
	Parked    int
	deadlines deadlineHeap
	readBatch []*Waiter
	reads     map[string][]*Waiter
	readSent  map[string]time.Time // ctx -> when its read index was asked
	applied   []applyWait
	onPanic   func(any)
}

// NewWaiters makes an empty set; read contexts are "<tag>/<n>".
func NewWaiters(readTag string, onPanic func(any)) *Waiters {
	return &Waiters{Now: time.Now, readTag: readTag, reads: map[string][]*Waiter{}, readSent: map[string]time.Time{}, onPanic: onPanic}
}

// Park is a new waiter that times out after timeout.
func (ws *Waiters) Park(timeout time.Duration, callback, onTimeout func()) *Waiter {
	ws.seq++
	w := &Waiter{Deadline: ws.Now().Add(timeout), callback: callback, onTimeout: onTimeout, seq: ws.seq}
	heap.Push(&ws.deadlines, w)
	ws.Parked++
	return w
}

// Settle marks w done once; it returns its callbacks, or nils if it was done.
func (ws *Waiters) Settle(w *Waiter) (callback, onTimeout func()) {
	if w.done {
		return nil, nil
	}
	w.done = true
	ws.Parked--
	callback, onTimeout = w.callback, w.onTimeout
	w.callback, w.onTimeout = nil, nil
	return callback, onTimeout
}

func (ws *Waiters) guard(f func()) {
	if f == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil && ws.onPanic != nil {
			ws.onPanic(r)
		}
	}()
	f()
}

// Fire runs w's callback unless it was settled.
func (ws *Waiters) Fire(w *Waiter) {
	cb, _ := ws.Settle(w)
	ws.guard(cb)
}

// AfterReadIndex runs callback once this node has applied everything
// committed now (a linearizable read).
func (ws *Waiters) AfterReadIndex(timeout time.Duration, callback, onTimeout func()) {
	ws.readBatch = append(ws.readBatch, ws.Park(timeout, callback, onTimeout))
}

// IssueReads asks for one read index covering every read parked since the
// last call, and again for reads whose read index has not come back within
// ReadIndexRetry; with no leader known they wait for the next call.
func (ws *Waiters) IssueReads(readIndex func(ctx string) bool) {
	now := ws.Now()
	retried := false
	for ctx, sent := range ws.readSent {
		if now.Sub(sent) >= ReadIndexRetry {
			delete(ws.readSent, ctx)
			for _, w := range ws.reads[ctx] {
				if !w.done {
					ws.readBatch = append(ws.readBatch, w)
					retried = true
				}
			}
			delete(ws.reads, ctx)
		}
	}
	if retried { // in the order they were parked, not the map's
		sort.Slice(ws.readBatch, func(i, j int) bool { return ws.readBatch[i].seq < ws.readBatch[j].seq })
	}
	if len(ws.readBatch) == 0 {
		return
	}
	ws.seq++
	ctx := fmt.Sprintf("%s/%d", ws.readTag, ws.seq)
	if readIndex(ctx) {
		ws.reads[ctx] = ws.readBatch
		ws.readSent[ctx] = now
		ws.readBatch = nil
		return
	}
	kept := ws.readBatch[:0]
	for _, w := range ws.readBatch {
		if !w.done {
			kept = append(kept, w)
		}
	}
	ws.readBatch = kept
}

// ReadIndexReady: Raft confirmed read index for the reads tagged ctx.
func (ws *Waiters) ReadIndexReady(ctx string, index, appliedIndex uint64) {
	batch := ws.reads[ctx]
	delete(ws.reads, ctx)
	delete(ws.readSent, ctx)
	for _, w := range batch {
		ws.WhenApplied(index, w, appliedIndex)
	}
}

// WhenApplied fires w once the applied index reaches index.
func (ws *Waiters) WhenApplied(index uint64, w *Waiter, appliedIndex uint64) {
	if appliedIndex >= index {
		ws.Fire(w)
		return
	}
	ws.applied = append(ws.applied, applyWait{index, w})
}

// Applied fires who waited for entries through appliedIndex.
func (ws *Waiters) Applied(appliedIndex uint64) {
	if len(ws.applied) == 0 {
		return
	}
	var fire []*Waiter
	kept := ws.applied[:0]
	for _, a := range ws.applied {
		if a.index <= appliedIndex {
			fire = append(fire, a.w)
		} else {
			kept = append(kept, a)
		}
	}
	ws.applied = kept
	for _, w := range fire {
		ws.Fire(w)
	}
}

// Expire times out every waiter whose deadline passed; true if any did.
func (ws *Waiters) Expire(now time.Time) bool {
	expired := false
	for len(ws.deadlines) > 0 && !ws.deadlines[0].Deadline.After(now) {
		w := heap.Pop(&ws.deadlines).(*Waiter)
		expired = true
		_, onTimeout := ws.Settle(w)
		ws.guard(onTimeout)
	}
	if len(ws.deadlines) > 2*ws.Parked+1024 {
		kept := ws.deadlines[:0]
		for _, w := range ws.deadlines {
			if !w.done {
				kept = append(kept, w)
			}
		}
		ws.deadlines = kept
		heap.Init(&ws.deadlines)
	}
	if expired {
		for ctx, batch := range ws.reads {
			all := true
			for _, w := range batch {
				all = all && w.done
			}
			if all {
				delete(ws.reads, ctx)
				delete(ws.readSent, ctx)
			}
		}
		kept := ws.applied[:0]
		for _, a := range ws.applied {
			if !a.w.done {
				kept = append(kept, a)
			}
		}
		ws.applied = kept
	}
	return expired
}

// NextDeadline is the earliest pending deadline (zero time if none).
func (ws *Waiters) NextDeadline() time.Time {
	if len(ws.deadlines) == 0 {
		return time.Time{}
	}
	return ws.deadlines[0].Deadline
}

type proposal struct {
	term uint64
	size int64
	done func(bool)
	at   time.Time
}

// Proposals are the entries this node proposed, by index, until applied.
type Proposals struct {
	pending          map[uint64]proposal
	UncommittedBytes int64
}

// NewProposals is an empty set.
func NewProposals() *Proposals { return &Proposals{pending: map[uint64]proposal{}} }

// Add records a proposal of size bytes at (index, term).
func (p *Proposals) Add(index, term uint64, size int64, done func(bool)) {
	p.UncommittedBytes += size
	p.pending[index] = proposal{term, size, done, time.Now()}
}

// Applied answers the proposer of entry (index, term); it returns how long
// ago it was proposed, and false if it was not ours.
func (p *Proposals) Applied(index, term uint64) (time.Duration, bool) {
	pr, ok := p.pending[index]
	if !ok {
		return 0, false
	}
	delete(p.pending, index)
	p.UncommittedBytes -= pr.size
	pr.done(pr.term == term)
	return time.Since(pr.at), true
}

// PassedOver fails the proposals at or below appliedIndex never applied
// themselves (a snapshot was installed over them).
func (p *Proposals) PassedOver(appliedIndex uint64) {
	for index, pr := range p.pending {
		if index <= appliedIndex {
			delete(p.pending, index)
			p.UncommittedBytes -= pr.size
			pr.done(false)
		}
	}
}
