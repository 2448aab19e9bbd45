package replies

import (
	"testing"

	"zmqnode/wire"
)

func TestRecorderKeepsEveryReplyInOrder(t *testing.T) {
	req := wire.NewObject(wire.Field{Key: "v", Value: 1}, wire.Field{Key: "type", Value: "TRAIN"}, wire.Field{Key: "id", Value: "r1"})
	var r Recorder
	var _ Replier = &r
	r.Wait(req)
	r.Progress(req, wire.Field{Key: "round", Value: 1})
	r.Error(req, wire.Busy, "full")
	if !r.Waiting || len(r.Answers) != 2 {
		t.Fatalf("waiting %v, %d answers", r.Waiting, len(r.Answers))
	}
	if code, _ := r.Last().Str("code"); code != string(wire.Busy) {
		t.Fatalf("last reply %v", r.Last())
	}
	if id, _ := r.Answers[0].Str("id"); id != "r1" {
		t.Fatalf("progress reply lost the request id: %v", r.Answers[0])
	}
}
