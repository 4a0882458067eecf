// The same IL gives the same bytes in every process.
//
// Swift seeds its hash function per process unless SWIFT_DETERMINISTIC_HASHING
// is set, so any iteration over a Dictionary or Set whose order reaches the
// output (temporary numbering, register choices, block order, record order)
// shows up as crate files that differ between two processes. Each file of the
// conformance corpus and each benchmark program is built by `kiln build` three
// times: once with the fixed seed and twice with random seeds, and the three
// crate files must be identical.

import Foundation
import Testing

@Suite struct DeterminismTests {
    static let inputs = ProgramTests.conformanceFiles + files(in: "Benchmarks/programs", withExtension: ".ssa")

    @Test func crateFilesAreTheSameUnderEveryHashSeed() throws {
        #expect(DeterminismTests.inputs.count >= 45)
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let seeds: [(label: String, environment: [String: String])] = [
            ("fixed", ["SWIFT_DETERMINISTIC_HASHING": "1"]),
            ("random1", ["SWIFT_DETERMINISTIC_HASHING": ""]),
            ("random2", ["SWIFT_DETERMINISTIC_HASHING": ""]),
        ]
        var differing: [String] = []
        for input in DeterminismTests.inputs {
            let name = URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent
            var contents: [Data] = []
            for seed in seeds {
                let output = "\(directory)/\(name).\(seed.label).kcrate"
                let result = try runKiln(["build", input, "-o", output], environment: seed.environment)
                try #require(result.status == 0, "\(name): \(result.error)")
                contents.append(try Data(contentsOf: URL(fileURLWithPath: output)))
            }
            if contents.contains(where: { $0 != contents[0] }) { differing.append(name) }
        }
        #expect(differing.isEmpty, "crate files differ between processes for: \(differing.joined(separator: ", "))")
    }
}
