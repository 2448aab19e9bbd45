package node

import (
	"time"

	"zmqnode/zmq"
)

// A handshake the peer refused (ZAP status 400: our key is not on its
// allow-list yet, as when it has not appended the entry that adds us) is
// final for that connection in libzmq 4.3: it never retries it, even once
// the key is admitted. So each link watches its handshakes and reopens a
// refused one after a short backoff (docs/PROTOCOL.md §1.1;
// zmqnode/transport/peers.py). Which events, the backoff and the warning
// are go/zmq/reopen.go's, shared with the training links (go/training).

// linkKind names a peer link: its DEALER, or our SUB's connection to its PUB.
type linkKind string

const (
	linkRaft linkKind = "Raft DEALER"
	linkSub  linkKind = "heartbeat SUB"
)

type linkKey struct {
	peer string
	link linkKind
}

// reopener is the bookkeeping of refused links: when each is due to be
// reopened, its next backoff, how often it was reopened, what was logged.
type reopener struct {
	count    func(kind string)
	warn     func(string, ...any)
	info     func(string, ...any)
	at       map[linkKey]time.Time
	backoff  map[linkKey]time.Duration
	reopened map[linkKey]int
	logged   map[string]bool
}

func newReopener(count func(string), warn, info func(string, ...any)) *reopener {
	return &reopener{count: count, warn: warn, info: info, at: map[linkKey]time.Time{},
		backoff: map[linkKey]time.Duration{}, reopened: map[linkKey]int{}, logged: map[string]bool{}}
}

// refused records that peer refused link's handshake (monitor event ev with
// value) and disconnects endpoint on sock now; due reports it once the
// backoff has passed.
//
// Now, not when reopening: libzmq keeps a dead connection's entry (the
// address of its freed session) until Disconnect, and on the SUB a session
// opened meanwhile may reuse that address, which a late Disconnect would
// then end.
func (r *reopener) refused(sock *zmq.Socket, endpoint, peer string, link linkKind, ev zmq.Event, value uint32, now time.Time) {
	k := linkKey{peer, link}
	r.count("peer_handshake_refused")
	reason := zmq.RefusalReason(ev, value)
	var delay time.Duration
	delay, r.backoff[k] = zmq.NextReopen(r.backoff[k])
	if logKey := peer + "\x00" + string(link) + "\x00" + reason; !r.logged[logKey] {
		r.logged[logKey] = true
		r.warn("%s", zmq.RefusedMessage(peer, string(link)+" connection", reason, delay))
	}
	if _, pending := r.at[k]; !pending && sock != nil && endpoint != "" {
		_ = sock.Disconnect(endpoint) // an error: already closed for an earlier refusal
	}
	r.at[k] = now.Add(delay)
}

// due lists the links whose backoff has passed.
func (r *reopener) due(now time.Time) []linkKey {
	var out []linkKey
	for k, at := range r.at {
		if !at.After(now) {
			out = append(out, k)
		}
	}
	return out
}

// take claims a due link for reopening (false if it is no longer due) and
// counts it.
func (r *reopener) take(k linkKey) bool {
	if _, ok := r.at[k]; !ok {
		return false
	}
	delete(r.at, k)
	r.reopened[k]++
	r.count("peer_link_reopened")
	return true
}

// gotThrough: a handshake of link to peer succeeded; the backoff starts over.
func (r *reopener) gotThrough(peer string, link linkKind) {
	k := linkKey{peer, link}
	delete(r.backoff, k)
	if n := r.reopened[k]; n > 0 {
		delete(r.reopened, k)
		r.info("%s admitted our %s connection after %d reopening(s)", peer, link, n)
	}
}

// forget drops what is known of peer's links (it left the membership).
func (r *reopener) forget(peer string) {
	for _, link := range []linkKind{linkRaft, linkSub} {
		k := linkKey{peer, link}
		delete(r.at, k)
		delete(r.backoff, k)
		delete(r.reopened, k)
	}
	for key := range r.logged {
		if len(key) > len(peer) && key[:len(peer)+1] == peer+"\x00" {
			delete(r.logged, key)
		}
	}
}
