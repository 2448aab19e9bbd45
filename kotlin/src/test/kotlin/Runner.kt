// The Kotlin node's test runner: no JUnit in the distribution's reach, so
// every class in tests.jar whose name ends in "Test" is a test class, and
// each of its public no-argument methods whose name starts with "test" is a
// test. A test fails by throwing (kotlin.test's assertions throw
// AssertionError). `kotlin/build.sh test [FILTER]` runs them.
package zmqnode.test

import java.util.jar.JarFile

fun main(args: Array<String>) {
    val filter = args.firstOrNull() ?: ""
    val jar = JarFile(Runner::class.java.protectionDomain.codeSource.location.toURI().path)
    val classes = jar.entries().toList().map { it.name }
        .filter { it.endsWith("Test.class") && !it.contains('$') }
        .map { it.removeSuffix(".class").replace('/', '.') }
        .filter { it.contains(filter) }
        .sorted()
    var passed = 0
    val failed = mutableListOf<String>()
    for (name in classes) {
        val cls = Class.forName(name)
        val methods = cls.methods.filter { it.name.startsWith("test") && it.parameterCount == 0 }
            .sortedBy { it.name }
        if (methods.isEmpty()) continue
        val instance = cls.getDeclaredConstructor().newInstance()
        for (m in methods) {
            val started = System.nanoTime()
            try {
                m.invoke(instance)
                passed++
                val ms = (System.nanoTime() - started) / 1_000_000
                if (ms > 2000) println("slow  ${cls.simpleName}.${m.name} ${ms} ms")
            } catch (e: java.lang.reflect.InvocationTargetException) {
                val cause = e.targetException
                failed += "${cls.simpleName}.${m.name}"
                println("FAIL  ${cls.simpleName}.${m.name}: $cause")
                cause.stackTrace.take(8).forEach { println("        at $it") }
            }
        }
    }
    println("${passed} passed, ${failed.size} failed in ${classes.size} test classes")
    if (failed.isNotEmpty()) {
        println("failed: ${failed.joinToString(" ")}")
        System.exit(1)
    }
    if (passed == 0) {
        println("no tests ran (filter '$filter')")
        System.exit(1)
    }
}

private object Runner
