package raft

import (
	"errors"
	"fmt"
	"sort"
)

// Config holds the timing and flow-control knobs, in ticks and bytes.
//
// ElectionTicks: a follower that hears no leader for a random time in
// [ElectionTicks, 2*ElectionTicks) starts an election (§5.2); a leader that
// has not heard from a majority for ElectionTicks steps down (check-quorum).
// HeartbeatTicks must be well below it.
type Config struct {
	ElectionTicks  int
	HeartbeatTicks int
	PreVote        bool
	CheckQuorum    bool
	MaxMsgBytes    int
	MaxInflight    int
	// A learner is promoted only when it stores all but at most this many of
	// the leader's entries and answered within the last election timeout: a
	// voter far behind would hold back every commit it is needed for.
	PromoteMaxLag uint64
}

// DefaultConfig returns Python's RaftConfig() defaults.
func DefaultConfig() Config {
	return Config{
		ElectionTicks:  10,
		HeartbeatTicks: 1,
		PreVote:        true,
		CheckQuorum:    true,
		MaxMsgBytes:    1 << 20,
		MaxInflight:    32,
		PromoteMaxLag:  64,
	}
}

// Validate refuses what Python's RaftConfig refuses.
func (c Config) Validate() error {
	if c.HeartbeatTicks < 1 || c.ElectionTicks <= c.HeartbeatTicks {
		return errors.New("raft: need 1 <= heartbeat_ticks < election_ticks")
	}
	if c.MaxInflight < 1 || c.MaxMsgBytes < 1 {
		return errors.New("raft: max_inflight and max_msg_bytes must be positive")
	}
	return nil
}

// Mutation names: deliberate bugs the simulator must catch, exactly the
// names of the Python simulator's tests/sim/mutations.py. Each switch sits at
// the spot of its bug, in a comment naming it.
const (
	// A leader counts replicas of an entry from an earlier term toward
	// commit (§5.4.2).
	MutOldTermCommit = "old_term_commit"
	// Term and vote are never handed over for persisting (Ready.HardState
	// dropped).
	MutForgetHardState = "forget_hard_state"
	// The term is persisted but the vote is not: after a restart a node can
	// vote twice in one term.
	MutForgetVote = "forget_vote"
	// The hard state is written only when the term changes: a vote granted
	// later in a term already persisted is lost on a restart.
	MutVoteOnlyWithTerm = "vote_only_with_term"
	// A follower accepts AppendEntries (and heartbeats) from a deposed
	// leader: the term check is skipped and the reply carries the stale
	// term, so the old leader counts it.
	MutStaleAppend = "stale_append"
	// Votes (and pre-votes) are granted without the log up-to-date check
	// (§5.4.1).
	MutVoteIgnoresLog = "vote_ignores_log"
	// A follower advances its commit index from a heartbeat beyond what an
	// AppendEntries of this term confirmed.
	MutHeartbeatCommit = "heartbeat_commit"
	// A follower advances its commit index from an AppendEntries to
	// min(leaderCommit, its own last index) instead of the last entry the
	// append confirmed (Figure 2 receiver rule 5).
	MutAppendCommitPastBatch = "append_commit_past_batch"
	// The leader answers ReadIndex at once, without a heartbeat round to a
	// majority.
	MutReadWithoutQuorum = "read_without_quorum"
	// A new leader proposes a membership change before an entry of its own
	// term has committed (the 2015 single-server bug).
	MutConfigBeforeOwnTermCommit = "config_before_own_term_commit"
	// The leader accepts a membership change while the previous one has not
	// committed: two single-server steps in flight change two votes at once.
	MutTwoConfigsInFlight = "two_configs_in_flight"
	// A learner's copy counts toward the commit quorum, as if it were a
	// voter.
	MutLearnerCountsInQuorum = "learner_counts_in_quorum"
)

var mutationNames = []string{
	MutOldTermCommit, MutForgetHardState, MutForgetVote, MutVoteOnlyWithTerm,
	MutStaleAppend, MutVoteIgnoresLog, MutHeartbeatCommit, MutAppendCommitPastBatch,
	MutReadWithoutQuorum, MutConfigBeforeOwnTermCommit, MutTwoConfigsInFlight,
	MutLearnerCountsInQuorum,
}

// MutationNames lists the mutations this core implements, sorted.
func MutationNames() []string {
	out := append([]string(nil), mutationNames...)
	sort.Strings(out)
	return out
}

// mutations is the set of switched-on bugs.
type mutations struct {
	oldTermCommit, forgetHardState, forgetVote, voteOnlyWithTerm        bool
	staleAppend, voteIgnoresLog, heartbeatCommit, appendCommitPastBatch bool
	readWithoutQuorum, configBeforeOwnTermCommit, twoConfigsInFlight    bool
	learnerCountsInQuorum                                               bool
}

func parseMutations(names map[string]bool) (mutations, error) {
	var m mutations
	flags := map[string]*bool{
		MutOldTermCommit:             &m.oldTermCommit,
		MutForgetHardState:           &m.forgetHardState,
		MutForgetVote:                &m.forgetVote,
		MutVoteOnlyWithTerm:          &m.voteOnlyWithTerm,
		MutStaleAppend:               &m.staleAppend,
		MutVoteIgnoresLog:            &m.voteIgnoresLog,
		MutHeartbeatCommit:           &m.heartbeatCommit,
		MutAppendCommitPastBatch:     &m.appendCommitPastBatch,
		MutReadWithoutQuorum:         &m.readWithoutQuorum,
		MutConfigBeforeOwnTermCommit: &m.configBeforeOwnTermCommit,
		MutTwoConfigsInFlight:        &m.twoConfigsInFlight,
		MutLearnerCountsInQuorum:     &m.learnerCountsInQuorum,
	}
	for name, on := range names {
		flag, ok := flags[name]
		if !ok {
			return mutations{}, fmt.Errorf("raft: unknown mutation %q (known: %v)", name, MutationNames())
		}
		*flag = on
	}
	return m, nil
}
