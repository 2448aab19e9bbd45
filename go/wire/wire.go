// Package wire is the framing used on every zmqnode socket
// (docs/PROTOCOL.md §2–4 and §8), byte for byte as the Python node's
// zmqnode/transport/wire.py and raft_codec.py produce it.
//
// A message body is a list of frames:
//
//	[header JSON] [blob 0] [blob 1] ...
//
// The header is one JSON object (an *Object, keys in order) with at least
// v, type and id; bulk data travels in the blobs, described by the header.
// On the client ROUTER the body follows an envelope (routing frames and an
// empty delimiter): SplitEnvelope and JoinEnvelope.
//
// Everything here is pure: no sockets, no clock. Decoding failures are
// *ProtocolError values whose Code a node copies into its ERROR reply.
package wire

import (
	"errors"
	"fmt"
)

// ProtocolVersion is the header's v.
const ProtocolVersion = 1

// DefaultMaxHeaderBytes bounds a header frame: headers hold scalars and
// short lists only (bulk data is in blobs), so 1 MiB is generous; a larger
// one is refused with TOO_LARGE before it is parsed.
const DefaultMaxHeaderBytes = 1 << 20

// MaxIDLength bounds request ids (echoed in replies, kept for idempotency).
const MaxIDLength = 128

// UnknownRequestType is a reply's type when the request's could not be read.
const UnknownRequestType = "UNKNOWN"

// ErrorCode is the stable code of an ERROR reply (PROTOCOL.md §4.1). The
// strings are part of the protocol and never change meaning.
type ErrorCode string

// The error codes of PROTOCOL.md §4.1.
const (
	Malformed          ErrorCode = "MALFORMED"
	BadRequest         ErrorCode = "BAD_REQUEST"
	UnsupportedVersion ErrorCode = "UNSUPPORTED_VERSION"
	UnknownType        ErrorCode = "UNKNOWN_TYPE"
	BadShape           ErrorCode = "BAD_SHAPE"
	BadInput           ErrorCode = "BAD_INPUT"
	NotFound           ErrorCode = "NOT_FOUND"
	TooLarge           ErrorCode = "TOO_LARGE"
	NotLeader          ErrorCode = "NOT_LEADER"
	Timeout            ErrorCode = "TIMEOUT"
	Busy               ErrorCode = "BUSY"
	Unavailable        ErrorCode = "UNAVAILABLE"
	Internal           ErrorCode = "INTERNAL"
	TrainingFailed     ErrorCode = "TRAINING_FAILED"
	Conflict           ErrorCode = "CONFLICT"
)

// ErrorCodes lists every code this version knows, in PROTOCOL.md's order.
var ErrorCodes = []ErrorCode{Malformed, BadRequest, UnsupportedVersion, UnknownType, BadShape,
	BadInput, NotFound, TooLarge, NotLeader, Timeout, Busy, Unavailable, Internal,
	TrainingFailed, Conflict}

// Retryable reports whether the same request (same id) may succeed if sent
// again: exactly NOT_LEADER, TIMEOUT, BUSY and UNAVAILABLE. Unknown codes
// are not retryable (§4.1).
func (c ErrorCode) Retryable() bool {
	switch c {
	case NotLeader, Timeout, Busy, Unavailable:
		return true
	}
	return false
}

// Status is a reply's status field.
type Status string

// Reply statuses (§4).
const (
	StatusOK       Status = "OK"
	StatusError    Status = "ERROR"
	StatusRedirect Status = "REDIRECT"
	StatusProgress Status = "PROGRESS" // not an answer: a long request reports how it goes
)

// Client request types (§5).
const (
	TypeTrain        = "TRAIN"
	TypePredict      = "PREDICT"
	TypeList         = "LIST"
	TypeInfo         = "INFO"
	TypeStatus       = "STATUS"
	TypeImport       = "IMPORT"
	TypeFetch        = "FETCH"
	TypeMembers      = "MEMBERS"
	TypeMemberChange = "MEMBER_CHANGE"
	TypeJoin         = "JOIN"
)

// RequestTypes lists the client request types of §5.
var RequestTypes = []string{TypeTrain, TypePredict, TypeList, TypeInfo, TypeStatus,
	TypeImport, TypeFetch, TypeMembers, TypeMemberChange, TypeJoin}

