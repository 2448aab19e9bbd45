// The chunk scheduler as a specification (go/training/scheduler_test.go,
// tests/test_training_scheduler.py): no sockets and no clock.
package zmqnode.training

import kotlin.test.assertEquals
import kotlin.test.assertTrue

private const val tA = "10.0.0.1:9000"
private const val tB = "10.0.0.2:9000"
private const val tC = "10.0.0.3:9000"
private const val t0 = 1000.0
private val abc = listOf(tA, tB, tC)

private data class Sent(val chunk: Int, val trainer: String, val withData: Boolean)

private class FakeWire(vararg refusing: String) : Dispatch {
    val refusing = refusing.toSet()
    val sent = ArrayList<Sent>()
    override fun send(chunk: Int, trainer: String, withData: Boolean): Boolean {
        if (trainer in refusing) return false
        sent.add(Sent(chunk, trainer, withData))
        return true
    }

    fun take(): List<Sent> {
        val s = ArrayList(sent)
        sent.clear()
        return s
    }
}

private fun up(vararg names: String) = Trainers(names.toList())

private fun startedJob(trainers: List<String>, nChunks: Int, available: List<String>? = null, w: FakeWire = FakeWire()): ChunkScheduler {
    val s = ChunkScheduler(trainers, t0, 600.0)
    s.setChunks(nChunks)
    s.startRound(t0, Trainers(available ?: trainers), w)
    return s
}

private fun owners(s: ChunkScheduler): Map<Int, String> = s.pending.mapValues { it.value.trainer }

class TrainingSchedulerTest {
    fun testChunkCountIsOnePerTrainerWithAMinimumOfRowsEach() {
        val m = SchedulerConstants.MIN_ROWS_PER_CHUNK
        for ((rows, trainers, want) in listOf(Triple(3 * m, 3, 3), Triple(10000, 3, 3), Triple(2 * m + 5, 3, 2),
            Triple(m, 3, 1), Triple(4, 3, 1), Triple(1, 1, 1))) {
            assertEquals(want, chunkCount(rows, trainers), "chunkCount($rows, $trainers)")
        }
    }

    fun testFewerChunksThanTrainersKeepTheFirstTrainersOnly() {
        val s = ChunkScheduler(abc, t0, 600.0)
        s.setChunks(2)
        assertEquals(listOf(tA, tB), s.trainers)
    }

    fun testAtRoundStartChunkCGoesToTrainerCModNWithItsRows() {
        val w = FakeWire()
        val s = startedJob(abc, 3, w = w)
        assertEquals(listOf(Sent(0, tA, true), Sent(1, tB, true), Sent(2, tC, true)), w.take())
        assertEquals(mapOf(0 to tA, 1 to tB, 2 to tC), owners(s))
    }

    fun testLaterRoundsSendOnlyTheWeightsToATrainerThatHasTheRows() {
        val w = FakeWire()
        val s = startedJob(abc, 3, w = w)
        w.take()
        for (c in 0 until 3) s.answered(c, t0 + 1)
        s.nextRound(t0 + 2, up(*abc.toTypedArray()), w)
        assertEquals(1, s.round)
        assertEquals(listOf(Sent(0, tA, false), Sent(1, tB, false), Sent(2, tC, false)), w.take())
    }

    fun testATrainerThatRefusesAtRoundStartIsPassedOverForTheNextAvailable() {
        val w = FakeWire(tB)
        val s = startedJob(abc, 3, w = w)
        assertEquals(listOf(Sent(0, tA, true), Sent(1, tA, true), Sent(2, tC, true)), w.take())
        assertEquals(tA, s.pending[1]!!.trainer)
    }

    fun testATrainerGoneBetweenRoundsIsDroppedFromTheJobWithAWarning() {
        val w = FakeWire()
        val s = startedJob(abc, 3, w = w)
        for (c in 0 until 3) s.answered(c, t0 + 1)
        w.take()
        val silent = Trainers(listOf(tA, tC), mapOf(tB to "is down (node silent for 3.0s)"))
        val warnings = s.nextRound(t0 + 2, silent, w)
        assertEquals(listOf(tA, tC), s.trainers)
        assertEquals(listOf(Sent(0, tA, false), Sent(1, tC, true), Sent(2, tA, true)), w.take())
        assertEquals(listOf("trainer $tB is down (node silent for 3.0s): from round 1 its chunks go to the others"), warnings)
        assertEquals(warnings, s.warnings)
    }

    fun testATrainerUnavailableButNotYetDownIsCalledUnreachable() {
        val s = startedJob(listOf(tA, tB), 2, listOf(tA))
        assertEquals(listOf("trainer $tB is unreachable: from round 0 its chunks go to the others"), s.warnings)
    }

    fun testNobodyAvailableAtRoundStartLeavesEveryChunkPendingUnassigned() {
        val s = startedJob(abc, 3, listOf())
        assertEquals(mapOf(0 to "", 1 to "", 2 to ""), owners(s))
    }

