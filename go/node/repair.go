package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// File repair (§9d, repair.py): one model at a time, one chunk in flight,
// the leader first, then each other peer.
const (
	FetchRequestTimeout = 2 * time.Second
	FetchRetryPause     = 2 * time.Second
)

type fetchJob struct {
	modelID, sha string
	size         int64
	peers        []string
	data         []byte
	requestID    string
	body         [][]byte // the request, until a send succeeds
	deadline     time.Time
	failures     []string
}

type wantedFile struct {
	sha  string
	size int64
}

// Fetcher repairs missing or damaged model files with FETCH.
type Fetcher struct {
	n         *Node
	wanted    map[string]wantedFile
	order     []string
	notBefore map[string]time.Time
	current   *fetchJob
	sockets   map[string]*zmq.Socket
	seq       int
}

// NewFetcher is an idle fetcher for n.
func NewFetcher(n *Node) *Fetcher {
	return &Fetcher{n: n, wanted: map[string]wantedFile{}, notBefore: map[string]time.Time{}, sockets: map[string]*zmq.Socket{}}
}

// Want queues model id for fetching (once).
func (f *Fetcher) Want(id, sha string, size int64) {
	if _, ok := f.wanted[id]; !ok {
		f.n.Log.Log("WARNING", "zmqnode.repair", "node %s: model %s is missing or damaged here; fetching it from peers", f.n.ID, id)
		f.order = append(f.order, id)
	}
	f.wanted[id] = wantedFile{sha, size}
}

// Forget: the file was repaired another way (replaying the log rewrote it).
func (f *Fetcher) Forget(id string) {
	if _, ok := f.wanted[id]; !ok {
		return
	}
	delete(f.wanted, id)
	delete(f.notBefore, id)
	f.dropOrder(id)
	if f.current != nil && f.current.modelID == id {
		f.current = nil
	}
}

func (f *Fetcher) dropOrder(id string) {
	for i, x := range f.order {
		if x == id {
			f.order = append(f.order[:i], f.order[i+1:]...)
			return
		}
	}
}

// Pending is how many files are still wanted.
func (f *Fetcher) Pending() int { return len(f.wanted) }

// Tick moves on a silent peer and starts the next file.
func (f *Fetcher) Tick(now time.Time) {
	peers := f.n.Core.Peers()
	if len(peers) == 0 {
		return
	}
	for _, p := range peers {
		f.socket(p) // connected ahead, as repair.py does at start: IMMEDIATE sends need a connection
	}
	if f.current != nil && !now.Before(f.current.deadline) {
		f.giveUp(f.current, "no answer in time", now)
	} else if f.current != nil && f.current.body != nil {
		f.send(f.current)
	}
	if f.current != nil {
		return
	}
	leader := f.n.Core.LeaderID()
	for _, id := range f.order {
		if t, ok := f.notBefore[id]; ok && t.After(now) {
			continue
		}
		order := sortedCopy(peers)
		sort.SliceStable(order, func(i, j int) bool { return order[i] == leader && order[j] != leader })
		w := f.wanted[id]
		f.current = &fetchJob{modelID: id, sha: w.sha, size: w.size, peers: order}
		f.request(f.current, now)
		return
	}
}

func (f *Fetcher) socket(peer string) *zmq.Socket {
	if s, ok := f.sockets[peer]; ok {
		return s
	}
	host, port, err := security.ParseAddress(peer)
	if err != nil {
		return nil
	}
	s, err := f.n.sockets.Client(zmq.DEALER, Endpoint(host, port), security.ClientOptions{Immediate: true})
	if err != nil {
		return nil
	}
	f.sockets[peer] = s
	f.n.Register(s, func(frames [][]byte) { f.onReply(peer, frames) })
	return s
}

