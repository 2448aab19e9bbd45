package storage

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ModelSuffix ends every model file name: models/<id>.bin.
const ModelSuffix = ".bin"

// CheckModelID returns nil for a valid model id (1 to 64 of A-Z a-z 0-9 _ -,
// model_store.py MODEL_ID_PATTERN) and an *InvalidModelIDError otherwise, so
// that an id such as "../raft_state" can never name a file outside models/.
func CheckModelID(id string) error {
	if !validModelID(id) {
		return &InvalidModelIDError{ID: id}
	}
	return nil
}

func validModelID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ModelStore is the models directory: one immutable file per committed
// model, written atomically so a reader sees a whole model or none. The
// bytes are opaque here (the ml package owns the format and its checksum).
type ModelStore struct {
	Dir   string
	Stats *FsyncStats
}

// NewModelStore opens the models directory, creating it if missing
// (durably) and removing temporary files a crash left.
func NewModelStore(dir string, stats *FsyncStats) (*ModelStore, error) {
	s := &ModelStore{Dir: dir, Stats: orNew(stats)}
	if err := EnsureDir(dir, s.Stats); err != nil {
		return nil, err
	}
	if _, err := RemoveStaleTemps(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is where id lives; an *InvalidModelIDError for a bad id.
func (s *ModelStore) Path(id string) (string, error) {
	if err := CheckModelID(id); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, id+ModelSuffix), nil
}

// Write stores data as id, atomically (replacing any old file); durably
// unless durable is false (see AtomicWrite: the log entry is then the
// durable copy, and compaction fsyncs the file before dropping it).
func (s *ModelStore) Write(id string, data []byte, durable bool) error {
	path, err := s.Path(id)
	if err != nil {
		return err
	}
	return AtomicWrite(path, data, s.Stats, durable)
}

// Read returns the model's bytes; an error satisfying
// errors.Is(err, fs.ErrNotExist) if absent, *InvalidModelIDError for a bad id.
func (s *ModelStore) Read(id string) ([]byte, error) {
	path, err := s.Path(id)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// Exists reports whether the model is stored (a regular file); false for any
// invalid id (it cannot be).
func (s *ModelStore) Exists(id string) bool {
	path, err := s.Path(id)
	if err != nil {
		return false
	}
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

// IDs returns every stored model id, sorted; temporary files and stray names
// are skipped.
func (s *ModelStore) IDs() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		if IsTempName(name) || !strings.HasSuffix(name, ModelSuffix) {
			continue
		}
		if id := strings.TrimSuffix(name, ModelSuffix); validModelID(id) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}
