package zmqnode.test

import kotlin.test.assertEquals

class SmokeTest {
    fun testTheRunnerRunsTests() {
        assertEquals(4, 2 + 2)
    }
}
