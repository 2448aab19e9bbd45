package node

import (
	"encoding/json"
	"os"
	"strings"
	"time"

	"zmqnode/raft"
	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// PeerHWM bounds the queue toward each peer; past it messages are dropped
// (Raft retransmits) instead of piling up for a dead peer.
const PeerHWM = 10_000

// MaxSubMessageBytes: a heartbeat or status message is small; anything
// bigger on the SUB is not ours.
const MaxSubMessageBytes = 1 << 20

// StatusTopic is the status feed's topic on the heartbeat PUB (§9b).
const StatusTopic = "zstatus"

// PeerLinks are the node's Raft links (transport/peers.py): the Raft ROUTER,
// one DEALER per peer, the heartbeat PUB and one SUB on every peer's PUB.
type PeerLinks struct {
	n          *Node
	RaftSock   *zmq.Socket
	Pub        *zmq.Socket
	Sub        *zmq.Socket
	dealers    map[string]*zmq.Socket
	monitors   map[string]*zmq.Socket
	LastHeard  map[string]time.Time
	PeerStatus map[string]PeerStatus
	maxHeader  int
	faults     *FaultFile

	subMon       *zmq.Socket       // the SUB's handshakes, watched before it connects
	subEndpoints map[string]string // peer -> its PUB's endpoint
	established  map[string]bool   // peers whose DEALER completed a handshake
	reopen       *reopener         // refused links, reopened after a backoff (reopen.go)
}

// NewPeerLinks binds the Raft ROUTER and the PUB and makes the SUB.
func NewPeerLinks(n *Node, maxMessageBytes int64) (*PeerLinks, error) {
	cfg := n.Cfg
	l := &PeerLinks{n: n, dealers: map[string]*zmq.Socket{}, monitors: map[string]*zmq.Socket{},
		LastHeard: map[string]time.Time{}, PeerStatus: map[string]PeerStatus{},
		subEndpoints: map[string]string{}, established: map[string]bool{}}
	l.reopen = newReopener(n.Count, n.Log.For("WARNING", "zmqnode.transport.peers"),
		n.Log.For("INFO", "zmqnode.transport.peers"))
	if cfg.FaultFile != "" {
		l.faults = &FaultFile{Path: cfg.FaultFile, Logf: n.Log.For("WARNING", "zmqnode.transport.faults")}
	}
	var err error
	l.RaftSock, err = n.sockets.Server(zmq.ROUTER, Endpoint(cfg.Host, cfg.Port+RaftOffset), security.Peers,
		security.ServerOptions{MaxMessageBytes: maxMessageBytes})
	if err != nil {
		return nil, err
	}
	l.Pub, err = n.sockets.Server(zmq.PUB, Endpoint(cfg.Host, cfg.Port+HeartbeatOffset), security.Clients, security.ServerOptions{})
	if err != nil {
		l.Close()
		return nil, err
	}
	l.Pub.SetInt(zmq.SndHWM, PeerHWM)
	l.Sub, err = n.ctx.NewSocket(zmq.SUB)
	if err == nil {
		err = l.Sub.SetString(zmq.Subscribe, wire.HeartbeatTopic)
	}
	if err == nil {
		// Peers' status feeds too: the leader promotes a learner only once it
		// reports no missing model file.
		err = l.Sub.SetString(zmq.Subscribe, StatusTopic)
	}
	if err == nil {
		err = l.Sub.SetInt(zmq.Linger, 0)
	}
	if err == nil {
		err = l.Sub.SetInt64(zmq.MaxMsgSize, MaxSubMessageBytes)
	}
	if err == nil {
		err = security.MakeClient(l.Sub, n.keys)
	}
	if err == nil {
		// Watched before it connects: a handshake can finish (or be refused)
		// within a millisecond, and an event before the monitor is lost.
		l.subMon, err = n.ctx.Monitor(l.Sub, zmq.RefusedEvents|zmq.EventHandshakeSucceeded)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	n.Register(l.subMon, l.subEvent)
	n.OnTick = append(n.OnTick, l.tick)
	return l, nil
}

// SetPeers links to exactly peers from now on (the membership changed).
func (l *PeerLinks) SetPeers(peers []string) (added, removed []string) {
	want := map[string]bool{}
	for _, p := range peers {
		want[p] = true
	}
	for p := range l.dealers {
		if !want[p] {
			removed = append(removed, p)
		}
	}
	for _, p := range peers {
		if _, ok := l.dealers[p]; !ok {
			added = append(added, p)
		}
	}
	// Before any connect on the SUB, see its refusals (settleSub).
	l.settleSub()
	for _, p := range removed {
		if ep, ok := l.subEndpoints[p]; ok {
			l.Sub.Disconnect(ep) // an error: refused and not reopened yet
			delete(l.subEndpoints, p)
		}
		if mon := l.monitors[p]; mon != nil {
			l.n.Unregister(mon)
			zmq.StopMonitor(l.dealers[p])
			mon.Close()
			delete(l.monitors, p)
		}
		l.dealers[p].Close()
		delete(l.dealers, p)
		delete(l.LastHeard, p)
		delete(l.PeerStatus, p)
		delete(l.established, p)
		l.reopen.forget(p)
	}
	for _, p := range added {
		host, port, err := security.ParseAddress(p)
		if err != nil {
			l.n.Log.Log("WARNING", "zmqnode.transport.peers", "cannot link to %s: %v", p, err)
			continue
		}
		sub := Endpoint(host, port+HeartbeatOffset)
		if err := l.Sub.Connect(sub); err != nil {
			l.n.Log.Log("WARNING", "zmqnode.transport.peers", "cannot subscribe to %s: %v", p, err)
		} else {
			l.subEndpoints[p] = sub
		}
		d, mon, err := l.dealer(Endpoint(host, port+RaftOffset))
		if err != nil {
			l.n.Log.Log("WARNING", "zmqnode.transport.peers", "cannot link to %s: %v", p, err)
			continue
		}
		l.dealers[p] = d
		l.monitors[p] = mon
		peer := p
		l.n.Register(mon, func(frames [][]byte) { l.dealerEvent(peer, frames) })
	}
	return added, removed
}

// Receive decodes a message from the ROUTER (identity removed); nil when
// malformed or not for this node.
func (l *PeerLinks) Receive(frames [][]byte) *raft.Message {
	w, err := wire.DecodeRaft(frames, 0)
	if err != nil {
		l.n.Count("raft_garbage")
		l.n.Log.Log("WARNING", "zmqnode.transport.peers", "dropped a malformed Raft message: %v", err)
		return nil
	}
	if (w.Dst != l.n.ID && w.Dst != wire.Broadcast) || l.dealers[w.Src] == nil {
		l.n.Count("raft_misrouted")
		l.n.Log.Log("WARNING", "zmqnode.transport.peers", "dropped a Raft message from %s to %s: not for this cluster member",
			pyRepr(w.Src), pyRepr(w.Dst))
		return nil
	}
	if l.faults != nil && l.faults.DropIn(w.Src) {
		return nil
	}
	m, err := fromWire(w)
	if err != nil {
		l.n.Count("raft_garbage")
		return nil
	}
	l.LastHeard[w.Src] = time.Now()
	l.n.Stats.RaftReceived(m)
	l.n.traffic.Received(m)
	return &m
}

// ReceivePublished handles a message from a peer's PUB: a heartbeat, or a
// status feed message (kept in PeerStatus).
func (l *PeerLinks) ReceivePublished(frames [][]byte) *raft.Message {
	if len(frames) > 0 && string(frames[0]) == StatusTopic {
		if len(frames) != 2 {
			return nil
		}
		v, err := wire.UnmarshalJSON(frames[1])
		if err != nil {
			return nil
		}
		if o, ok := v.(*wire.Object); ok {
			if node, ok := o.Str("node"); ok && l.dealers[node] != nil {
				l.PeerStatus[node] = PeerStatus{At: time.Now(), Status: o}
			}
		}
		return nil
	}
	if len(frames) < 2 {
		return nil
	}
	return l.Receive(frames[1:])
}

// Send routes a message to its peer's DEALER, or a broadcast to the PUB.
func (l *PeerLinks) Send(m raft.Message) {
	if l.faults != nil && m.Dst != raft.Broadcast && l.faults.DropOut(m.Dst) {
		return
	}
	frames, err := wire.EncodeRaft(toWire(m))
	if err != nil {
		l.n.Log.Log("ERROR", "zmqnode.transport.peers", "cannot encode a Raft message: %v", err)
		return
	}
	if m.Dst == raft.Broadcast {
		if l.faults != nil && l.faults.DropAllOut() {
			return
		}
		l.Pub.Send(append([][]byte{[]byte(wire.HeartbeatTopic)}, frames...), zmq.DontWait)
	} else {
		d := l.dealers[m.Dst]
		if d == nil {
			l.n.Count("raft_no_link")
			return
		}
		if err := d.Send(frames, zmq.DontWait); err != nil {
			l.n.Count("raft_dropped")
			return
		}
	}
	l.n.Stats.RaftSent(m)
	l.n.traffic.Sent(m)
}

// PublishStatus sends one status feed message, best effort.
func (l *PeerLinks) PublishStatus(status []byte) {
	l.Pub.Send([][]byte{[]byte(StatusTopic), status}, zmq.DontWait)
}

// dealer opens a DEALER to a peer's Raft ROUTER, its monitor attached
// before it connects.
func (l *PeerLinks) dealer(endpoint string) (d, mon *zmq.Socket, err error) {
	d, err = l.n.ctx.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, nil, err
	}
	err = d.SetInt(zmq.Linger, 0)
	if err == nil {
		err = d.SetInt(zmq.SndHWM, PeerHWM)
	}
	if err == nil {
		err = d.SetInt(zmq.Immediate, 1) // never queue for a peer that is not there
	}
	if err == nil {
		err = security.MakeClient(d, l.n.keys)
	}
	if err == nil {
		mon, err = l.n.ctx.Monitor(d, zmq.EventDisconnected|zmq.EventHandshakeSucceeded|zmq.RefusedEvents)
	}
	if err == nil {
		if err = d.Connect(endpoint); err != nil {
			zmq.StopMonitor(d)
			mon.Close()
		}
	}
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, mon, nil
}

// dealerEvent handles a monitor event of peer's DEALER.
//
// A peer's process that dies drops its TCP connection at once; if it led,
// the node need not wait an election timeout to notice. A refused
// handshake drops a connection that never carried anything: not that.
func (l *PeerLinks) dealerEvent(peer string, frames [][]byte) {
	ev, value, _, err := zmq.ParseEvent(frames)
	if err != nil || l.dealers[peer] == nil {
		return
	}
	switch {
	case ev == zmq.EventDisconnected:
		if l.established[peer] {
			delete(l.established, peer)
			l.n.onPeerDisconnected(peer)
		}
	case ev == zmq.EventHandshakeSucceeded:
		l.established[peer] = true
		l.reopen.gotThrough(peer, linkRaft)
	case ev&zmq.RefusedEvents != 0:
		if host, port, err := security.ParseAddress(peer); err == nil {
			l.reopen.refused(l.dealers[peer], Endpoint(host, port+RaftOffset), peer, linkRaft, ev, value, time.Now())
		}
	}
}

// subEvent handles a monitor event of the SUB (its connections to the
// peers' PUBs).
func (l *PeerLinks) subEvent(frames [][]byte) {
	ev, value, endpoint, err := zmq.ParseEvent(frames)
	if err != nil {
		return
	}
	for _, p := range l.subPeers(endpoint) {
		switch {
		case ev == zmq.EventHandshakeSucceeded:
			l.reopen.gotThrough(p, linkSub)
		case ev&zmq.RefusedEvents != 0:
			l.reopen.refused(l.Sub, l.subEndpoints[p], p, linkSub, ev, value, time.Now())
		}
	}
}

// settleSub handles the SUB's monitor events that wait, so a refused
// connection is disconnected before anything else connects on the SUB
// (reopener.refused says why).
func (l *PeerLinks) settleSub() {
	for l.subMon != nil {
		frames, err := l.subMon.Recv(zmq.DontWait)
		if err != nil {
			return
		}
		l.subEvent(frames)
	}
}

// subPeers are the peers whose PUB endpoint (as libzmq reports it) is
// endpoint; by port alone when none is spelled that way (a host name).
func (l *PeerLinks) subPeers(endpoint string) []string {
	var exact, byPort []string
	port := endpoint[strings.LastIndexByte(endpoint, ':')+1:]
	for p, e := range l.subEndpoints {
		if e == endpoint {
			exact = append(exact, p)
		} else if e[strings.LastIndexByte(e, ':')+1:] == port {
			byPort = append(byPort, p)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return byPort
}

// tick reopens the refused links whose backoff has passed.
func (l *PeerLinks) tick(now time.Time) {
	due := l.reopen.due(now)
	if len(due) == 0 {
		return
	}
	l.settleSub()
	for _, k := range due {
		if l.dealers[k.peer] == nil || !l.reopen.take(k) {
			continue
		}
		var err error
		if k.link == linkRaft {
			host, port, perr := security.ParseAddress(k.peer)
			if err = perr; err == nil {
				err = l.dealers[k.peer].Connect(Endpoint(host, port+RaftOffset))
			}
		} else {
			err = l.Sub.Connect(l.subEndpoints[k.peer])
		}
		if err != nil {
			l.n.Log.Log("WARNING", "zmqnode.transport.peers", "cannot reopen our %s connection to %s: %v",
				k.link, k.peer, err)
		}
	}
}

// Close closes every socket.
func (l *PeerLinks) Close() {
	if l.subMon != nil {
		zmq.StopMonitor(l.Sub)
		l.subMon.Close()
		l.subMon = nil
	}
	for p, mon := range l.monitors {
		zmq.StopMonitor(l.dealers[p])
		mon.Close()
	}
	l.monitors = map[string]*zmq.Socket{}
	for _, d := range l.dealers {
		d.Close()
	}
	l.dealers = map[string]*zmq.Socket{}
	for _, s := range []*zmq.Socket{l.RaftSock, l.Pub, l.Sub} {
		if s != nil {
			s.SetInt(zmq.Linger, 0)
			s.Close()
		}
	}
}

// FaultFile is the test-only --fault-file (transport/faults.py): JSON
// {"drop_in": [peer...], "drop_out": [peer...]}, re-read when it changes
// (checked at most every 50 ms). Missing or empty: no faults.
type FaultFile struct {
	Path    string
	Logf    func(string, ...any)
	mtime   int64
	loaded  bool
	next    time.Time
	dropIn  map[string]bool
	dropOut map[string]bool
}

func (f *FaultFile) refresh() {
	now := time.Now()
	if now.Before(f.next) {
		return
	}
	f.next = now.Add(50 * time.Millisecond)
	var mtime int64 = -1
	if st, err := os.Stat(f.Path); err == nil {
		mtime = st.ModTime().UnixNano()
	}
	if (f.loaded && mtime == f.mtime) || (!f.loaded && mtime < 0) {
		f.loaded, f.mtime = true, mtime
		return
	}
	f.loaded, f.mtime = true, mtime
	var rules struct {
		DropIn  []string `json:"drop_in"`
		DropOut []string `json:"drop_out"`
	}
	if mtime >= 0 {
		data, err := os.ReadFile(f.Path)
		if err == nil && len(data) > 0 {
			if err := json.Unmarshal(data, &rules); err != nil {
				f.Logf("ignoring fault file %s: %v", f.Path, err)
			}
		} else if err != nil {
			f.Logf("ignoring fault file %s: %v", f.Path, err)
		}
	}
	f.dropIn, f.dropOut = map[string]bool{}, map[string]bool{}
	for _, p := range rules.DropIn {
		f.dropIn[p] = true
	}
	for _, p := range rules.DropOut {
		f.dropOut[p] = true
	}
	f.Logf("test faults now: drop_in=%s drop_out=%s", pyList(sortedKeys(f.dropIn)), pyList(sortedKeys(f.dropOut)))
}

// DropIn reports whether messages from peer are dropped.
func (f *FaultFile) DropIn(peer string) bool { f.refresh(); return f.dropIn[peer] }

// DropOut reports whether messages to peer are dropped.
func (f *FaultFile) DropOut(peer string) bool { f.refresh(); return f.dropOut[peer] }

// DropAllOut: Python drops a broadcast only if its dst ("*") is listed.
func (f *FaultFile) DropAllOut() bool { f.refresh(); return f.dropOut[raft.Broadcast] }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sortedCopy(out)
}

// pyList is Python's repr of a list of plain strings.
func pyList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = pyRepr(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
