package training

// The chunk scheduler as a specification (PROTOCOL.md §9: pipeline with
// deadline and reassignment), ported from tests/test_training_scheduler.py:
// no sockets and no clock.

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"zmqnode/ml"
)

const (
	tA = "10.0.0.1:9000"
	tB = "10.0.0.2:9000"
	tC = "10.0.0.3:9000"
	t0 = 1000.0
)

type sent struct {
	chunk    int
	trainer  string
	withData bool
}

// fakeWire is the Dispatch fake: records every send; refusing trainers do
// not take chunks.
type fakeWire struct {
	refusing map[string]bool
	sent     []sent
}

func newWire(refusing ...string) *fakeWire {
	w := &fakeWire{refusing: map[string]bool{}}
	for _, r := range refusing {
		w.refusing[r] = true
	}
	return w
}

func (w *fakeWire) dispatch(chunk int, trainer string, withData bool) bool {
	if w.refusing[trainer] {
		return false
	}
	w.sent = append(w.sent, sent{chunk, trainer, withData})
	return true
}

func (w *fakeWire) take() []sent {
	s := w.sent
	w.sent = nil
	return s
}

func up(names ...string) Trainers { return Trainers{Available: names} }

func startedJob(trainers []string, nChunks int, available []string, w *fakeWire) *ChunkScheduler {
	if w == nil {
		w = newWire()
	}
	if available == nil {
		available = trainers
	}
	s := NewChunkScheduler(trainers, t0, 600)
	s.SetChunks(nChunks)
	s.StartRound(t0, up(available...), w.dispatch)
	return s
}

func owners(s *ChunkScheduler) map[int]string {
	out := map[int]string{}
	for c, a := range s.Pending {
		out[c] = a.Trainer
	}
	return out
}