    fun testBeforeAnyAnswerAChunkWaitsTheFirstAnswerTimeout() {
        val w = FakeWire()
        val s = startedJob(abc, 3, w = w)
        w.take()
        val first = SchedulerConstants.FIRST_ANSWER_TIMEOUT
        assertEquals(first, s.chunkTimeout())
        assertEquals(0, s.check(t0 + first - 0.1, up(tA, tB, tC), w).size)
        assertEquals(0, w.take().size)
        s.check(t0 + first, up(tA, tB, tC), w)
        assertEquals(listOf(tB, tA, tA), w.take().map { it.trainer })
    }

    fun testAfterAnAnswerTheDeadlineIsFourTimesTheSlowest() {
        val w = FakeWire()
        val s = startedJob(abc, 3, w = w)
        w.take()
        s.answered(0, t0 + 3)
        assertEquals(12.0, s.chunkTimeout())
        s.check(t0 + 11.9, up(tA, tB, tC), w)
        assertEquals(0, w.take().size)
        val warnings = s.check(t0 + 12, up(tA, tB, tC), w)
        val got = w.take()
        assertEquals(listOf(1, 2), got.map { it.chunk })
        assertEquals(listOf(tA, tA), got.map { it.trainer })
        assertEquals("trainer $tB did not answer within 12.0s: chunk 1 of round 0 went to another trainer", warnings[0])
    }

    fun testTheDeadlineIsNeverShorterThanTheMinimum() {
        val s = startedJob(abc, 3)
        s.answered(0, t0 + 0.1)
        assertEquals(SchedulerConstants.MIN_CHUNK_TIMEOUT, s.chunkTimeout())
        val w = FakeWire()
        s.check(t0 + SchedulerConstants.MIN_CHUNK_TIMEOUT - 0.01, up(tA, tB, tC), w)
        assertEquals(0, w.take().size)
        s.check(t0 + SchedulerConstants.MIN_CHUNK_TIMEOUT, up(tA, tB, tC), w)
        assertEquals(2, w.take().size)
    }

    fun testAMovedChunkGetsANewDeadlineFromWhenItWasResent() {
        val w = FakeWire()
        val s = startedJob(listOf(tA, tB), 2, w = w)
        s.answered(0, t0 + 1)
        s.check(t0 + 5, up(tA, tB), w)
        assertEquals(tA, s.pending[1]!!.trainer)
        assertEquals(t0 + 5, s.pending[1]!!.sentAt)
        w.take()
        s.check(t0 + 9.9, up(tA, tB), w)
        assertEquals(0, w.take().size)
    }

    fun testAChunkOfATrainerThatIsDownMovesAtOnceWithAWarning() {
        val w = FakeWire()
        val s = startedJob(abc, 3, w = w)
        w.take()
        val silent = Trainers(listOf(tA, tC), mapOf(tB to "is down (node silent for 2.5s)"))
        val warnings = s.check(t0 + 0.5, silent, w)
        assertEquals(listOf(Sent(1, tA, true)), w.take())
        assertEquals(listOf("trainer $tB is down (node silent for 2.5s): chunk 1 of round 0 went to another trainer"), warnings)
        assertEquals(listOf(tA, tC), s.trainers)
    }

    fun testAChunkSentBeforeItsTrainerRestartedMovesAtOnce() {
        val w = FakeWire()
        val s = startedJob(listOf(tA, tB), 2, w = w)
        w.take()
        val restarted = Trainers(listOf(tA, tB), restartedAt = mapOf(tA to t0 + 1))
        val warnings = s.check(t0 + 2, restarted, w)
        assertEquals(listOf(Sent(0, tB, true)), w.take())
        assertTrue(warnings[0].contains("exited and was restarted"), warnings.toString())
    }

    fun testARestartedTrainerWarnsOnlyTheJobsItTrainsFor() {
        val mine = startedJob(listOf(tA, tB), 2)
        val others = startedJob(listOf(tB, tC), 2)
        assertEquals(listOf("trainer $tA exited (status -9) and was restarted; its chunks were sent again"),
            mine.trainerRestarted(tA, -9))
        assertEquals(0, others.trainerRestarted(tA, -9).size)
        assertEquals(0, others.warnings.size)
    }

    fun testAloneAnUnansweredChunkIsResentToTheSameTrainer() {
        val w = FakeWire()
        val s = startedJob(listOf(tA), 1, w = w)
        w.take()
        s.check(t0 + SchedulerConstants.FIRST_ANSWER_TIMEOUT, up(tA), w)
        assertEquals(listOf(Sent(0, tA, false)), w.take())
    }

    fun testNobodyAvailableKeepsTheChunkPendingWithItsTrainer() {
        val w = FakeWire()
        val s = startedJob(listOf(tA, tB), 2, w = w)
        w.take()
        val nobody = Trainers(down = mapOf(tA to "exited", tB to "is down (node silent for 5.0s)"))
        assertEquals(0, s.check(t0 + 100, nobody, w).size)
        assertEquals(0, w.take().size)
        assertEquals(mapOf(0 to tA, 1 to tB), owners(s))
    }