// ProtocolError is a message that cannot be accepted: the code for the
// ERROR reply, a sentence a person can act on, and whatever part of the
// header could be parsed (nil if none) so the reply can echo type and id.
type ProtocolError struct {
	Code    ErrorCode
	Message string
	Header  *Object
}

func (e *ProtocolError) Error() string { return string(e.Code) + ": " + e.Message }

func protoErr(code ErrorCode, header *Object, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...), Header: header}
}

// CodeOf is the ErrorCode of a *ProtocolError anywhere in err's chain, or
// INTERNAL for any other error.
func CodeOf(err error) ErrorCode {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return Internal
}

// ---------------------------------------------------------------------------
// Envelope (client ROUTER, §2.2)

// SplitEnvelope splits [routing..., "", body...] at the first empty frame.
// The header is never empty, so the split is unambiguous. MALFORMED when
// there is no delimiter (such a message cannot be answered: drop it).
func SplitEnvelope(frames [][]byte) (routing, body [][]byte, err error) {
	for i, f := range frames {
		if len(f) == 0 {
			// routing is a copy, not frames[:i]: a reply keeps its routing
			// for as long as the request runs (a whole training), and a
			// sub-slice would keep frames' array, so every blob, alive.
			return append([][]byte(nil), frames[:i]...), frames[i+1:], nil
		}
	}
	return nil, nil, protoErr(Malformed, nil,
		"no empty delimiter frame: send [b'', header, blobs...] from a DEALER, or use a REQ socket")
}

// JoinEnvelope is what a ROUTER sends: routing frames, the delimiter, the body.
func JoinEnvelope(routing, body [][]byte) [][]byte {
	out := make([][]byte, 0, len(routing)+1+len(body))
	out = append(out, routing...)
	out = append(out, []byte{})
	return append(out, body...)
}

// ---------------------------------------------------------------------------
// Header + blobs

// Encode returns the frames of one body: the JSON header, then the blobs
// as they are (not copied). v is put first when the header lacks it (as
// Python's {"v": 1, **header}). A header without type or id is a bug in
// the sender and an error here, never a message on the wire.
func Encode(header *Object, blobs [][]byte) ([][]byte, error) {
	if !header.Has("type") || !header.Has("id") {
		return nil, fmt.Errorf("wire: header needs 'type' and 'id': %s", header)
	}
	h := header
	if !header.Has("v") {
		h = NewObject(Field{"v", ProtocolVersion})
		for _, f := range header.fields {
			h.Set(f.Key, f.Value)
		}
	}
	raw, err := MarshalJSON(h)
	if err != nil {
		return nil, fmt.Errorf("wire: header: %w", err)
	}
	frames := make([][]byte, 0, 1+len(blobs))
	frames = append(frames, raw)
	return append(frames, blobs...), nil
}

// DecodeOptions tunes Decode. The zero value is right for client requests.
type DecodeOptions struct {
	// MaxHeaderBytes bounds the header frame; 0 means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// AllowEmptyID accepts id "" (Raft messages, replies). Without it an
	// empty id is BAD_REQUEST unless status is ERROR (a reply to a request
	// whose id could not be read).
	AllowEmptyID bool
}

