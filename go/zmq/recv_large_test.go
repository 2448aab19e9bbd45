package zmq

import (
	"bytes"
	"fmt"
	"testing"
)

// Large frames are copied out of libzmq in steps while their pages are
// released (zmqgo_copy_out): what arrives must still be every byte sent,
// whatever the size's alignment, over tcp (libzmq's decoder buffer) and
// inproc (the sender's buffer).
func TestLargeFramesArriveByteForByte(t *testing.T) {
	sizes := []int{releaseMinBytes - 1, releaseMinBytes, 4<<20 + 1, 9<<20 + 4093}
	for _, endpoint := range []string{"tcp://127.0.0.1:*", "inproc://large"} {
		t.Run(endpoint, func(t *testing.T) {
			ctx := newContext(t)
			pull := newSocket(t, ctx, PULL)
			if err := pull.Bind(endpoint); err != nil {
				t.Fatal(err)
			}
			bound, err := pull.LastEndpoint()
			if err != nil {
				t.Fatal(err)
			}
			push := newSocket(t, ctx, PUSH)
			if err := push.Connect(bound); err != nil {
				t.Fatal(err)
			}
			for _, n := range sizes {
				frames := [][]byte{[]byte("header"), pattern(n, byte(n)), pattern(n/3, 7)}
				if err := push.Send(frames, 0); err != nil {
					t.Fatal(err)
				}
				got, err := pull.Recv(0)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(frames) {
					t.Fatalf("%d bytes: %d frames, want %d", n, len(got), len(frames))
				}
				for i := range frames {
					if !bytes.Equal(got[i], frames[i]) {
						t.Fatalf("%d bytes: frame %d differs (%s)", n, i, firstDiff(got[i], frames[i]))
					}
				}
			}
		})
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed ^ byte(i>>12)
	}
	return b
}

func firstDiff(a, b []byte) string {
	if len(a) != len(b) {
		return fmt.Sprintf("length %d, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("byte %d: %d, want %d", i, a[i], b[i])
		}
	}
	return "equal"
}
