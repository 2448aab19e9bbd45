package training

import (
	"fmt"
	"math"

	"zmqnode/ml"
)

// The scheduler's constants, as zmqnode/training/scheduler.py.
const (
	// MinChunkTimeout: a chunk whose trainer has not answered after this
	// long (or 4x the slowest answer of the round, if larger) moves.
	MinChunkTimeout = 5.0
	// FirstAnswerTimeout: how long a round's first answer may take.
	FirstAnswerTimeout = 60.0
	// PeerFreshSeconds and PeerDownSeconds: a peer heard from this recently
	// is an available trainer; one silent for longer than PeerDownSeconds is
	// down (its chunks move at once).
	PeerFreshSeconds = 1.0
	PeerDownSeconds  = 2.0
	never            = -1e9
)

// Dispatch sends chunk to trainer, with its rows if withData; false if
// that trainer cannot take it now.
type Dispatch func(chunk int, trainer string, withData bool) bool

// ChunkCount is scheduler.chunk_count (ml.ChunkCount).
func ChunkCount(rows, trainers int) int { return ml.ChunkCount(rows, trainers) }

// Trainers is what the coordinator knows of the trainers at one instant:
// Available in the order to try them (this node's own first), Down
// (trainer -> why it cannot answer), RestartedAt (trainer -> when its
// process last started; a job sent before was lost).
type Trainers struct {
	Available   []string
	Down        map[string]string
	RestartedAt map[string]float64
}

// Survey is Trainers.survey: the snapshot at now for node own.
func Survey(now float64, own string, ownEnabled, ownExited bool, ownStarted float64,
	peers []string, lastHeard map[string]float64) Trainers {
	t := Trainers{Down: map[string]string{}, RestartedAt: map[string]float64{own: ownStarted}}
	if ownEnabled && !ownExited {
		t.Available = append(t.Available, own)
	}
	if ownExited {
		t.Down[own] = "exited"
	}
	for _, peer := range peers {
		heard, ok := lastHeard[peer]
		if !ok {
			heard = never
		}
		silent := now - heard
		if silent < PeerFreshSeconds {
			t.Available = append(t.Available, peer)
		} else if silent > PeerDownSeconds {
			t.Down[peer] = fmt.Sprintf("is down (node silent for %.1fs)", silent)
		}
	}
	return t
}

// WhyDown is why trainer cannot answer a job sent at sentAt ("" if it may).
func (t Trainers) WhyDown(trainer string, sentAt float64) string {
	if trainer == "" {
		return ""
	}
	if why := t.Down[trainer]; why != "" {
		return why
	}
	if at, ok := t.RestartedAt[trainer]; ok && sentAt < at {
		return "exited and was restarted"
	}
	return ""
}

func (t Trainers) has(trainer string) bool {
	for _, a := range t.Available {
		if a == trainer {
			return true
		}
	}
	return false
}

// Assignment is chunk Chunk of the current round, sent to Trainer at SentAt
// ("" and -Inf while no trainer took it).
type Assignment struct {
	Chunk    int
	Trainer  string
	SentAt   float64
	DataSent bool
}

// ChunkScheduler is the scheduling state of one training job, pure: the
// time comes in as now, the trainers as a Trainers snapshot, sending through
// a Dispatch (zmqnode/training/scheduler.py's ChunkScheduler). Methods that
// may move work return the warnings they added (also kept in Warnings).
type ChunkScheduler struct {
	Trainers     []string
	Started      float64
	Timeout      float64
	NChunks      int
	Round        int
	Pending      map[int]*Assignment
	HasData      map[string]map[int]bool
	Warnings     []string
	RoundStarted float64
	Slowest      float64
}

// NewChunkScheduler: trainers available when the job came, when it came,
// and how long it may take in all (--training-timeout), in seconds.
func NewChunkScheduler(trainers []string, started, timeout float64) *ChunkScheduler {
	return &ChunkScheduler{
		Trainers: append([]string(nil), trainers...), Started: started, Timeout: timeout,
		Pending: map[int]*Assignment{}, HasData: map[string]map[int]bool{},
		Warnings: []string{},
	}
}

// SetChunks: the data was split into n chunks; the first n trainers take part.
func (s *ChunkScheduler) SetChunks(n int) {
	s.NChunks = n
	if len(s.Trainers) > n {
		s.Trainers = s.Trainers[:n]
	}
}

// StartRound sends every chunk of round s.Round: chunk c to the job's
// trainer c mod n first, else to any available one. A job's trainer no
// longer available is dropped from the job, with a warning.
func (s *ChunkScheduler) StartRound(now float64, t Trainers, dispatch Dispatch) []string {
	s.Pending = map[int]*Assignment{}
	s.RoundStarted = now
	s.Slowest = 0
	var added []string
	var kept []string
	for _, tr := range s.Trainers {
		if t.has(tr) {
			kept = append(kept, tr)
			continue
		}
		why := t.WhyDown(tr, math.Inf(1))
		if why == "" {
			why = "is unreachable"
		}
		added = append(added, fmt.Sprintf(
			"trainer %s %s: from round %d its chunks go to the others", tr, why, s.Round))
	}
	if len(kept) == 0 {
		kept = append([]string(nil), t.Available...)
	}
	s.Trainers = kept
	for chunk := 0; chunk < s.NChunks; chunk++ {
		var candidates []string
		if len(s.Trainers) > 0 {
			candidates = append(candidates, s.Trainers[chunk%len(s.Trainers)])
		}
		candidates = append(candidates, t.Available...)
		s.place(chunk, candidates, now, dispatch)
	}
	s.Warnings = append(s.Warnings, added...)
	return added
}