func eq(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

var abc = []string{tA, tB, tC}

func TestChunkCountIsOnePerTrainerWithAMinimumOfRowsEach(t *testing.T) {
	m := ml.MinRowsPerChunk
	for _, c := range []struct{ rows, trainers, want int }{
		{3 * m, 3, 3}, {10000, 3, 3}, {2*m + 5, 3, 2}, {m, 3, 1}, {4, 3, 1}, {1, 1, 1},
	} {
		if got := ChunkCount(c.rows, c.trainers); got != c.want {
			t.Errorf("ChunkCount(%d, %d) = %d, want %d", c.rows, c.trainers, got, c.want)
		}
	}
}

func TestFewerChunksThanTrainersKeepTheFirstTrainersOnly(t *testing.T) {
	s := NewChunkScheduler(abc, t0, 600)
	s.SetChunks(2)
	eq(t, s.Trainers, []string{tA, tB})
}

func TestAtRoundStartChunkCGoesToTrainerCModNWithItsRows(t *testing.T) {
	w := newWire()
	s := startedJob(abc, 3, nil, w)
	eq(t, w.take(), []sent{{0, tA, true}, {1, tB, true}, {2, tC, true}})
	eq(t, owners(s), map[int]string{0: tA, 1: tB, 2: tC})
}

func TestLaterRoundsSendOnlyTheWeightsToATrainerThatHasTheRows(t *testing.T) {
	w := newWire()
	s := startedJob(abc, 3, nil, w)
	w.take()
	for c := 0; c < 3; c++ {
		s.Answered(c, t0+1)
	}
	s.NextRound(t0+2, up(abc...), w.dispatch)
	eq(t, s.Round, 1)
	eq(t, w.take(), []sent{{0, tA, false}, {1, tB, false}, {2, tC, false}})
}

func TestATrainerThatRefusesAtRoundStartIsPassedOverForTheNextAvailable(t *testing.T) {
	w := newWire(tB)
	s := startedJob(abc, 3, nil, w)
	eq(t, w.take(), []sent{{0, tA, true}, {1, tA, true}, {2, tC, true}})
	eq(t, s.Pending[1].Trainer, tA)
}

func TestATrainerGoneBetweenRoundsIsDroppedFromTheJobWithAWarning(t *testing.T) {
	w := newWire()
	s := startedJob(abc, 3, nil, w)
	for c := 0; c < 3; c++ {
		s.Answered(c, t0+1)
	}
	w.take()
	silent := Trainers{Available: []string{tA, tC}, Down: map[string]string{tB: "is down (node silent for 3.0s)"}}
	warnings := s.NextRound(t0+2, silent, w.dispatch)
	eq(t, s.Trainers, []string{tA, tC})
	eq(t, w.take(), []sent{{0, tA, false}, {1, tC, true}, {2, tA, true}})
	eq(t, warnings, []string{"trainer " + tB + " is down (node silent for 3.0s): from round 1 its chunks go to the others"})
	eq(t, s.Warnings, warnings)
}

func TestATrainerUnavailableButNotYetDownIsCalledUnreachable(t *testing.T) {
	s := startedJob([]string{tA, tB}, 2, []string{tA}, nil)
	eq(t, s.Warnings, []string{"trainer " + tB + " is unreachable: from round 0 its chunks go to the others"})
}

func TestNobodyAvailableAtRoundStartLeavesEveryChunkPendingUnassigned(t *testing.T) {
	s := startedJob(abc, 3, []string{}, nil)
	eq(t, owners(s), map[int]string{0: "", 1: "", 2: ""})
}

func TestBeforeAnyAnswerAChunkWaitsTheFirstAnswerTimeout(t *testing.T) {
	w := newWire()
	s := startedJob(abc, 3, nil, w)
	w.take()
	eq(t, s.ChunkTimeout(), FirstAnswerTimeout)
	eq(t, len(s.Check(t0+FirstAnswerTimeout-0.1, up(abc...), w.dispatch)), 0)
	eq(t, len(w.take()), 0)
	s.Check(t0+FirstAnswerTimeout, up(abc...), w.dispatch)
	var to []string
	for _, x := range w.take() {
		to = append(to, x.trainer)
	}
	eq(t, to, []string{tB, tA, tA})
}

func TestAfterAnAnswerTheDeadlineIsFourTimesTheSlowest(t *testing.T) {
	w := newWire()
	s := startedJob(abc, 3, nil, w)
	w.take()
	s.Answered(0, t0+3)
	eq(t, s.ChunkTimeout(), 12.0)
	s.Check(t0+11.9, up(abc...), w.dispatch)
	eq(t, len(w.take()), 0)
	warnings := s.Check(t0+12, up(abc...), w.dispatch)
	got := w.take()
	eq(t, []int{got[0].chunk, got[1].chunk}, []int{1, 2})
	eq(t, []string{got[0].trainer, got[1].trainer}, []string{tA, tA})
	eq(t, warnings[0], "trainer "+tB+" did not answer within 12.0s: chunk 1 of round 0 went to another trainer")
}

func TestTheDeadlineIsNeverShorterThanTheMinimum(t *testing.T) {
	s := startedJob(abc, 3, nil, nil)
	s.Answered(0, t0+0.1)
	eq(t, s.ChunkTimeout(), MinChunkTimeout)
	w := newWire()
	s.Check(t0+MinChunkTimeout-0.01, up(abc...), w.dispatch)
	eq(t, len(w.take()), 0)
	s.Check(t0+MinChunkTimeout, up(abc...), w.dispatch)
	eq(t, len(w.take()), 2)
}

func TestAMovedChunkGetsANewDeadlineFromWhenItWasResent(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA, tB}, 2, nil, w)
	s.Answered(0, t0+1)
	s.Check(t0+5, up(tA, tB), w.dispatch)
	eq(t, s.Pending[1].Trainer, tA)
	eq(t, s.Pending[1].SentAt, t0+5)
	w.take()
	s.Check(t0+9.9, up(tA, tB), w.dispatch)
	eq(t, len(w.take()), 0)
}

func TestAChunkOfATrainerThatIsDownMovesAtOnceWithAWarning(t *testing.T) {
	w := newWire()
	s := startedJob(abc, 3, nil, w)
	w.take()
	silent := Trainers{Available: []string{tA, tC}, Down: map[string]string{tB: "is down (node silent for 2.5s)"}}
	warnings := s.Check(t0+0.5, silent, w.dispatch)
	eq(t, w.take(), []sent{{1, tA, true}})
	eq(t, warnings, []string{"trainer " + tB + " is down (node silent for 2.5s): chunk 1 of round 0 went to another trainer"})
	eq(t, s.Trainers, []string{tA, tC})
}

func TestAChunkSentBeforeItsTrainerRestartedMovesAtOnce(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA, tB}, 2, nil, w)
	w.take()
	restarted := Trainers{Available: []string{tA, tB}, RestartedAt: map[string]float64{tA: t0 + 1}}
	warnings := s.Check(t0+2, restarted, w.dispatch)
	eq(t, w.take(), []sent{{0, tB, true}})
	if !strings.Contains(warnings[0], "exited and was restarted") {
		t.Fatal(warnings)
	}
}

func TestARestartedTrainerWarnsOnlyTheJobsItTrainsFor(t *testing.T) {
	mine := startedJob([]string{tA, tB}, 2, nil, nil)
	others := startedJob([]string{tB, tC}, 2, nil, nil)
	eq(t, mine.TrainerRestarted(tA, -9), []string{"trainer " + tA + " exited (status -9) and was restarted; its chunks were sent again"})
	eq(t, len(others.TrainerRestarted(tA, -9)), 0)
	eq(t, len(others.Warnings), 0)
}

