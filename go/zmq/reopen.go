package zmq

import (
	"fmt"
	"time"
)

// Reopening links refused by ZAP. A handshake the other side refused (ZAP
// status 400: our key is not on its allow-list yet, as when that member has
// not appended the entry that adds us) is final for that connection in
// libzmq 4.3: it never retries it, even once the key is admitted. So a
// connecting socket whose handshake is refused is disconnected at once and
// connected again after a backoff (docs/PROTOCOL.md §1.1;
// zmqnode/transport/peers.py). The node's peer links (go/node) and the
// training links (go/training) keep their own bookkeeping and share the
// rules here.

// RefusedEvents are the handshake failures libzmq treats as final for the
// connection: the peer's ZAP handler refused our key (status 400; 300 and
// 500 end the same way), or the CURVE/ZMTP handshake broke.
// EventHandshakeFailedNoDetail is not here: it follows a dropped or
// timed-out TCP connection, which libzmq reconnects by itself.
const RefusedEvents = EventHandshakeFailedAuth | EventHandshakeFailedProtocol

// A refused link is reopened after ReopenFirst, doubling per refusal in a
// row up to ReopenMax. A member admits a new key as soon as it appends the
// entry adding it, usually within one replication round trip; a member cut
// off for long admits it only later, and then the new node waits at most
// ReopenMax more. The price of a refusal that lasts (one CURVE handshake
// per link every 2 s) is small against that.
const (
	ReopenFirst = 200 * time.Millisecond
	ReopenMax   = 2 * time.Second
)

// NextReopen is the backoff after one more refusal in a row: given the
// link's current backoff (0 when its last handshake got through or it was
// never refused), the delay before reopening it now and the backoff to keep
// for the next refusal.
func NextReopen(backoff time.Duration) (delay, next time.Duration) {
	delay = backoff
	if delay <= 0 {
		delay = ReopenFirst
	}
	next = 2 * delay
	if next > ReopenMax {
		next = ReopenMax
	}
	return delay, next
}

// RefusalReason is how a log line names refusal event ev with its value:
// the ZAP status, or libzmq's handshake error code.
func RefusalReason(ev Event, value uint32) string {
	if ev == EventHandshakeFailedAuth {
		return fmt.Sprintf("ZAP status %d", value)
	}
	return fmt.Sprintf("handshake error %#x", value)
}

// RefusedMessage is the warning logged the first time a link is refused
// for reason: who refused our link (e.g. "Raft DEALER connection") and when
// it will be reopened.
func RefusedMessage(who, link, reason string, delay time.Duration) string {
	return fmt.Sprintf("%s refused our %s (%s; our key is not on its allow-list yet?): "+
		"reopening it in %.1f s, then at most every %.0f s until it gets through",
		who, link, reason, delay.Seconds(), ReopenMax.Seconds())
}
