package storage

import (
	"encoding/hex"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// modelDisk is the Ready contract on plain values: what the disk must hold
// (tests/test_storage_node.py ModelDisk).
type modelDisk struct {
	hs       HardState
	snapshot *Snapshot
	entries  []Entry
}

func (m *modelDisk) base() uint64 {
	if m.snapshot == nil {
		return 0
	}
	return m.snapshot.Index
}

func (m *modelDisk) persist(rd Ready) {
	if rd.Snapshot != nil {
		m.snapshot, m.entries = rd.Snapshot, nil
	}
	if rd.HardState != nil {
		m.hs = *rd.HardState
	}
	if len(rd.Entries) > 0 {
		m.entries = append(m.entries[:rd.Entries[0].Index-m.base()-1:rd.Entries[0].Index-m.base()-1], rd.Entries...)
	}
}

func (m *modelDisk) compact(s Snapshot) {
	m.entries = append([]Entry(nil), m.entries[s.Index-m.base():]...)
	m.snapshot = &s
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

func opJSON(rd Ready) writeOp {
	op := writeOp{Op: "persist", Entries: []goldenEntry{}}
	if rd.HardState != nil {
		op.HardState = &goldenHardState{Term: rd.HardState.Term, Vote: rd.HardState.Vote}
	}
	for _, e := range rd.Entries {
		op.Entries = append(op.Entries, goldenEntry{Index: e.Index, Term: e.Term, Kind: e.Kind.String(), Data: hex.EncodeToString(e.Data)})
	}
	if rd.Snapshot != nil {
		op.Snapshot = snapJSON(*rd.Snapshot)
	}
	return op
}

func snapJSON(s Snapshot) *goldenSnapshot {
	return &goldenSnapshot{Index: s.Index, Term: s.Term, Data: hex.EncodeToString(s.Data), Membership: hex.EncodeToString(s.Membership)}
}

// TestRandomReadysAndRestartsMatchAModelAndPython runs random Readys,
// compactions and restarts against modelDisk; then, when the repository's
// Python is there, replays the same operations with the Python classes
// (testdata/gen.py --replay) and compares the directories byte for byte.
func TestRandomReadysAndRestartsMatchAModelAndPython(t *testing.T) {
	syncFile = func(*os.File) error { return nil } // content is checked here; fast
	t.Cleanup(func() { syncFile = (*os.File).Sync })
	python := filepath.Join("..", "..", ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil || testing.Short() {
		python = ""
	}
	kinds := []EntryKind{EntryCommand, EntryNoop, EntryConfig}
	var jobs []replayJob
	for seed := int64(0); seed < 4; seed++ {
		rng := rand.New(rand.NewSource(seed))
		dir := filepath.Join(t.TempDir(), "go")
		s, _ := openNode(t, dir)
		m := &modelDisk{}
		var ops []writeOp
		term := uint64(1)
		first := Ready{HardState: &HardState{Term: term}}
		m.persist(first)
		if err := s.Persist(first); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, opJSON(first))
		check := func(r Recovered) {
			t.Helper()
			if r.HardState != m.hs || !sameSnapshot(r.Snapshot, m.snapshot) || !sameEntries(r.Entries, m.entries) {
				t.Fatalf("seed %d: recovered %+v\nwant %+v %+v %+v", seed, r, m.hs, m.snapshot, m.entries)
			}
		}
		for step := 0; step < 150; step++ {
			base := m.base()
			last := base + uint64(len(m.entries))
			var rd Ready
			switch roll := rng.Float64(); {
			case roll < 0.05:
				index := uint64(2)
				if last > 0 {
					index = uint64(int64(last) + int64(rng.Intn(5)) - 1)
				}
				if index <= base {
					continue
				}
				rd = Ready{Snapshot: &Snapshot{Index: index, Term: term, Data: []byte("s"), Membership: randBytes(rng, rng.Intn(3))}}
			case roll < 0.12 && len(m.entries) > 0:
				index := base + 1 + uint64(rng.Intn(int(last-base)))
				snap := Snapshot{Index: index, Term: m.entries[index-base-1].Term, Data: randBytes(rng, 8)}
				m.compact(snap)
				if err := s.Compact(snap); err != nil {
					t.Fatal(err)
				}
				ops = append(ops, writeOp{Op: "compact", Snapshot: snapJSON(snap)})
				continue
			case roll < 0.2:
				s.Close()
				var r Recovered
				s, r = openNode(t, dir)
				check(r)
				ops = append(ops, writeOp{Op: "reopen"})
				continue
			default:
				if rng.Float64() < 0.2 {
					term++
				}
				start := base + 1 + uint64(rng.Intn(int(last-base)+1))
				votes := []string{"", "n1", "127.0.0.1:9002", "nœud"}
				rd = Ready{HardState: &HardState{Term: term, Vote: votes[rng.Intn(len(votes))]}}
				for k := 0; k < 1+rng.Intn(6); k++ {
					rd.Entries = append(rd.Entries, Entry{Index: start + uint64(k), Term: term,
						Kind: kinds[rng.Intn(3)], Data: randBytes(rng, rng.Intn(41))})
				}
			}
			m.persist(rd)
			if err := s.Persist(rd); err != nil {
				t.Fatal(err)
			}
			ops = append(ops, opJSON(rd))
		}
		s.Close()
		s, r := openNode(t, dir)
		check(r)
		s.Close()

		jobs = append(jobs, replayJob{Ops: ops, Dir: filepath.Join(t.TempDir(), "py"), goDir: dir})
	}
	if python == "" {
		t.Log("no ../../.venv/bin/python (or -short): the Python replay is skipped")
		return
	}
	jobsPath := filepath.Join(t.TempDir(), "jobs.json")
	raw, _ := json.Marshal(jobs)
	if err := os.WriteFile(jobsPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "gen.py"), "--replay", jobsPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python replay: %v\n%s", err, out)
	}
	for seed, job := range jobs {
		// The final reopen above is not in Ops; it changes nothing on a healthy disk.
		got, want := fileDigests(t, job.goDir), fileDigests(t, job.Dir)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("seed %d: Go and Python directories differ:\n go %v\n py %v", seed, got, want)
		}
	}
}

type replayJob struct {
	Ops   []writeOp `json:"ops"`
	Dir   string    `json:"dir"`
	goDir string
}
