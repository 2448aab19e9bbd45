package node

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// JOIN handshake timing (transport/join.py).
const (
	JoinAttempt    = 5 * time.Second
	JoinRetryPause = 500 * time.Millisecond
)

// AskToJoin sends JOIN to targets (following REDIRECT, retrying retryable
// codes) until one answers OK: the encoded membership with this node in it,
// and its log index.
func AskToJoin(ctx *zmq.Context, keys *security.NodeKeys, targets []string, nodeID, credential string,
	deadline time.Duration, logf func(string, ...any)) ([]byte, uint64, error) {
	end := time.Now().Add(deadline)
	var rid [16]byte
	rand.Read(rid[:])
	requestID := hex.EncodeToString(rid[:])
	queue := append([]string(nil), targets...)
	tried := 0
	last := "no answer"
	for time.Now().Before(end) {
		var target string
		if len(queue) > 0 {
			target, queue = queue[0], queue[1:]
		} else {
			target = targets[tried%len(targets)]
		}
		tried++
		header := wire.NewObject(
			wire.Field{Key: "v", Value: int64(1)},
			wire.Field{Key: "type", Value: wire.TypeJoin},
			wire.Field{Key: "id", Value: requestID},
			wire.Field{Key: "node", Value: nodeID},
			wire.Field{Key: "credential", Value: credential},
			wire.Field{Key: "timeout_ms", Value: int64(JoinAttempt / time.Millisecond)},
		)
		reply := askOnce(ctx, keys, target, header)
		switch {
		case reply == nil:
			last = fmt.Sprintf("%s: no answer in %.0f s", target, JoinAttempt.Seconds())
		case statusOf(reply) == "REDIRECT":
			if leader, ok := reply.Str("leader"); ok {
				queue = append([]string{leader}, queue...)
				continue
			}
		case statusOf(reply) == "OK":
			m, okM := reply.Str("membership")
			idx, okI := reply.Uint("membership_index")
			if okM && okI {
				return []byte(m), idx, nil
			}
			return nil, 0, fmt.Errorf("%s answered JOIN without a membership: %s", target, reply)
		default:
			code, _ := reply.Str("code")
			msg, _ := reply.Str("message")
			last = fmt.Sprintf("%s: %s: %s", target, code, msg)
			if !wire.ErrorCode(code).Retryable() {
				return nil, 0, fmt.Errorf("the cluster refused to add %s: %s", nodeID, last)
			}
		}
		logf("joining: %s; retrying", last)
		time.Sleep(JoinRetryPause)
	}
	return nil, 0, fmt.Errorf("could not join through %s in %.0f s (%s)", strings.Join(targets, ", "), deadline.Seconds(), last)
}

func statusOf(h *wire.Object) string { s, _ := h.Str("status"); return s }

func askOnce(ctx *zmq.Context, keys *security.NodeKeys, target string, header *wire.Object) *wire.Object {
	host, port, err := security.ParseAddress(target)
	if err != nil {
		return nil
	}
	s, err := ctx.NewSocket(zmq.DEALER)
	if err != nil {
		return nil
	}
	defer s.Close()
	s.SetInt(zmq.Linger, 0)
	if security.MakeClient(s, keys) != nil || s.Connect(Endpoint(host, port)) != nil {
		return nil
	}
	body, err := wire.Encode(header, nil)
	if err != nil {
		return nil
	}
	if s.Send(append([][]byte{{}}, body...), 0) != nil {
		return nil
	}
	s.SetDuration(zmq.RcvTimeo, JoinAttempt)
	frames, err := s.Recv(0)
	if err != nil {
		return nil
	}
	if len(frames) > 0 && len(frames[0]) == 0 {
		frames = frames[1:]
	}
	reply, _, err := wire.Decode(frames, wire.DecodeOptions{AllowEmptyID: true})
	if err != nil {
		return nil
	}
	return reply
}
