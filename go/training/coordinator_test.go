package training

// The coordinator with fake links, ported from
// tests/test_training_coordinator.py: real ZeroMQ sockets on loopback, fake
// trainers answering with the real Handle, the node's side recorded.

import (
	"math"
	"strings"
	"testing"

	"zmqnode/ml"
	"zmqnode/replies"
	"zmqnode/wire"
)

func TestATrainBeyondMaxTrainingsIsBusy(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{MaxTrainings: 1})
	first := n.submit("first", 96, testOptions)
	second := n.submit("second", 96, testOptions)
	if !first.Waiting {
		t.Fatal("the first TRAIN was not parked")
	}
	_, code, msg := status(second)
	if code != "BUSY" || !strings.Contains(msg, "--max-trainings") {
		t.Fatalf("got %s %q", code, msg)
	}
	eq(t, n.counted, []string{"busy_trainings"})
	eq(t, n.coord.Running(), 1)
}

func TestARetryOfARunningTrainingJoinsIt(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{MaxTrainings: 1})
	n.submit("job", 96, testOptions)
	retry := n.submit("job", 96, testOptions)
	if !retry.Waiting || retry.Last() != nil {
		t.Fatal("a retry is parked, not answered")
	}
	eq(t, n.coord.Running(), 1)
	eq(t, n.coord.JoinedClients(), 2)
}

func TestARetryPastMaxPendingIsRefusedAndDoesNotJoin(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{})
	n.submit("job", 96, testOptions)
	n.busy = true
	retry := n.submit("job", 96, testOptions)
	_, code, _ := status(retry)
	eq(t, code, "BUSY")
	eq(t, n.coord.JoinedClients(), 1)
}

func TestNoTrainerIsUnavailable(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{})
	n.members = nil
	_, code, msg := status(n.submit("job", 96, testOptions))
	eq(t, code, "UNAVAILABLE")
	eq(t, msg, "no trainer is running on node "+n.id+" or its peers; start nodes without --no-trainer")
	eq(t, n.coord.Running(), 0)
}

func TestBadOptionsAreBadInputWithPythonsMessage(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{})
	_, code, msg := status(n.submit("job", 96, wire.NewObject(wire.Field{Key: "epochs", Value: 0})))
	eq(t, code, "BAD_INPUT")
	eq(t, msg, "epochs must be an integer in 1..100000, got 0")
	_, code, msg = status(n.submit("job2", 96, []any{int64(1)}))
	eq(t, code, "BAD_REQUEST")
	eq(t, msg, "'options' must be an object")
}

func TestBadDataIsAnsweredBadInputOncePrepared(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{})
	h, blobs := trainRequest("job", 96, testOptions)
	nan := make([]float32, 96*2)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	desc, blob := wire.ArrayToFrame(wire.FromFloat32([]int{96, 2}, nan), 0)
	h.Set("inputs", desc)
	blobs[0] = blob
	rec := &replies.Recorder{}
	h, blobs = onTheWire(t, h, blobs)
	n.coord.Submit(h, blobs, rec)
	n.until(func() bool { return ended(rec) }, "the reply", true)
	_, code, msg := status(rec)
	eq(t, code, "BAD_INPUT")
	if !strings.HasPrefix(msg, "inputs contain NaN") {
		t.Fatal(msg)
	}
	eq(t, n.coord.Running(), 0)
	eq(t, n.finished, []string{"BAD_INPUT"})
	eq(t, n.events[len(n.events)-1], "training_failed")
}

func TestEachTrainerGetsItsOwnChunkWithTheRows(t *testing.T) {
	n := makeCluster(t, 2, false, CoordinatorConfig{})
	n.submit("job", 96, testOptions)
	a, b := n.trainers[0], n.trainers[1]
	n.until(func() bool { return len(a.jobs) > 0 && len(b.jobs) > 0 }, "a job at each trainer", true)
	eq(t, []int{a.jobs[0].Chunk, a.jobs[0].Round, b.jobs[0].Chunk, b.jobs[0].Round}, []int{0, 0, 1, 0})
	eq(t, []bool{a.with[0], b.with[0]}, []bool{true, true})
	eq(t, a.jobs[0].ReplyTo, n.coord.ReplyTo())
	if !strings.HasPrefix(a.jobs[0].JobID, "job#") || len(a.jobs[0].JobID) != len("job#")+12 {
		t.Fatal(a.jobs[0].JobID)
	}
	eq(t, n.events[0], "training_started")
	// The options travel complete, task resolved, in Python's order.
	text, _ := wire.MarshalJSON(a.jobs[0].Options)
	eq(t, string(text), `{"hidden_layers":[4],"activation":"relu","epochs":2,"learning_rate":0.02,`+
		`"batch_size":200,"l2":0.0005,"seed":1,"task":"binary","validation_fraction":0.1,"patience":0,"epochs_per_round":1}`)
}

