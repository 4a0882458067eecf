// Compile time grows linearly with the size of the input.
//
// Each shape of KilnShapes is compiled at three sizes, each twice the one
// before, and the time of the largest is compared with the time of the
// smallest: four times the input may take at most eight times as long
// (linear is four, n log n a little more, quadratic sixteen). Each size is
// timed three times in processor time of the test's thread and the best run
// counts, so the other tests running at the same time do not fail this one;
// the sizes are small enough for the debug build the suite runs.

import KilnCodegen
import KilnIL
import KilnShapes
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The processor time this thread has used, in seconds: unlike wall time, it does not count
/// the time other tests of the suite, running at once, take the processor away.
func threadSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Processor seconds to parse, verify and compile `text` (the best of `runs`).
func compileSeconds(_ text: String, runs: Int = 3) throws -> Double {
    var best = Double.infinity
    for _ in 0..<runs {
        let start = threadSeconds()
        let (module, diagnostics) = parseAndVerify(SourceFile(name: "shape.ssa", text: text))
        try #require(!diagnostics.contains { $0.severity == .error }, "\(diagnostics.prefix(3))")
        _ = try compileModule(module)
        best = min(best, threadSeconds() - start)
    }
    return best
}

@Suite(.serialized) struct GrowthTests {
    /// The smallest size of each shape: large enough that fixed costs do not dominate.
    static let baseSizes: [ShapeKind: Int] = [
        .chain: 200, .phi: 1_000, .foldedBranches: 500, .dispatch: 50, .functions: 100,
    ]

    @Test(arguments: ShapeKind.allCases)
    func compileTimeGrowsLinearly(_ kind: ShapeKind) throws {
        let base = try #require(GrowthTests.baseSizes[kind])
        let sizes = [base, 2 * base, 4 * base]
        var times: [Double] = []
        for size in sizes { times.append(try compileSeconds(kind.make(size).text)) }
        let ratio = times[2] / times[0]
        let report = zip(sizes, times).map { "\($0): \(Int($1 * 1000)) ms" }.joined(separator: ", ")
        #expect(ratio < 8, "\(kind): 4x the input took \(ratio)x the time (\(report))")
    }
}
