package wire

import (
	"strings"
	"testing"
)

func TestRetryableCodesAreExactlyTheFourOfSection41(t *testing.T) {
	want := map[ErrorCode]bool{NotLeader: true, Timeout: true, Busy: true, Unavailable: true}
	for _, c := range ErrorCodes {
		if c.Retryable() != want[c] {
			t.Errorf("%s.Retryable() = %v", c, c.Retryable())
		}
	}
	if ErrorCode("SOMETHING_NEW").Retryable() {
		t.Error("an unknown code must not be retryable")
	}
}

func TestEncodeRefusesAHeaderWithoutTypeOrID(t *testing.T) {
	if _, err := Encode(NewObject(Field{"type", "STATUS"}), nil); err == nil {
		t.Fatal("no id accepted")
	}
	if _, err := Encode(NewObject(Field{"id", "x"}), nil); err == nil {
		t.Fatal("no type accepted")
	}
}

func TestEncodeRefusesInvalidUTF8(t *testing.T) {
	if _, err := Encode(NewObject(Field{"type", "STATUS"}, Field{"id", "\xff"}), nil); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
}

func TestEncodeRaftRefusesWhatDecodeRaftWouldRefuse(t *testing.T) {
	cases := map[string]*RaftMessage{
		"entries on a vote":  {Type: MsgVote, Entries: []Entry{{Index: 1, Term: 1, Kind: EntryNoop}}},
		"snapshot on append": {Type: MsgAppend, Snapshot: &Snapshot{}},
		"snapshot missing":   {Type: MsgSnapshot},
		"gap in entries":     {Type: MsgAppend, LogIndex: 3, Entries: []Entry{{Index: 5, Kind: EntryNoop}}},
		"term above 2^63-1":  {Type: MsgVote, Term: 1 << 63},
		"unknown kind":       {Type: MsgAppend, Entries: []Entry{{Index: 1, Kind: "blob"}}},
		"unknown type":       {Type: "gossip"},
		"membership not UTF-8": {Type: MsgSnapshot,
			Snapshot: &Snapshot{Membership: []byte{0xff}}},
	}
	for name, m := range cases {
		if _, err := EncodeRaft(m); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestErrorReplyForAProtocolErrorEchoesWhatWasRead(t *testing.T) {
	_, _, err := Decode([][]byte{[]byte(`{"v":2,"type":"TRAIN","id":"r1"}`)}, DecodeOptions{})
	h := ErrorReplyFor(nil, err)
	got, _ := MarshalJSON(h)
	if !strings.HasPrefix(string(got), `{"v":1,"type":"TRAIN","id":"r1","status":"ERROR","code":"UNSUPPORTED_VERSION"`) {
		t.Fatalf("reply %s", got)
	}
}

func TestObjectRepeatedKeyKeepsFirstPlaceAndLastValue(t *testing.T) {
	v, err := UnmarshalJSON([]byte(`{"a":1,"b":2,"a":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := MarshalJSON(v); string(got) != `{"a":3,"b":2}` {
		t.Fatalf("got %s", got)
	}
}

func TestSplitEnvelopeRoutingDoesNotShareTheFramesArray(t *testing.T) {
	frames := [][]byte{[]byte("peer"), {}, []byte("{}"), make([]byte, 8)}
	routing, body, err := SplitEnvelope(frames)
	if err != nil || len(routing) != 1 || string(routing[0]) != "peer" || len(body) != 2 {
		t.Fatalf("got %q, %d body frames, %v", routing, len(body), err)
	}
	// A reply holds routing through a whole training; it must not pin the
	// request's blobs through frames' backing array.
	if &routing[:1][0] == &frames[0] {
		t.Fatal("routing is a sub-slice of frames")
	}
}