func TestAResultThatDoesNotBelongToTheRunningRoundIsIgnored(t *testing.T) {
	for name, spoil := range map[string]func(r *Result){
		"attempt": func(r *Result) { r.JobID = "job#0123456789ab" },
		"round":   func(r *Result) { r.Round = 1 },
		"chunk":   func(r *Result) { r.Chunk = 5 },
	} {
		t.Run(name, func(t *testing.T) {
			n := makeCluster(t, 1, false, CoordinatorConfig{})
			rec := n.submit("job", 96, testOptions)
			tr := n.trainers[0]
			n.until(func() bool { return len(tr.jobs) > 0 }, "the job", true)
			j := tr.jobs[0]
			tr.jobs = nil
			real := Handle(j, tr.cache, tr.id)
			stale := *real
			spoil(&stale)
			tr.answer(j, &stale)
			running := n.coord.jobs["job"]
			tr.answer(j, real) // the real answer still counts
			n.until(func() bool { return len(rec.Answers) > 0 }, "round 0's progress", false)
			s, _ := rec.Answers[0].Str("status")
			eq(t, s, "PROGRESS")
			eq(t, running.sched.Round, 1)
			eq(t, len(n.commits), 0)
		})
	}
}

func TestATrainerThatLostTheRowsGetsThemAgain(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{})
	n.submit("job", 96, testOptions)
	tr := n.trainers[0]
	n.until(func() bool { return len(tr.jobs) > 0 }, "the job", true)
	j := tr.jobs[0]
	tr.jobs, tr.with = nil, nil
	tr.answer(j, &Result{JobID: j.JobID, Round: j.Round, Chunk: j.Chunk, Trainer: tr.id, MissingData: true})
	n.until(func() bool { return len(tr.jobs) > 0 }, "the job again", false)
	again := tr.jobs[0]
	eq(t, []int{again.Chunk, again.Round}, []int{j.Chunk, j.Round})
	if again.X == nil || string(again.X.Data) != string(j.X.Data) {
		t.Fatal("the rows were not sent again")
	}
}

func TestATrainerErrorFailsTheJobTrainingFailed(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{})
	rec := n.submit("job", 96, testOptions)
	tr := n.trainers[0]
	n.until(func() bool { return len(tr.jobs) > 0 }, "the job", true)
	j := tr.jobs[0]
	tr.answer(j, &Result{JobID: j.JobID, Trainer: tr.id, Error: "MemoryError()"})
	n.until(func() bool { return ended(rec) }, "the reply", false)
	_, code, msg := status(rec)
	eq(t, code, "TRAINING_FAILED")
	eq(t, msg, "trainer "+tr.id+": MemoryError()")
	eq(t, n.coord.Running(), 0)
}

func TestAChunkOfADownTrainerGoesToAnotherTrainerAtOnce(t *testing.T) {
	n := makeCluster(t, 2, false, CoordinatorConfig{})
	n.submit("job", 96, testOptions)
	a, b := n.trainers[0], n.trainers[1]
	n.until(func() bool { return len(a.jobs) > 0 && len(b.jobs) > 0 }, "a job at each trainer", true)
	a.jobs, a.with = nil, nil
	n.members = []string{a.id}
	n.down[b.id] = "is down (node silent for 3.0s)"
	n.until(func() bool { return len(a.jobs) > 0 }, "the moved chunk", true)
	eq(t, a.jobs[0].Chunk, 1)
	eq(t, a.with[0], true)
	job := n.coord.jobs["job"]
	eq(t, job.sched.Trainers, []string{a.id})
	if !strings.Contains(job.sched.Warnings[0], "trainer "+b.id+" is down") {
		t.Fatal(job.sched.Warnings)
	}
}

func TestAnUnansweredChunkMovesAfterTheFirstAnswerTimeout(t *testing.T) {
	n := makeCluster(t, 2, false, CoordinatorConfig{})
	n.submit("job", 96, testOptions)
	a, b := n.trainers[0], n.trainers[1]
	n.until(func() bool { return len(a.jobs) > 0 && len(b.jobs) > 0 }, "a job at each trainer", true)
	a.jobs, b.jobs = nil, nil
	n.skew = FirstAnswerTimeout - 1
	n.coord.Tick()
	n.turn(false)
	eq(t, len(a.jobs)+len(b.jobs), 0)
	n.skew = FirstAnswerTimeout + 1
	n.coord.Tick()
	n.until(func() bool { return len(a.jobs) > 0 && len(b.jobs) > 0 }, "each chunk at the other trainer", false)
	eq(t, []int{a.jobs[0].Chunk, b.jobs[0].Chunk}, []int{1, 0})
}