func TestAloneAnUnansweredChunkIsResentToTheSameTrainer(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA}, 1, nil, w)
	w.take()
	s.Check(t0+FirstAnswerTimeout, up(tA), w.dispatch)
	eq(t, w.take(), []sent{{0, tA, false}})
}

func TestNobodyAvailableKeepsTheChunkPendingWithItsTrainer(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA, tB}, 2, nil, w)
	w.take()
	nobody := Trainers{Down: map[string]string{tA: "exited", tB: "is down (node silent for 5.0s)"}}
	eq(t, len(s.Check(t0+100, nobody, w.dispatch)), 0)
	eq(t, len(w.take()), 0)
	eq(t, owners(s), map[int]string{0: tA, 1: tB})
}

func TestWhenEverySendFailsTheChunkStaysPendingUnassignedAndIsPlacedNextCheck(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA, tB}, 2, nil, w)
	w.take()
	s.Check(t0+FirstAnswerTimeout, up(tA, tB), newWire(tA, tB).dispatch)
	eq(t, owners(s), map[int]string{0: "", 1: ""})
	if !math.IsInf(s.Pending[0].SentAt, -1) {
		t.Fatal("an unassigned chunk has no send time")
	}
	eq(t, len(s.Check(t0+FirstAnswerTimeout+0.2, up(tA, tB), w.dispatch)), 0)
	eq(t, owners(s), map[int]string{0: tA, 1: tA})
}

func TestARefusedSendForgetsThatTheTrainerHadTheRows(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA}, 1, nil, w)
	w.take()
	s.Check(t0+FirstAnswerTimeout, up(tA), newWire(tA).dispatch)
	s.Check(t0+FirstAnswerTimeout+0.2, up(tA), w.dispatch)
	eq(t, w.take(), []sent{{0, tA, true}})
}

func TestATrainerThatLostItsRowsGetsTheChunkAgainWithThem(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA, tB}, 2, nil, w)
	w.take()
	s.LostData(tB, 1, t0+3, w.dispatch)
	eq(t, w.take(), []sent{{1, tB, true}})
	eq(t, s.Pending[1].SentAt, t0+3)
}

func TestAnAnsweredChunkIsNeverMoved(t *testing.T) {
	w := newWire()
	s := startedJob([]string{tA, tB}, 2, nil, w)
	w.take()
	s.Answered(0, t0+1)
	s.Check(t0+100, Trainers{Available: []string{tB}, Down: map[string]string{tA: "exited"}}, w.dispatch)
	got := w.take()
	eq(t, len(got), 1)
	eq(t, got[0].chunk, 1)
}

func TestTheJobTimesOutOnlyAfterItsTrainingTimeout(t *testing.T) {
	s := NewChunkScheduler([]string{tA}, t0, 600)
	eq(t, s.TimedOut(t0+600), false)
	eq(t, s.TimedOut(t0+600.01), true)
}

func survey(now float64, ownEnabled, ownExited bool, ownStarted float64, lastHeard map[string]float64) Trainers {
	return Survey(now, tA, ownEnabled, ownExited, ownStarted, []string{tB, tC}, lastHeard)
}

func TestSurveyOwnTrainerFirstThenPeersHeardFromRecently(t *testing.T) {
	fresh := map[string]float64{tB: t0 - 0.2, tC: t0 - 0.2}
	eq(t, survey(t0, true, false, 0, fresh).Available, abc)
	eq(t, survey(t0, false, false, 0, fresh).Available, []string{tB, tC})
	exited := survey(t0, true, true, 0, fresh)
	eq(t, exited.Available, []string{tB, tC})
	eq(t, exited.WhyDown(tA, math.Inf(1)), "exited")
}

func TestSurveyQuietPeersAreUnavailableThenDown(t *testing.T) {
	quiet := survey(t0, true, false, 0, map[string]float64{tB: t0 - PeerFreshSeconds - 0.1, tC: t0})
	eq(t, quiet.Available, []string{tA, tC})
	eq(t, quiet.WhyDown(tB, math.Inf(1)), "")
	gone := survey(t0, true, false, 0, map[string]float64{tB: t0 - PeerDownSeconds - 0.5, tC: t0})
	eq(t, gone.WhyDown(tB, math.Inf(1)), "is down (node silent for 2.5s)")
	never := survey(t0, true, false, 0, map[string]float64{tC: t0})
	if !strings.HasPrefix(never.WhyDown(tB, math.Inf(1)), "is down") {
		t.Fatal(never.WhyDown(tB, math.Inf(1)))
	}
	restarted := survey(t0, true, false, t0, map[string]float64{tB: t0, tC: t0})
	eq(t, restarted.WhyDown(tA, t0-1), "exited and was restarted")
	eq(t, restarted.WhyDown(tA, t0), "")
}