// Decode parses a body (no envelope) into its header and blobs, checking
// in this order (§2.1): a header frame exists (MALFORMED), it is at most
// MaxHeaderBytes (TOO_LARGE), it is a JSON object (MALFORMED), v is the
// integer 1 (UNSUPPORTED_VERSION), type is a non-empty string and id a
// string of at most MaxIDLength characters, non-empty for requests
// (BAD_REQUEST). The blobs are returned unchecked (not copied).
func Decode(frames [][]byte, opts DecodeOptions) (*Object, [][]byte, error) {
	limit := opts.MaxHeaderBytes
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	if len(frames) == 0 {
		return nil, nil, protoErr(Malformed, nil, "empty message: no header frame")
	}
	raw := frames[0]
	if len(raw) > limit {
		return nil, nil, protoErr(TooLarge, nil, "header frame is %d bytes, limit is %d", len(raw), limit)
	}
	value, err := UnmarshalJSON(raw)
	if err != nil {
		return nil, nil, protoErr(Malformed, nil, "header is not valid JSON: %v", err)
	}
	header, ok := value.(*Object)
	if !ok {
		return nil, nil, protoErr(Malformed, nil, "header must be a JSON object, got %s", kindOf(value))
	}
	version, present := header.Get("v")
	if !present {
		return nil, nil, protoErr(UnsupportedVersion, header,
			"header has no protocol version 'v' (this peer speaks v=%d)", ProtocolVersion)
	}
	if n, ok := intValue(version); !ok || n != ProtocolVersion {
		text, _ := MarshalJSON(version)
		return nil, nil, protoErr(UnsupportedVersion, header,
			"protocol version %s is not supported (this peer speaks v=%d)", text, ProtocolVersion)
	}
	if t, ok := header.Get("type"); !ok || !isNonEmptyString(t) {
		return nil, nil, protoErr(BadRequest, header, "header field 'type' is missing or not a non-empty string")
	}
	idValue, _ := header.Get("id")
	id, ok := idValue.(string)
	if !ok {
		return nil, nil, protoErr(BadRequest, header, "header field 'id' is missing or not a string")
	}
	if n := pyLen(id); n > MaxIDLength {
		return nil, nil, protoErr(BadRequest, header, "request id is %d characters, limit is %d", n, MaxIDLength)
	}
	if id == "" && !opts.AllowEmptyID {
		if status, _ := header.Get("status"); status != string(StatusError) {
			return nil, nil, protoErr(BadRequest, header, "request id 'id' is empty")
		}
	}
	return header, frames[1:], nil
}

// pyLen is len() of a Python str: code points, not bytes.
func pyLen(s string) int {
	n := 0
	for range s {
		n++
	}
	return n
}

func isNonEmptyString(v any) bool {
	s, ok := v.(string)
	return ok && s != ""
}

// HeaderString is header[key] when it is a string.
func HeaderString(h *Object, key string) (string, bool) {
	v, _ := h.Get(key)
	s, ok := v.(string)
	return s, ok
}

// HeaderType is the header's type (Decode checked it).
func HeaderType(h *Object) string {
	s, _ := HeaderString(h, "type")
	return s
}

// HeaderID is the header's id (Decode checked it).
func HeaderID(h *Object) string {
	s, _ := HeaderString(h, "id")
	return s
}

// ---------------------------------------------------------------------------
// Replies (§4)

// OKReply is the header of an OK reply to req (echoing its type and id),
// then fields in order.
func OKReply(req *Object, fields ...Field) *Object {
	return withFields(replyBase(req, StatusOK), fields)
}

// ErrorReply is the header of an ERROR reply. req may be partial or nil
// (ProtocolError.Header); id is then "".
func ErrorReply(req *Object, code ErrorCode, message string, fields ...Field) *Object {
	h := replyBase(req, StatusError)
	h.Set("code", string(code))
	h.Set("message", message)
	return withFields(h, fields)
}

// ErrorReplyFor is ErrorReply for a decoding failure: a *ProtocolError's
// code, message and partial header, or INTERNAL for any other error.
func ErrorReplyFor(req *Object, err error) *Object {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		if pe.Header != nil {
			req = pe.Header
		}
		return ErrorReply(req, pe.Code, pe.Message)
	}
	return ErrorReply(req, Internal, err.Error())
}

// RedirectReply is the header of a REDIRECT: "ask leader (host:port) instead".
func RedirectReply(req *Object, leader string, fields ...Field) *Object {
	h := replyBase(req, StatusRedirect)
	h.Set("leader", leader)
	return withFields(h, fields)
}

// ProgressReply is the header of a PROGRESS message (not an answer).
func ProgressReply(req *Object, fields ...Field) *Object {
	return withFields(replyBase(req, StatusProgress), fields)
}

func replyBase(req *Object, status Status) *Object {
	mtype := UnknownRequestType
	if t, ok := HeaderString(req, "type"); ok && t != "" {
		mtype = t
	}
	id := ""
	if s, ok := HeaderString(req, "id"); ok && pyLen(s) <= MaxIDLength {
		id = s
	}
	return NewObject(Field{"v", ProtocolVersion}, Field{"type", mtype}, Field{"id", id},
		Field{"status", string(status)})
}

func withFields(h *Object, fields []Field) *Object {
	for _, f := range fields {
		h.Set(f.Key, f.Value)
	}
	return h
}
