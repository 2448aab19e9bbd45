package node

import (
	"errors"

	"zmqnode/raft"
	"zmqnode/storage"
)

// Compactor compacts the log every SnapshotEntries applied entries
// (compaction.py): it fsyncs the model files the entries wrote (off the
// loop), then stores the registry's snapshot and drops the log through it.
type Compactor struct {
	n               *Node
	SnapshotEntries int
	running         *compaction
	syncs           []*fileSync
}

type compaction struct {
	index uint64
	data  []byte
	sync  *fileSync
}

type fileSync struct {
	ids  []string
	done chan error
}

func (c *Compactor) startSync(ids []string) *fileSync {
	s := &fileSync{ids: ids, done: make(chan error, 1)}
	paths := make([]string, 0, len(ids))
	for _, id := range ids {
		if p, err := c.n.Registry.Store.Path(id); err == nil {
			paths = append(paths, p)
		}
	}
	dir, stats := c.n.storage.ModelsDir(), c.n.storage.Stats
	go func() {
		s.done <- storage.SyncFiles(paths, dir, stats)
		c.n.Wake()
	}()
	return s
}

func finished(s *fileSync) (error, bool) {
	select {
	case err := <-s.done:
		s.done <- err // keep it readable
		return err, true
	default:
		return nil, false
	}
}

// SyncUnsynced fsyncs, off the loop, the files no log entry covers any
// more because an installed snapshot replaced the log they came from.
func (c *Compactor) SyncUnsynced() {
	if ids := c.n.Registry.TakeUnsynced(); len(ids) > 0 {
		c.syncs = append(c.syncs, c.startSync(ids))
	}
}

func (c *Compactor) due() bool {
	core := c.n.Core
	return c.SnapshotEntries > 0 && core.AppliedIndex()-core.Snapshot().Index >= uint64(c.SnapshotEntries)
}

// Tick starts a compaction when due and finishes one whose fsyncs are done.
// Damage found on disk stops the node (the error); any other failure costs
// one attempt.
func (c *Compactor) Tick() error {
	kept := c.syncs[:0]
	for _, s := range c.syncs {
		if err, ok := finished(s); ok {
			if err != nil {
				c.n.Registry.MarkUnsynced(s.ids)
			}
		} else {
			kept = append(kept, s)
		}
	}
	c.syncs = kept
	if c.running != nil {
		return c.finish()
	}
	if c.due() {
		core := c.n.Core
		index := core.AppliedIndex()
		if index <= core.Snapshot().Index {
			return nil
		}
		data, err := c.n.Registry.SnapshotData(index)
		if err != nil {
			c.n.Log.Log("ERROR", "zmqnode.compaction", "log compaction failed; keeping the log as it is: %v", err)
			return nil
		}
		c.running = &compaction{index: index, data: data, sync: c.startSync(c.n.Registry.TakeUnsynced())}
	}
	return nil
}

func (c *Compactor) finish() error {
	run := c.running
	err, ok := finished(run.sync)
	if !ok {
		return nil
	}
	c.running = nil
	if err != nil {
		c.n.Registry.MarkUnsynced(run.sync.ids)
		c.n.Log.Log("ERROR", "zmqnode.compaction", "node %s: could not fsync model files before compacting the log (%v); "+
			"keeping the log as it is and trying again later", c.n.ID, err)
		return nil
	}
	core := c.n.Core
	if run.index <= core.Snapshot().Index {
		return nil // a snapshot from the leader overtook ours
	}
	if err := core.Compact(run.index, run.data); err != nil {
		return &FatalError{err}
	}
	if err := c.n.storage.Compact(storage.Snapshot(core.Snapshot())); err != nil {
		var ce *storage.CorruptionError
		var be *storage.BrokenError
		if errors.As(err, &ce) || errors.As(err, &be) {
			return &FatalError{err}
		}
		c.n.Log.Log("ERROR", "zmqnode.compaction", "log compaction failed; keeping the log as it is: %v", err)
		return nil
	}
	c.n.Stats.mu.Lock()
	c.n.Stats.Compactions++
	c.n.Stats.mu.Unlock()
	c.n.Log.Log("INFO", "zmqnode.compaction", "node %s: compacted the log through entry %d (%d models in the snapshot)",
		c.n.ID, run.index, len(c.n.Registry.Models))
	return nil
}

// Wait waits for the fsyncs in flight (at shutdown).
func (c *Compactor) Wait() {
	for _, s := range c.syncs {
		<-s.done
	}
	if c.running != nil {
		<-c.running.sync.done
	}
}

var _ = raft.Snapshot{}
