package wire

import "testing"

// A PREDICT request and its reply: the hot path of the client socket.
var predictFrames = [][]byte{
	[]byte(`{"v":1,"type":"PREDICT","id":"5f0c2d9e6b0e4a8f9a3c1d2e3f4a5b6c","model_id":"m3c1a2b","inputs":{"dtype":"float32","shape":[1,2],"frame":0},"timeout_ms":10000}`),
	make([]byte, 8),
}

func BenchmarkDecodePredictRequest(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h, blobs, err := Decode(predictFrames, DecodeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ReadArray(h, blobs, "inputs", DefaultMaxArrayBytes); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePredictReply(b *testing.B) {
	req, _, _ := Decode(predictFrames, DecodeOptions{})
	out := FromInt64([]int{1}, []int64{1})
	for i := 0; i < b.N; i++ {
		desc, blob := ArrayToFrame(out, 0)
		h := OKReply(req, Field{"model_id", "m3c1a2b"}, Field{"node", "127.0.0.1:9001"},
			Field{"outputs", desc}, Field{"classes", []int{0, 1}})
		if _, err := Encode(h, [][]byte{blob}); err != nil {
			b.Fatal(err)
		}
	}
}