    fun testWhenEverySendFailsTheChunkStaysPendingUnassignedAndIsPlacedNextCheck() {
        val w = FakeWire()
        val s = startedJob(listOf(tA, tB), 2, w = w)
        w.take()
        val first = SchedulerConstants.FIRST_ANSWER_TIMEOUT
        s.check(t0 + first, up(tA, tB), FakeWire(tA, tB))
        assertEquals(mapOf(0 to "", 1 to ""), owners(s))
        assertEquals(Double.NEGATIVE_INFINITY, s.pending[0]!!.sentAt)
        assertEquals(0, s.check(t0 + first + 0.2, up(tA, tB), w).size)
        assertEquals(mapOf(0 to tA, 1 to tA), owners(s))
    }

    fun testARefusedSendForgetsThatTheTrainerHadTheRows() {
        val w = FakeWire()
        val s = startedJob(listOf(tA), 1, w = w)
        w.take()
        val first = SchedulerConstants.FIRST_ANSWER_TIMEOUT
        s.check(t0 + first, up(tA), FakeWire(tA))
        s.check(t0 + first + 0.2, up(tA), w)
        assertEquals(listOf(Sent(0, tA, true)), w.take())
    }

    fun testATrainerThatLostItsRowsGetsTheChunkAgainWithThem() {
        val w = FakeWire()
        val s = startedJob(listOf(tA, tB), 2, w = w)
        w.take()
        s.lostData(tB, 1, t0 + 3, w)
        assertEquals(listOf(Sent(1, tB, true)), w.take())
        assertEquals(t0 + 3, s.pending[1]!!.sentAt)
    }

    fun testAnAnsweredChunkIsNeverMoved() {
        val w = FakeWire()
        val s = startedJob(listOf(tA, tB), 2, w = w)
        w.take()
        s.answered(0, t0 + 1)
        s.check(t0 + 100, Trainers(listOf(tB), mapOf(tA to "exited")), w)
        val got = w.take()
        assertEquals(1, got.size)
        assertEquals(1, got[0].chunk)
    }

    fun testTheJobTimesOutOnlyAfterItsTrainingTimeout() {
        val s = ChunkScheduler(listOf(tA), t0, 600.0)
        assertEquals(false, s.timedOut(t0 + 600))
        assertEquals(true, s.timedOut(t0 + 600.01))
    }

    private fun survey(now: Double, ownEnabled: Boolean, ownExited: Boolean, ownStarted: Double, lastHeard: Map<String, Double>) =
        Trainers.survey(now, tA, ownEnabled, ownExited, ownStarted, listOf(tB, tC), lastHeard)

    fun testSurveyOwnTrainerFirstThenPeersHeardFromRecently() {
        val fresh = mapOf(tB to t0 - 0.2, tC to t0 - 0.2)
        assertEquals(abc, survey(t0, true, false, 0.0, fresh).available)
        assertEquals(listOf(tB, tC), survey(t0, false, false, 0.0, fresh).available)
        val exited = survey(t0, true, true, 0.0, fresh)
        assertEquals(listOf(tB, tC), exited.available)
        assertEquals("exited", exited.whyDown(tA, Double.POSITIVE_INFINITY))
    }

    fun testSurveyQuietPeersAreUnavailableThenDown() {
        val quiet = survey(t0, true, false, 0.0, mapOf(tB to t0 - SchedulerConstants.PEER_FRESH_SECONDS - 0.1, tC to t0))
        assertEquals(listOf(tA, tC), quiet.available)
        assertEquals("", quiet.whyDown(tB, Double.POSITIVE_INFINITY))
        val gone = survey(t0, true, false, 0.0, mapOf(tB to t0 - SchedulerConstants.PEER_DOWN_SECONDS - 0.5, tC to t0))
        assertEquals("is down (node silent for 2.5s)", gone.whyDown(tB, Double.POSITIVE_INFINITY))
        val never = survey(t0, true, false, 0.0, mapOf(tC to t0))
        assertTrue(never.whyDown(tB, Double.POSITIVE_INFINITY).startsWith("is down"))
        val restarted = survey(t0, true, false, t0, mapOf(tB to t0, tC to t0))
        assertEquals("exited and was restarted", restarted.whyDown(tA, t0 - 1))
        assertEquals("", restarted.whyDown(tA, t0))
    }

    fun testSecondsAreFormattedAsPythonFormatsThem() {
        // Python: f"{x:.1f}" rounds the exact binary value half to even;
        // Java's String.format rounds HALF_UP and follows the locale.
        assertEquals("0.2", pyFixed(0.25, 1))
        assertEquals("0.1", pyFixed(0.15, 1))
        assertEquals("2.5", pyFixed(2.5, 1))
        assertEquals("12.0", pyFixed(12.0, 1))
        assertEquals("-0.0", pyFixed(-0.01, 1))
        assertEquals("600", pyFixed(600.0, 0))
        assertEquals("0", pyFixed(0.5, 0))
    }
}