func (f *Fetcher) request(j *fetchJob, now time.Time) {
	f.seq++
	j.requestID = fmt.Sprintf("fetch-%s-%d", f.n.ID, f.seq)
	j.deadline = now.Add(FetchRequestTimeout)
	header := wire.NewObject(
		wire.Field{Key: "v", Value: int64(1)},
		wire.Field{Key: "type", Value: wire.TypeFetch},
		wire.Field{Key: "id", Value: j.requestID},
		wire.Field{Key: "model_id", Value: j.modelID},
		wire.Field{Key: "offset", Value: int64(len(j.data))},
		wire.Field{Key: "length", Value: int64(f.n.Cfg.FetchChunkBytes)},
	)
	body, err := wire.Encode(header, nil)
	if err != nil {
		return
	}
	j.body = append([][]byte{{}}, body...)
	f.send(j)
}

// send tries the request; not connected yet (IMMEDIATE): tried again each
// tick until its deadline moves us on.
func (f *Fetcher) send(j *fetchJob) {
	if s := f.socket(j.peers[0]); s != nil && j.body != nil {
		if s.Send(j.body, zmq.DontWait) == nil {
			j.body = nil
		}
	}
}

func (f *Fetcher) onReply(peer string, frames [][]byte) {
	j := f.current
	_, body, err := wire.SplitEnvelope(frames)
	if err != nil {
		return
	}
	h, blobs, err := wire.Decode(body, wire.DecodeOptions{AllowEmptyID: true})
	if err != nil {
		return
	}
	if j == nil || wire.HeaderID(h) != j.requestID || j.peers[0] != peer {
		return // a late answer to a request we gave up on
	}
	now := time.Now()
	if st, _ := h.Str("status"); st != "OK" || len(blobs) != 1 {
		code, _ := h.Str("code")
		msg, _ := h.Str("message")
		if code == "" {
			code = "bad reply"
		}
		reason := code + ": " + msg
		if len(reason) > 200 {
			reason = reason[:200]
		}
		f.giveUp(j, reason, now)
		return
	}
	size, _ := h.Int("size")
	offset, okOff := h.Int("offset")
	if size != j.size || !okOff || offset != int64(len(j.data)) {
		f.giveUp(j, fmt.Sprintf("its copy has size %d", size), now)
		return
	}
	f.n.Stats.mu.Lock()
	f.n.Stats.ChunksFetched++
	f.n.Stats.mu.Unlock()
	j.data = append(j.data, blobs[0]...)
	if int64(len(j.data)) < j.size {
		if len(blobs[0]) == 0 {
			f.giveUp(j, "empty chunk before the end", now)
			return
		}
		f.request(j, now)
		return
	}
	sum := sha256.Sum256(j.data)
	if int64(len(j.data)) != j.size || hex.EncodeToString(sum[:]) != j.sha {
		f.giveUp(j, "its copy fails the checksum", now)
		return
	}
	if err := f.n.Registry.StoreRepaired(j.modelID, j.data); err != nil {
		f.giveUp(j, err.Error(), now)
		return
	}
	f.n.Stats.mu.Lock()
	f.n.Stats.FilesFetched++
	f.n.Stats.mu.Unlock()
	f.n.Log.Log("INFO", "zmqnode.repair", "node %s: repaired model %s (%d bytes) from %s", f.n.ID, j.modelID, j.size, peer)
	delete(f.wanted, j.modelID)
	delete(f.notBefore, j.modelID)
	f.dropOrder(j.modelID)
	f.current = nil
}

func (f *Fetcher) giveUp(j *fetchJob, reason string, now time.Time) {
	peer := j.peers[0]
	j.peers = j.peers[1:]
	j.failures = append(j.failures, peer+": "+reason)
	j.data = nil
	if len(j.peers) > 0 {
		f.request(j, now)
		return
	}
	f.n.Log.Log("WARNING", "zmqnode.repair", "node %s: could not fetch model %s from any peer (%s); retrying in %.0f s",
		f.n.ID, j.modelID, strings.Join(j.failures, "; "), FetchRetryPause.Seconds())
	f.notBefore[j.modelID] = now.Add(FetchRetryPause)
	// The next round starts with the next wanted file.
	f.dropOrder(j.modelID)
	f.order = append(f.order, j.modelID)
	f.current = nil
}

// Close closes the fetch sockets.
func (f *Fetcher) Close() {
	for _, s := range f.sockets {
		s.Close()
	}
	f.sockets = map[string]*zmq.Socket{}
}