func TestAJobPastItsTrainingTimeoutFailsWithTimeout(t *testing.T) {
	n := makeCluster(t, 1, false, CoordinatorConfig{TrainingTimeout: 30e9})
	rec := n.submit("job", 96, testOptions)
	n.until(func() bool { return len(n.trainers[0].jobs) > 0 }, "the job", true)
	n.skew = 29
	n.coord.Tick()
	eq(t, ended(rec), false)
	n.skew = 31
	n.coord.Tick()
	_, code, msg := status(rec)
	eq(t, code, "TIMEOUT")
	eq(t, msg, "training did not finish within 30s")
	eq(t, n.coord.Running(), 0)
}

func TestAFinishedJobCallsCommitModelOnceAndEveryJoinedClientGetsTheReply(t *testing.T) {
	n := makeCluster(t, 2, true, CoordinatorConfig{})
	first := n.submit("job", 96, testOptions)
	n.until(func() bool { return len(n.commits) > 0 }, "the commit", true)
	retry := n.submit("job", 96, testOptions) // joins while committing
	model, err := ml.ReadModel(n.models[0])
	if err != nil {
		t.Fatal(err)
	}
	if rr, _ := model.Training["rounds_run"]; rr == nil {
		t.Fatalf("training: %v", model.Training)
	}
	eq(t, n.coord.Views()[0]["state"], "committing")
	progress := 0
	for _, a := range first.Answers {
		if s, _ := a.Str("status"); s == "PROGRESS" {
			progress++
		}
	}
	eq(t, progress, 1) // after round 0; round 1 ends with the commit
	n.skew = 3600
	for i := 0; i < 5; i++ {
		n.turn(true)
	}
	eq(t, len(n.commits), 1)
	eq(t, ended(first), false)
	reply := n.replies[0]
	reply.OK(n.commits[0], nil, wire.Field{Key: "model_id", Value: "m-1"})
	reply.OK(n.commits[0], nil, wire.Field{Key: "model_id", Value: "m-2"}) // ignored
	for _, rec := range []*replies.Recorder{first, retry} {
		last := rec.Last()
		id, _ := last.Str("model_id")
		rounds, _ := last.Int("rounds")
		v, _ := last.Get("trainers")
		trainers, _ := v.([]string)
		eq(t, []any{id, rounds, len(trainers)}, []any{"m-1", int64(2), 2})
	}
	eq(t, n.coord.Running(), 0)
	eq(t, n.finished, []string{"OK"})
	eq(t, n.events[len(n.events)-1], "training_finished")
}

func TestClassNamesAndColumnNamesReachTheModelFile(t *testing.T) {
	n := makeCluster(t, 2, true, CoordinatorConfig{})
	h, blobs := trainRequest("named", 96, testOptions)
	h.Set("classes", []any{"yes", "no"})
	h.Set("features", []any{"a", "b"})
	h.Set("targets", []any{"answer"})
	h, blobs = onTheWire(t, h, blobs)
	n.coord.Submit(h, blobs, &replies.Recorder{})
	n.until(func() bool { return len(n.commits) > 0 }, "the commit", true)
	model, err := ml.ReadModel(n.models[0])
	if err != nil {
		t.Fatal(err)
	}
	eq(t, model.Classes, []any{"no", "yes"})
	eq(t, [][]string{model.Features, model.Targets}, [][]string{{"a", "b"}, {"answer"}})
}

func TestLeadershipLostFailsTheJobsNotCommittingWithNotLeader(t *testing.T) {
	n := makeCluster(t, 1, true, CoordinatorConfig{MaxTrainings: 2})
	committing := n.submit("committing", 96, testOptions)
	n.until(func() bool { return len(n.commits) > 0 }, "the first job's commit", true)
	n.trainers[0].auto = false
	n.trainers[0].jobs = nil
	training := n.submit("training", 96, testOptions)
	n.until(func() bool { return len(n.trainers[0].jobs) > 0 }, "the second job's chunk", true)
	n.coord.LostLeadership()
	_, code, msg := status(training)
	eq(t, code, "NOT_LEADER")
	if !strings.Contains(msg, "retry with the same request id") {
		t.Fatal(msg)
	}
	eq(t, ended(committing), false)
	eq(t, n.coord.Running(), 1)
}

func TestAChunkSentBeforeItsTrainerRestartedMovesWithAWarning(t *testing.T) {
	n := makeCluster(t, 2, false, CoordinatorConfig{})
	n.submit("job", 96, testOptions)
	a, b := n.trainers[0], n.trainers[1]
	n.until(func() bool { return len(a.jobs) > 0 && len(b.jobs) > 0 }, "a job at each trainer", true)
	a.jobs, a.with = nil, nil
	n.skew = 1 // the restart comes after the send
	n.coord.TrainerRestarted(b.id, -9)
	n.until(func() bool { return len(a.jobs) > 0 }, "the moved chunk", true)
	eq(t, []any{a.jobs[0].Chunk, a.with[0]}, []any{1, true})
	w := n.coord.jobs["job"].sched.Warnings
	eq(t, w[0], "trainer "+b.id+" exited (status -9) and was restarted; its chunks were sent again")
}
