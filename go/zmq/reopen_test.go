package zmq

import (
	"testing"
	"time"
)

// The backoff starts at ReopenFirst, doubles per refusal in a row and stops
// at ReopenMax.
func TestReopenBackoffDoublesUpToTheMaximum(t *testing.T) {
	var backoff, delay time.Duration
	var got []time.Duration
	for i := 0; i < 6; i++ {
		delay, backoff = NextReopen(backoff)
		got = append(got, delay)
	}
	want := []time.Duration{ReopenFirst, 2 * ReopenFirst, 4 * ReopenFirst, 8 * ReopenFirst, ReopenMax, ReopenMax}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
}

func TestRefusalReasonNamesTheZAPStatus(t *testing.T) {
	if got := RefusalReason(EventHandshakeFailedAuth, 400); got != "ZAP status 400" {
		t.Errorf("auth: %q", got)
	}
	if got := RefusalReason(EventHandshakeFailedProtocol, 0x10000011); got != "handshake error 0x10000011" {
		t.Errorf("protocol: %q", got)
	}
}

func TestRefusedMessage(t *testing.T) {
	want := "b refused our Raft DEALER connection (ZAP status 400; our key is not on its allow-list yet?): " +
		"reopening it in 0.2 s, then at most every 2 s until it gets through"
	if got := RefusedMessage("b", "Raft DEALER connection", "ZAP status 400", ReopenFirst); got != want {
		t.Errorf("got %q", got)
	}
}
