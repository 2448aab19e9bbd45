package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Names inside a storage dir (node_storage.py).
const (
	HardStateFileName = "raft_state.json"
	LogFileName       = "raft.log"
	SnapshotDirName   = "snapshot"
	ModelsDirName     = "models"
)

const (
	hardStateDirAdvice = "Restore the whole storage dir from one backup (raft_state.json alone is not " +
		"enough: it must be at least as new as raft.log) or " + Rejoin + "."
	logDirAdvice = "Restore the whole storage dir from one backup or " + Rejoin + "."
)

// Recovered is what NodeStorage.Open found: the Raft core's start state.
// Entries continue right after Snapshot (or start at 1 without one).
// Warnings say what recovery had to repair after a crash (already logged
// through Warn).
type Recovered struct {
	HardState HardState
	Snapshot  *Snapshot
	Entries   []Entry
	Warnings  []string
}

// NodeStorage is durable storage for one node: hard state, log and
// snapshot together. One event loop uses it (not safe for concurrent use,
// except Stats).
//
// Invariant kept on disk: the log continues right after the stored snapshot
// (raft.log's first index is snapshot.index + 1, or 1 without one). A crash
// between writing a snapshot and trimming the log breaks it for a moment;
// Open finishes the job.
type NodeStorage struct {
	Dir       string
	Stats     *FsyncStats
	HardState *HardStateFile
	Snapshots *SnapshotStore
	Log       *LogFile
	// Warn is told each warning Open logs; log.Printf when nil. Python logs
	// them on the "zmqnode.storage" logger at WARNING.
	Warn func(message string)

	snapshot *Snapshot
	open     bool
}

// NewNodeStorage is the storage in dir (nothing touched before Open).
func NewNodeStorage(dir string) *NodeStorage {
	stats := &FsyncStats{}
	return &NodeStorage{
		Dir:       dir,
		Stats:     stats,
		HardState: NewHardStateFile(filepath.Join(dir, HardStateFileName), stats),
		Snapshots: NewSnapshotStore(filepath.Join(dir, SnapshotDirName), stats),
		Log:       NewLogFile(filepath.Join(dir, LogFileName), stats),
	}
}

// ModelsDir is the directory of the model files.
func (s *NodeStorage) ModelsDir() string { return filepath.Join(s.Dir, ModelsDirName) }

// Snapshot is the stored snapshot, if any.
func (s *NodeStorage) Snapshot() *Snapshot { return s.snapshot }

// Open creates the directory if needed, loads everything and repairs what a
// crash left. It returns a *CorruptionError when a file is damaged in a way
// that cannot be repaired without losing acknowledged data, or when the
// files disagree in a way that could make this node vote twice in one term.
// The checks run in Python's order, so both report the same problem first.
func (s *NodeStorage) Open() (Recovered, error) {
	if s.open {
		return Recovered{}, fmt.Errorf("%s is already open: %w", s.Dir, ErrAlreadyOpen)
	}
	if err := EnsureDir(s.Dir, s.Stats); err != nil {
		return Recovered{}, err
	}
	if _, err := RemoveStaleTemps(s.Dir); err != nil {
		return Recovered{}, err
	}
	hs, err := s.HardState.Load()
	if err != nil {
		return Recovered{}, err
	}
	snap, err := s.Snapshots.Load()
	if err != nil {
		return Recovered{}, err
	}
	_, statErr := os.Stat(s.Log.Path)
	logExisted := statErr == nil
	s.Log.Warn = s.Warn
	contents, err := s.Log.Open()
	if err != nil {
		return Recovered{}, err
	}
	entries, repairs, err := s.recover(hs, snap, contents.Entries, logExisted)
	if err != nil {
		s.Log.Close()
		return Recovered{}, err
	}
	s.snapshot = snap
	s.open = true
	return Recovered{
		HardState: hs,
		Snapshot:  snap,
		Entries:   entries,
		Warnings:  append(append([]string{}, contents.Warnings...), repairs...),
	}, nil
}

