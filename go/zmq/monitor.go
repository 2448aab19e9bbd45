package zmq

/*
#include <zmq.h>
#include <stdlib.h>
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Event is a socket monitor event (zmq_socket_monitor(3)).
type Event int

// Monitor events zmqnode looks at.
const (
	EventConnected               Event = C.ZMQ_EVENT_CONNECTED
	EventConnectDelayed          Event = C.ZMQ_EVENT_CONNECT_DELAYED
	EventConnectRetried          Event = C.ZMQ_EVENT_CONNECT_RETRIED
	EventListening               Event = C.ZMQ_EVENT_LISTENING
	EventAccepted                Event = C.ZMQ_EVENT_ACCEPTED
	EventClosed                  Event = C.ZMQ_EVENT_CLOSED
	EventDisconnected            Event = C.ZMQ_EVENT_DISCONNECTED
	EventMonitorStopped          Event = C.ZMQ_EVENT_MONITOR_STOPPED
	EventHandshakeFailedNoDetail Event = C.ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
	EventHandshakeSucceeded      Event = C.ZMQ_EVENT_HANDSHAKE_SUCCEEDED
	EventHandshakeFailedProtocol Event = C.ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
	EventHandshakeFailedAuth     Event = C.ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
	EventAll                     Event = C.ZMQ_EVENT_ALL
)

var monitorSeq atomic.Uint64

// Monitor starts reporting s's events to a new PAIR socket, which it
// returns, connected and ready to Recv (see ParseEvent). Stop with
// StopMonitor before closing s; close the PAIR socket yourself.
func (c *Context) Monitor(s *Socket, events Event) (*Socket, error) {
	if s.p == nil {
		return nil, ErrClosed
	}
	endpoint := fmt.Sprintf("inproc://zmqgo.monitor.%d", monitorSeq.Add(1))
	cs := C.CString(endpoint)
	defer C.free(unsafe.Pointer(cs))
	if rc, err := C.zmq_socket_monitor(s.p, cs, C.int(events)); rc != 0 {
		return nil, lastError("socket_monitor", err)
	}
	pair, err := c.NewSocket(PAIR)
	if err != nil {
		return nil, err
	}
	if err := pair.Connect(endpoint); err != nil {
		pair.Close()
		return nil, err
	}
	return pair, nil
}

// StopMonitor stops s's monitor (zmq_socket_monitor with no endpoint).
func StopMonitor(s *Socket) error {
	if s.p == nil {
		return ErrClosed
	}
	if rc, err := C.zmq_socket_monitor(s.p, nil, 0); rc != 0 {
		return lastError("socket_monitor", err)
	}
	return nil
}

// ParseEvent reads a monitor message: the event, its value (an fd, errno or
// interval) and the endpoint it concerns.
func ParseEvent(frames [][]byte) (Event, uint32, string, error) {
	if len(frames) != 2 || len(frames[0]) != 6 {
		return 0, 0, "", fmt.Errorf("zmq monitor: not an event message (%d frames)", len(frames))
	}
	// Host byte order (zmq_socket_monitor(3)); every platform we build on is little-endian.
	ev := binary.LittleEndian.Uint16(frames[0][:2])
	val := binary.LittleEndian.Uint32(frames[0][2:])
	return Event(ev), val, string(frames[1]), nil
}