// NextRound: the round was averaged; start the next one.
func (s *ChunkScheduler) NextRound(now float64, t Trainers, dispatch Dispatch) []string {
	s.Round++
	return s.StartRound(now, t, dispatch)
}

// Answered: chunk came back (its answer counts).
func (s *ChunkScheduler) Answered(chunk int, now float64) {
	delete(s.Pending, chunk)
	s.Slowest = math.Max(s.Slowest, now-s.RoundStarted)
}

// LostData: trainer answered that it lacks chunk's rows (it restarted); the
// chunk goes again, rows included, to its current trainer.
func (s *ChunkScheduler) LostData(trainer string, chunk int, now float64, dispatch Dispatch) {
	delete(s.HasData[trainer], chunk)
	if a := s.Pending[chunk]; a != nil && a.Trainer != "" {
		s.assign(chunk, a.Trainer, now, dispatch)
	}
}

// ChunkTimeout is how long a chunk of this round may go unanswered.
func (s *ChunkScheduler) ChunkTimeout() float64 {
	if s.Slowest == 0 {
		return FirstAnswerTimeout
	}
	return math.Max(MinChunkTimeout, 4*s.Slowest)
}

// Check moves every pending chunk past its deadline, whose trainer is down,
// or that no trainer took yet, to another available trainer (alone: to the
// same one). A chunk nobody can take stays pending.
func (s *ChunkScheduler) Check(now float64, t Trainers, dispatch Dispatch) []string {
	timeout := s.ChunkTimeout()
	var added []string
	for chunk := 0; chunk < s.NChunks; chunk++ { // Python: insertion order; chunk order here
		a := s.Pending[chunk]
		if a == nil {
			continue
		}
		down := t.WhyDown(a.Trainer, a.SentAt)
		if down == "" && now-a.SentAt < timeout {
			continue
		}
		var others []string
		for _, tr := range t.Available {
			if tr != a.Trainer {
				others = append(others, tr)
			}
		}
		if len(others) == 0 {
			others = append(others, t.Available...)
		}
		if len(others) == 0 {
			continue
		}
		if a.Trainer != "" {
			why := down
			if why == "" {
				why = fmt.Sprintf("did not answer within %.1fs", timeout)
			}
			added = append(added, fmt.Sprintf(
				"trainer %s %s: chunk %d of round %d went to another trainer", a.Trainer, why, chunk, s.Round))
			var rest []string
			for _, tr := range s.Trainers {
				if tr != a.Trainer {
					rest = append(rest, tr)
				}
			}
			if len(rest) == 0 {
				rest = append(rest, others...)
			}
			s.Trainers = rest
		}
		s.place(chunk, others, now, dispatch)
	}
	s.Warnings = append(s.Warnings, added...)
	return added
}

// TimedOut: the whole job is past its timeout (it fails with TIMEOUT).
func (s *ChunkScheduler) TimedOut(now float64) bool { return now-s.Started > s.Timeout }

// TrainerRestarted: trainer's process exited with status and was started
// again; the chunks it cached are gone.
func (s *ChunkScheduler) TrainerRestarted(trainer string, status int) []string {
	for _, tr := range s.Trainers {
		if tr == trainer {
			added := []string{fmt.Sprintf(
				"trainer %s exited (status %d) and was restarted; its chunks were sent again", trainer, status)}
			s.Warnings = append(s.Warnings, added...)
			return added
		}
	}
	return nil
}

func (s *ChunkScheduler) place(chunk int, candidates []string, now float64, dispatch Dispatch) {
	seen := map[string]bool{}
	for _, tr := range candidates {
		if seen[tr] {
			continue
		}
		seen[tr] = true
		if s.assign(chunk, tr, now, dispatch) {
			return
		}
	}
	s.Pending[chunk] = &Assignment{Chunk: chunk, SentAt: math.Inf(-1)}
}

func (s *ChunkScheduler) assign(chunk int, trainer string, now float64, dispatch Dispatch) bool {
	cached := s.HasData[trainer][chunk]
	if !dispatch(chunk, trainer, !cached) {
		delete(s.HasData[trainer], chunk)
		return false
	}
	if s.HasData[trainer] == nil {
		s.HasData[trainer] = map[int]bool{}
	}
	s.HasData[trainer][chunk] = true
	s.Pending[chunk] = &Assignment{Chunk: chunk, Trainer: trainer, SentAt: now, DataSent: !cached}
	return true
}