func (s *NodeStorage) recover(hs HardState, snap *Snapshot, entries []Entry, logExisted bool) ([]Entry, []string, error) {
	if err := s.checkHardState(hs, snap, entries, logExisted); err != nil {
		return nil, nil, err
	}
	kept, repairs, err := s.reconcile(snap, entries)
	if err != nil {
		return nil, nil, err
	}
	if snap == nil {
		more, err := s.checkModelsAgainstLog(kept)
		if err != nil {
			return nil, nil, err
		}
		repairs = append(repairs, more...)
	}
	return kept, repairs, nil
}

// checkHardState refuses a term and vote that cannot be this node's latest.
//
// Persist makes the hard state durable before the snapshot and the entries
// of every Ready, so on a healthy disk raft_state.json exists whenever the
// log holds an entry or a snapshot is stored, and its term is at least every
// term in them. When that does not hold, the file was lost or rolled back
// and the vote it held is gone: starting anyway could grant a second vote in
// a term. The reverse loss is refused too: raft.log is created when a node
// first opens its storage, before any term is saved, so a saved term without
// a log file means the log was lost.
func (s *NodeStorage) checkHardState(hs HardState, snap *Snapshot, entries []Entry, logExisted bool) error {
	path := s.HardState.Path
	var highest uint64
	if len(entries) > 0 {
		highest = entries[len(entries)-1].Term
	}
	if snap != nil && snap.Term > highest {
		highest = snap.Term
	}
	holds := ""
	switch {
	case len(entries) > 0:
		holds = fmt.Sprintf("%s holds entries %d to %d", s.Log.Path, entries[0].Index, entries[len(entries)-1].Index)
	case snap != nil:
		holds = fmt.Sprintf("%s holds a snapshot through entry %d", s.Snapshots.Path, snap.Index)
	}
	if !s.HardState.Found && holds != "" {
		return corruption(path, fmt.Sprintf("is missing, yet %s: the node's current term and vote are "+
			"lost, and starting without them could make it vote twice in one term", holds), hardStateDirAdvice)
	}
	if hs.Term < highest {
		return corruption(path, fmt.Sprintf("says the current term is %d, yet %s of term %d: the file is "+
			"older than the log (restored alone from an old backup?), so the vote it holds may not be "+
			"the node's last", hs.Term, holds, highest), hardStateDirAdvice)
	}
	if !logExisted && hs.Term > 0 {
		return corruption(s.Log.Path, fmt.Sprintf("was missing (an empty one was created), yet %s says this "+
			"node has reached term %d: the log and every entry it acknowledged are lost", path, hs.Term), logDirAdvice)
	}
	return nil
}

