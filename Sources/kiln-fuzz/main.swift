// kiln-fuzz: feeds damaged crate files to the whole loading path.
//
// libFuzzer (scripts/fuzz-crate.sh) drives the decoder alone, guided by
// coverage. This driver goes further along the path a crate file takes:
// decode, validate, load into a live loader (placement, eager binding,
// relocation, TOC), then unload and collect, for every input that decodes.
// Inputs are mutations of real crate files (bit flips, byte and word
// changes, truncations, splices, repeated and deleted ranges), resealed
// half of the time so they get past the checksum. A crash is a finding; so
// is a decoded module that fails `validate()`, a load that leaves anything
// behind after its unload (code and data; callback stubs are kept by design).
//
// Usage: kiln-fuzz [--runs N] [--seed N] IL-OR-CRATE-FILES...

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
import KilnTooling
#if canImport(Glibc)
import Glibc
#endif

struct Generator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ limit: Int) -> Int { limit <= 1 ? 0 : Int(next() % UInt64(limit)) }
}

/// One to four mutations of a seed.
func mutate(_ seeds: [[UInt8]], _ random: inout Generator) -> [UInt8] {
    var bytes = seeds[random.below(seeds.count)]
    for _ in 0...random.below(4) where bytes.count > CrateFile.headerLength {
        let at = CrateFile.headerLength + random.below(bytes.count - CrateFile.headerLength)
        switch random.below(7) {
        case 0: bytes[at] ^= UInt8(1 << random.below(8))
        case 1: bytes[at] = UInt8(truncatingIfNeeded: random.next())
        case 2:
            let words: [UInt32] = [0, 1, 2, 7, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFF_FFFF, UInt32(bytes.count), UInt32(random.below(64))]
            let word = words[random.below(words.count)]
            for index in 0..<4 where at + index < bytes.count { bytes[at + index] = UInt8(truncatingIfNeeded: word >> (8 * UInt32(index))) }
        case 3: bytes.removeLast(bytes.count - at)
        case 4:
            let other = seeds[random.below(seeds.count)]
            bytes = Array(bytes[..<at]) + other[random.below(other.count)...]
        case 5: bytes.removeSubrange(at..<min(bytes.count, at + 1 + random.below(16)))
        default: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 1 + random.below(16))], at: at)
        }
    }
    if random.next() & 1 == 0 { CrateFile.reseal(&bytes) }
    return bytes
}

func seedFile(_ path: String) -> [UInt8]? {
    guard let bytes = try? Host.readFile(path) else { return nil }
    if path.hasSuffix(".kcrate") { return bytes }
    let (module, diagnostics) = parseAndVerify(SourceFile(name: path, bytes: bytes))
    guard diagnostics.isEmpty, let compiled = try? compileModule(module) else { return nil }
    return CrateFile.encode(compiled)
}

func fail(_ message: String) -> Never {
    Host.writeStandardError("kiln-fuzz: FINDING: \(message)\n")
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var runs = 1_000_000
var seedValue: UInt64 = 1
while let first = arguments.first, first.hasPrefix("--") {
    guard arguments.count >= 2, let value = Int(arguments[1]) else { fail("usage: kiln-fuzz [--runs N] [--seed N] FILES...") }
    if first == "--runs" { runs = value } else if first == "--seed" { seedValue = UInt64(value) } else { fail("unknown option \(first)") }
    arguments.removeFirst(2)
}
let seeds = arguments.compactMap(seedFile)
guard !seeds.isEmpty else { fail("no seed compiled; give IL or crate files") }

var random = Generator(state: seedValue)
let loader: Loader
do {
    loader = try Loader(options: .init())
} catch {
    fail("cannot make a loader: \(error)")
}
let baseline = loader.heapUsage
var decoded = 0, loaded = 0, refusedByLoader = 0
let clock = ContinuousClock()
let start = clock.now
for run in 0..<runs {
    let bytes = mutate(seeds, &random)
    guard var module = try? CrateFile.decode(bytes) else { continue }
    decoded += 1
    do {
        try module.validate()
    } catch {
        fail("run \(run): decoded a module that fails validate(): \(error)")
    }
    // One crate name for every input, so callback stubs (one per crate and function name,
    // kept for C code that may hold them) are reused rather than piling up.
    module.name = "fuzz"
    do {
        let crate = try loader.load(module)
        loaded += 1
        try loader.unload(crate)
    } catch {
        refusedByLoader += 1
    }
    let usage = loader.heapUsage
    if usage.code != baseline.code || usage.data != baseline.data {
        fail("run \(run): the heap did not return to its baseline: \(usage) vs \(baseline)")
    }
    if run > 0 && run % 1_000_000 == 0 {
        Host.writeStandardError("kiln-fuzz: \(run) inputs, \(decoded) decoded, \(loaded) loaded and unloaded\n")
    }
}
let elapsed = clock.now - start
print("kiln-fuzz: \(runs) inputs from \(seeds.count) seeds in \(elapsed): \(decoded) decoded, \(loaded) loaded and unloaded, "
    + "\(refusedByLoader) refused by the loader, \(loader.heapUsage.fixed - baseline.fixed) bytes of stubs kept, 0 findings")
