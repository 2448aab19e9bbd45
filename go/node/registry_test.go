package node

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"zmqnode/ml"
	"zmqnode/storage"
	"zmqnode/wire"
)

type goldenCase struct {
	File      string  `json:"file"`
	RequestID string  `json:"request_id"`
	ModelID   string  `json:"model_id"`
	Created   float64 `json:"created"`
	Index     uint64  `json:"index"`
	Summary   string  `json:"summary"`
	Command   string  `json:"command"`
	Applied   bool    `json:"applied"`
}

type golden struct {
	Cases            []goldenCase      `json:"cases"`
	RetryCommand     string            `json:"retry_command"`
	SnapshotData     string            `json:"snapshot_data"`
	SnapshotThrough3 string            `json:"snapshot_through_3"`
	Listing          string            `json:"listing"`
	ModelIDs         map[string]string `json:"model_ids"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()
	store, err := storage.NewModelStore(filepath.Join(t.TempDir(), "models"), &storage.FsyncStats{})
	if err != nil {
		t.Fatal(err)
	}
	return NewRegistry(store)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModelIDForIsPythons(t *testing.T) {
	for requestID, want := range loadGolden(t).ModelIDs {
		if got := ModelIDFor(requestID); got != want {
			t.Errorf("ModelIDFor(%q) = %s, Python says %s", requestID, got, want)
		}
	}
}

// A Go leader's STORE_MODEL is byte-identical to a Python leader's for the
// same request id, model file, time and summary.
func TestEncodeStoreModelMatchesPythonBytes(t *testing.T) {
	for _, c := range loadGolden(t).Cases {
		t.Run(c.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "ml", "testdata", "models", c.File))
			if err != nil {
				t.Fatal(err)
			}
			model, err := ml.ReadModel(data)
			if err != nil {
				t.Fatal(err)
			}
			summary := ListingSummary(model)
			raw, _ := wire.MarshalJSON(summary)
			if string(raw) != c.Summary {
				t.Fatalf("listing summary\n go: %s\npy: %s", raw, c.Summary)
			}
			got, err := EncodeStoreModel(c.RequestID, data, c.Created, summary)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != c.Command {
				t.Fatalf("command differs from Python's")
			}
		})
	}
}

// Applying Python's commands gives Python's snapshot data and listing,
// byte for byte; a retried request id is ignored.
func TestApplyPythonCommandsGivesPythonSnapshotAndListing(t *testing.T) {
	g := loadGolden(t)
	r := newTestRegistry(t)
	for _, c := range g.Cases {
		rec, err := r.Apply(c.Index, unhex(t, c.Command))
		if err != nil || (rec != nil) != c.Applied {
			t.Fatalf("apply %s: %v %v", c.File, rec, err)
		}
		if rec.ModelID != c.ModelID || !r.Store.Exists(c.ModelID) {
			t.Fatalf("model %s not stored", c.ModelID)
		}
	}
	if rec, _ := r.Apply(9, unhex(t, g.RetryCommand)); rec != nil {
		t.Fatal("a second STORE_MODEL for a model id must be ignored")
	}
	data, err := r.SnapshotData(^uint64(0))
	if err != nil || string(data) != g.SnapshotData {
		t.Fatalf("snapshot data\n go: %s\npy: %s", data, g.SnapshotData)
	}
	through3, _ := r.SnapshotData(3)
	if string(through3) != g.SnapshotThrough3 {
		t.Fatalf("snapshot through 3\n go: %s\npy: %s", through3, g.SnapshotThrough3)
	}
	listing, _ := wire.MarshalJSON(r.Listing())
	if string(listing) != g.Listing {
		t.Fatalf("listing\n go: %s\npy: %s", listing, g.Listing)
	}
}

// Restoring Python's snapshot data and taking a snapshot again gives the
// same bytes; the files are then missing here, so CheckFiles asks for them.
func TestRestorePythonSnapshotRoundTrips(t *testing.T) {
	g := loadGolden(t)
	r := newTestRegistry(t)
	if err := r.Restore([]byte(g.SnapshotData)); err != nil {
		t.Fatal(err)
	}
	data, _ := r.SnapshotData(^uint64(0))
	if string(data) != g.SnapshotData {
		t.Fatalf("round trip\n go: %s\npy: %s", data, g.SnapshotData)
	}
	if bad := r.CheckFiles(); len(bad) != len(g.Cases) {
		t.Fatalf("%d files to fetch, want %d", len(bad), len(g.Cases))
	}
	if _, err := r.Load(g.Cases[0].ModelID); err == nil {
		t.Fatal("a missing file must never be served")
	}
}

func TestApplySkipsACommandThatFailsItsChecksum(t *testing.T) {
	g := loadGolden(t)
	cmd := unhex(t, g.Cases[0].Command)
	cmd[len(cmd)-1] ^= 0xff
	r := newTestRegistry(t)
	if rec, err := r.Apply(2, cmd); rec != nil || err != nil || len(r.Models) != 0 {
		t.Fatalf("a damaged command was applied: %v %v", rec, err)
	}
	if rec, err := r.Apply(3, []byte{1, 0}); rec != nil || err != nil {
		t.Fatalf("garbage was applied: %v %v", rec, err)
	}
}