// checkModelsAgainstLog warns when models/ holds more files than the log has
// commands. Without a snapshot every model file was written by applying one
// committed command of this log, so more files than commands means the log
// lost entries at its end: cut at a record boundary, which no checksum can
// see. Raft sends them again; the warning tells the operator the disk lost
// data it had confirmed as durable.
func (s *NodeStorage) checkModelsAgainstLog(entries []Entry) ([]string, error) {
	dir, err := os.ReadDir(s.ModelsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	files, commands := 0, 0
	for _, e := range dir {
		if strings.HasSuffix(e.Name(), ModelSuffix) && !IsTempName(e.Name()) {
			files++
		}
	}
	for _, e := range entries {
		if e.Kind == EntryCommand {
			commands++
		}
	}
	if files <= commands {
		return nil, nil
	}
	var last uint64
	if len(entries) > 0 {
		last = entries[len(entries)-1].Index
	}
	message := fmt.Sprintf("%s: lost entries at its end: it holds %d model commands (ends at entry %d) "+
		"but %s holds %d model files those commands wrote, so the file was cut short at a record "+
		"boundary (a disk or filesystem that lost confirmed writes?); the leader will send the lost "+
		"entries again", s.Log.Path, commands, last, s.ModelsDir(), files)
	warn(s.Warn, message)
	return []string{message}, nil
}

// reconcile makes the log continue right after the snapshot; it returns the
// entries left and what changed.
func (s *NodeStorage) reconcile(snap *Snapshot, entries []Entry) ([]Entry, []string, error) {
	var base uint64
	if snap != nil {
		base = snap.Index
	}
	first := s.Log.FirstIndex()
	if first == base+1 {
		return entries, nil, nil
	}
	if first > base+1 {
		where := fmt.Sprintf("there is no snapshot in %s", s.Snapshots.Dir)
		if snap != nil {
			where = fmt.Sprintf("the snapshot in %s ends at %d", s.Snapshots.Path, base)
		}
		return nil, nil, corruption(s.Log.Path, fmt.Sprintf("starts at entry %d, but %s: entries %d to %d "+
			"are missing", first, where, base+1, first-1),
			"Was the snapshot directory removed or replaced? Put it back from a backup or "+Rejoin+".")
	}
	// first <= base: a crash came between saving the snapshot and trimming
	// the log (base > 0 here, so there is a snapshot).
	var message string
	var kept []Entry
	if term, ok := s.Log.TermAt(base); ok && term == snap.Term {
		// Local compaction (or a snapshot matching our log): finish trimming.
		if err := s.Log.Compact(base); err != nil {
			return nil, nil, err
		}
		message = fmt.Sprintf("%s: finished a compaction through entry %d that a crash interrupted",
			s.Log.Path, base)
		kept = entries[base+1-first:]
	} else {
		// An installed snapshot replaces the whole log (Raft §7); the old
		// entries conflict with it or stop short of it.
		if err := s.Log.Reset(base + 1); err != nil {
			return nil, nil, err
		}
		message = fmt.Sprintf("%s: dropped %d entries that the installed snapshot at %d replaces "+
			"(a crash interrupted the install)", s.Log.Path, len(entries), base)
	}
	warn(s.Warn, message)
	return kept, []string{message}, nil
}

// Close closes the log (syncing it). Safe to call twice.
func (s *NodeStorage) Close() error {
	s.open = false
	return s.Log.Close()
}

func (s *NodeStorage) checkOpen() error {
	if !s.open {
		return fmt.Errorf("%s: call Open first: %w", s.Dir, ErrNotOpen)
	}
	return nil
}

// Persist makes rd's hard state, snapshot and entries durable, in that
// order. The hard state goes first, so that a crash at any point leaves a
// term at least as high as every term in the snapshot and the log; Open
// relies on this to tell a lost or rolled-back raft_state.json from a
// crash. The snapshot goes before the entries because it replaces the whole
// log. Each file is fsynced once per call, however many entries.
func (s *NodeStorage) Persist(rd Ready) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if rd.HardState != nil {
		if _, err := s.HardState.Save(*rd.HardState); err != nil {
			return err
		}
	}
	if rd.Snapshot != nil {
		if err := s.Snapshots.Save(*rd.Snapshot); err != nil {
			return err
		}
		if err := s.Log.Reset(rd.Snapshot.Index + 1); err != nil {
			return err
		}
		snap := *rd.Snapshot
		s.snapshot = &snap
	}
	if len(rd.Entries) > 0 {
		if err := s.Log.Append(rd.Entries); err != nil {
			return err
		}
		if _, err := s.Log.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// Compact stores a snapshot the local state machine took, then drops the
// log up to it. Entries after snap.Index stay. A snapshot no newer than the
// stored one is ignored; one beyond the log is refused (ErrInvalidArgument).
func (s *NodeStorage) Compact(snap Snapshot) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.snapshot != nil && snap.Index <= s.snapshot.Index {
		return nil
	}
	if snap.Index > s.Log.LastIndex() {
		return fmt.Errorf("%w: cannot compact through %d: the log ends at %d",
			ErrInvalidArgument, snap.Index, s.Log.LastIndex())
	}
	if err := s.Snapshots.Save(snap); err != nil {
		return err
	}
	if err := s.Log.Compact(snap.Index); err != nil {
		return err
	}
	s.snapshot = &snap
	return nil
}
