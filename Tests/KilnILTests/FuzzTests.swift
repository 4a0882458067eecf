// A short, deterministic fuzz run of the front end inside the test suite.
//
// The libFuzzer harness (Fuzz/FrontEnd, scripts/fuzz-frontend.sh) runs for
// millions of inputs; this is its everyday companion: a seeded mutation fuzzer
// that takes the IL snippets below plus every input in Inputs/fuzz-regressions
// (crashes the harness found, kept so they stay fixed), mutates them at byte
// and token level, and checks the front end's promises on each result:
// it does not trap (a trap ends the test run), every diagnostic points into the
// file and renders, and a module without errors prints to text that parses and
// verifies without errors and prints back identically. The generator is
// SplitMix64 with a fixed seed, so a failure reproduces on every run.

import Foundation
import KilnIL
import Testing

@Suite struct FuzzTests {
    /// Inputs tried by `mutatedInputsKeepThePromises`.
    static let inputCount = 12_000

    @Test func seedsVerify() {
        for (index, seed) in fuzzSeeds.enumerated() {
            let (_, diagnostics) = parseAndVerify(SourceFile(name: "seed\(index).ssa", text: seed))
            let errors = diagnostics.filter { $0.severity == .error }
            #expect(errors.isEmpty, "seed \(index) has errors:\n\(errors.map(\.rendered).joined(separator: "\n"))")
        }
    }

    @Test func regressionInputsKeepThePromises() throws {
        for (name, bytes) in try fuzzRegressionInputs() {
            if let broken = brokenPromise(bytes) {
                Issue.record("\(name): \(broken)")
            }
        }
    }

    /// Four independent streams of inputs, so the run uses every core.
    @Test(arguments: 0..<4)
    func mutatedInputsKeepThePromises(stream: Int) throws {
        var random = SplitMix64(seed: 0x4B49_4C4E_4655_5A5A &+ UInt64(stream))
        let seeds = fuzzSeeds.map { Array($0.utf8) } + (try fuzzRegressionInputs().map(\.bytes))
        var mutator = Mutator(seeds: seeds)
        var previous = seeds[0]
        var withoutErrors = 0
        let count = FuzzTests.inputCount / 4
        for index in 0..<count {
            // Mostly mutate a seed; sometimes keep mutating the last input, to go deeper.
            let base = random.chance(25) ? previous : seeds[random.below(seeds.count)]
            let input = mutator.mutate(base, &random)
            if let broken = brokenPromise(input, countingValid: &withoutErrors) {
                Issue.record("input \(index) of stream \(stream) breaks a promise: \(broken)\n--- input ---\n\(String(decoding: input, as: UTF8.self))")
                return
            }
            previous = input.count > 8192 ? base : input
        }
        // A fuzzer whose inputs never get past the parser tests only error paths.
        #expect(withoutErrors > count / 50, "only \(withoutErrors) of \(count) inputs were free of errors")
    }
}

/// The first promise the front end breaks on `bytes`, described, or nil.
func brokenPromise(_ bytes: [UInt8]) -> String? {
    var unused = 0
    return brokenPromise(bytes, countingValid: &unused)
}

/// The first promise broken on `bytes`; counts the inputs that verified without errors.
func brokenPromise(_ bytes: [UInt8], countingValid valid: inout Int) -> String? {
    let source = SourceFile(name: "fuzz.ssa", bytes: bytes)
    let (module, diagnostics) = parseAndVerify(source)
    if let broken = brokenDiagnostic(diagnostics, in: source) { return broken }
    guard !diagnostics.contains(where: { $0.severity == .error }) else { return nil }
    valid += 1

    let printed = module.printed()
    let printedSource = SourceFile(name: "printed.ssa", text: printed)
    let (reparsed, reparseDiagnostics) = parseAndVerify(printedSource)
    if let broken = brokenDiagnostic(reparseDiagnostics, in: printedSource) { return "in the printout: \(broken)" }
    let errors = reparseDiagnostics.filter { $0.severity == .error }
    if !errors.isEmpty {
        return "the printout does not verify:\n\(errors.map(\.rendered).joined(separator: "\n"))\n--- printed ---\n\(printed)"
    }
    let reprinted = reparsed.printed()
    if reprinted != printed {
        return "printing is not a fixed point\n--- printed ---\n\(printed)\n--- printed again ---\n\(reprinted)"
    }
    return nil
}

/// A diagnostic outside its file or one that does not render, described, or nil.
func brokenDiagnostic(_ diagnostics: [Diagnostic], in source: SourceFile) -> String? {
    for diagnostic in diagnostics {
        if Int(diagnostic.location.offset) > source.bytes.count {
            return "diagnostic at offset \(diagnostic.location.offset) of a \(source.bytes.count)-byte file: \(diagnostic.message)"
        }
        let rendered = diagnostic.rendered
        if !rendered.hasPrefix(source.name + ":") || !rendered.contains(diagnostic.message) || !rendered.hasSuffix("^") {
            return "diagnostic renders badly: \(rendered)"
        }
    }
    return nil
}

/// Every file in Inputs/fuzz-regressions, by name (hidden files and READMEs skipped).
func fuzzRegressionInputs() throws -> [(name: String, bytes: [UInt8])] {
    guard let inputs = Bundle.module.url(forResource: "Inputs", withExtension: nil) else { return [] }
    let directory = inputs.appendingPathComponent("fuzz-regressions")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return try names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().map { name in
        (name, Array(try Data(contentsOf: directory.appendingPathComponent(name))))
    }
}

// MARK: The generator and the mutations

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (`bound` > 0).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }
}

/// Byte-level and token-level mutations of IL text.
struct Mutator {
    let seeds: [[UInt8]]
    /// Words worth inserting: keywords, opcodes, class letters, sigiled names, edge literals.
    let words: [[UInt8]]

    init(seeds: [[UInt8]]) {
        self.seeds = seeds
        let keywords = Keyword.allCases.map(\.text)
        let opcodes = Opcode.allCases.filter(\.isPublic).map(\.name)
        let others = [
            "%x", "%y", "@start", "@l1", "$f", "$\"q\"", ":t", "=w", "=l", "=s", "=d", "=r", "=:t", "=sb", "=ub",
            ",", "(", ")", "{", "}", "=", "+", "...", "#", "\n", "\"", "\\", "0", "-1", "1", "8", "4294967296",
            "18446744073709551615", "18446744073709551616", "-9223372036854775808", "s_1.5", "d_-0.0", "d_nan",
            "s_inf", "d_1e308", "s_0x1p-149", "\"a\\x41\\101\"", "\r\n", "\t", "thread $t", "extern $e",
        ]
        words = (keywords + opcodes + others).map { Array($0.utf8) }
    }

    /// One to four mutations of `input`.
    mutating func mutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0...random.below(4) {
            switch random.below(12) {
            case 0: flipBit(&bytes, &random)
            case 1: setByte(&bytes, &random)
            case 2: insertByte(&bytes, &random)
            case 3: deleteRange(&bytes, &random)
            case 4: duplicateLine(&bytes, &random)
            case 5: deleteLine(&bytes, &random)
            case 6: spliceLine(&bytes, &random)
            case 7: swapTokens(&bytes, &random)
            case 8: insertWord(&bytes, &random)
            case 9: replaceToken(&bytes, &random)
            case 10: bytes.removeLast(bytes.isEmpty ? 0 : random.below(bytes.count + 1))
            default: changeNumber(&bytes, &random)
            }
        }
        return bytes
    }

    func flipBit(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        bytes[random.below(bytes.count)] ^= 1 << UInt8(random.below(8))
    }

    func setByte(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        let interesting: [UInt8] = [0, 0x0A, 0x0D, 0x09, 0x20, 0x22, 0x23, 0x25, 0x24, 0x40, 0x3A, 0x2C, 0x2D, 0x5C, 0x7F, 0x80, 0xFF]
        bytes[random.below(bytes.count)] = random.chance(50) ? random.pick(interesting) : UInt8(random.below(256))
    }

    func insertByte(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        bytes.insert(UInt8(random.below(128)), at: random.below(bytes.count + 1))
    }

    func deleteRange(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        let start = random.below(bytes.count)
        let count = min(bytes.count - start, 1 + random.below(16))
        bytes.removeSubrange(start..<(start + count))
    }

    /// The range of a random line of `bytes`, with its newline.
    func randomLine(_ bytes: [UInt8], _ random: inout SplitMix64) -> Range<Int> {
        guard !bytes.isEmpty else { return 0..<0 }
        var start = random.below(bytes.count), end = start
        while start > 0 && bytes[start - 1] != 0x0A { start -= 1 }
        while end < bytes.count && bytes[end] != 0x0A { end += 1 }
        return start..<min(end + 1, bytes.count)
    }

    /// The start of a random line of `bytes` (or its end).
    func randomLineStart(_ bytes: [UInt8], _ random: inout SplitMix64) -> Int {
        let line = randomLine(bytes, &random)
        return random.chance(90) ? line.lowerBound : bytes.count
    }

    func duplicateLine(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        let line = Array(bytes[randomLine(bytes, &random)])
        bytes.insert(contentsOf: line, at: randomLineStart(bytes, &random))
    }

    func deleteLine(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        bytes.removeSubrange(randomLine(bytes, &random))
    }

    /// Puts a line of another seed into this input.
    func spliceLine(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        let donor = random.pick(seeds)
        var line = Array(donor[randomLine(donor, &random)])
        if line.last != 0x0A { line.append(0x0A) }
        bytes.insert(contentsOf: line, at: randomLineStart(bytes, &random))
    }

    /// The range of a random blank-separated token of `bytes` (punctuation stays attached, as often in IL).
    func randomToken(_ bytes: [UInt8], _ random: inout SplitMix64) -> Range<Int>? {
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x2C }
        guard !bytes.isEmpty else { return nil }
        var start = random.below(bytes.count)
        while start < bytes.count && isBlank(bytes[start]) { start += 1 }
        guard start < bytes.count else { return nil }
        while start > 0 && !isBlank(bytes[start - 1]) { start -= 1 }
        var end = start
        while end < bytes.count && !isBlank(bytes[end]) { end += 1 }
        return start..<end
    }

    func swapTokens(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard var first = randomToken(bytes, &random), var second = randomToken(bytes, &random) else { return }
        if first.lowerBound > second.lowerBound { swap(&first, &second) }
        guard first.upperBound <= second.lowerBound else { return }
        let (a, b) = (Array(bytes[first]), Array(bytes[second]))
        bytes.replaceSubrange(second, with: a)
        bytes.replaceSubrange(first, with: b)
    }

    func insertWord(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        let position = randomToken(bytes, &random)?.lowerBound ?? 0
        bytes.insert(contentsOf: random.pick(words) + [0x20], at: position)
    }

    func replaceToken(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard let token = randomToken(bytes, &random) else { return }
        bytes.replaceSubrange(token, with: random.pick(words))
    }

    /// Replaces a run of digits with an edge value.
    func changeNumber(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        var start = random.below(bytes.count)
        while start < bytes.count && !(bytes[start] >= 0x30 && bytes[start] <= 0x39) { start += 1 }
        guard start < bytes.count else { return }
        var end = start + 1
        while start > 0 && bytes[start - 1] >= 0x30 && bytes[start - 1] <= 0x39 { start -= 1 }
        while end < bytes.count && bytes[end] >= 0x30 && bytes[end] <= 0x39 { end += 1 }
        let values = ["0", "1", "2", "3", "7", "8", "16", "31", "32", "63", "64", "127", "128", "255", "256", "65535",
                      "2147483647", "4294967295", "4294967296", "1073741824", "281474976710656", "9223372036854775807",
                      "18446744073709551615", "99999999999999999999"]
        bytes.replaceSubrange(start..<end, with: Array(random.pick(values).utf8))
    }
}

// MARK: Seeds

/// IL snippets that verify and together cover most of the grammar.
let fuzzSeeds: [String] = [
    """
    type :pair = { l, l }
    type :mixed = align 16 { b 3, h, w 2, s, :pair 2, d }
    type :either = { { w } { d, l } }
    type :opaque = align 8 { 13 }
    function :pair $make(l %a, l %b) {
    @start
    \t%p =l alloc8 16
    \tstorel %a, %p
    \t%q =l add %p, 8
    \tstorel %b, %q
    \tret %p
    }
    function w $use(env %x, :pair %p, :either %e) {
    @start
    \t%r =:pair call $make(l 1, l 2)
    \t%v =l loadl %r
    \t%w =w copy %v
    \tret %w
    }
    """,
    """
    export data $greeting = { b "hello, \\"world\\"\\n\\101\\x42\\t", b 0 }
    data $table = align 16 { w 1 2 -3, l $greeting + 8, h 65535, b 255, z 12, s s_1.5, d d_-2.25e10 }
    thread data $tls = { w 7 }
    common data $zeros = { z 64 }
    section ".rodata" "a" data $ro = { l $table, }
    dbgfile "main.c"
    function l $tlsAddress() {
    @start
    \t%a =l copy thread $tls
    \t%b =l copy extern $errno
    \tdbgloc 12, 3
    \t%c =l add %a, %b
    \tret %c
    }
    """,
    """
    export function w $fib(w %n) {
    @start
    \t%small =w csltw %n, 2
    \tjnz %small, @base, @loop
    @base
    \tret %n
    @loop
    \t%i =w phi @loop %i1, @start 2
    \t%a =w phi @loop %b, @start 0
    \t%b =w phi @loop %c, @start 1
    \t%c =w add %a, %b
    \t%i1 =w add %i, 1
    \t%done =w csgtw %i1, %n
    \tjnz %done, @end, @loop
    @end
    \tret %c
    }
    """,
    """
    function d $floats(s %x, d %y) {
    @start
    \t%x2 =d exts %x
    \t%s =d add %x2, %y
    \t%m =d mul %s, d_0.5
    \t%t =s truncd %m
    \t%i =w stosi %t
    \t%u =l dtoui %m
    \t%f =d sltof %u
    \t%g =s uwtof %i
    \t%c =w cled %f, d_inf
    \t%o =w cuos %g, s_nan
    \t%bits =l cast %f
    \t%back =d cast %bits
    \tret %back
    }
    """,
    """
    function $memory(l %p, w %v) {
    @start
    \tstoreb %v, %p
    \tstoreh %v, %p
    \tstorew %v, %p
    \tstorel 0, %p
    \tstores s_1, %p
    \tstored d_2, %p
    \t%a =w loadsb %p
    \t%b =w loadub %p
    \t%c =w loadsh %p
    \t%d =w loaduh %p
    \t%e =l loadsw %p
    \t%f =l loaduw %p
    \t%g =w loadw %p
    \t%h =l load %p
    \t%k =l alloc4 12
    \t%n =l alloc16 %e
    \tblit %p, %k, 12
    \t%x =w extsb %a
    \t%y =l extuw %x
    \t%z =w xor %x, %b
    \t%sh =l shl %y, %z
    \t%sa =l sar %sh, 3
    \t%rm =w urem %z, 7
    \thlt
    }
    """,
    """
    function w $variadic(l %fmt, ...) {
    @start
    \t%ap =l alloc8 32
    \tvastart %ap
    \t%x =w vaarg %ap
    \t%r =w call $printf(l %fmt, ..., w %x, d d_1)
    \t%s =w call $sub(sb %x, ub %r, sh 1, uh 2)
    \tcall $nothing()
    \t%env =l call $closure(env %ap, l 3)
    \tret %s
    }
    function sb $sub(sb %a, ub %b, sh %c, uh %d) {
    @start
    \t%x =w add %a, %b
    \tjmp @fall
    @fall
    @last
    \tret %x
    }
    """,
    """
    data $roots = { r 0 2, l 1 }
    function r $kiln(r %obj, l %i) {
    @start
    \t%o =r rnew 4
    \trstore %obj, %o, %i
    \t%x =r rload %o, 0
    \t%n =l rlen %o
    \t%s =r rnewb 16
    \trstoreb 65, %s, 1
    \t%c =w rloadb %s, 1
    \t%t =r rtag %i
    \t%u =l runtag %t
    \t%isref =w risref %x
    \t%eq =w ceqr %x, %o
    \t%v =r loadr $roots
    \tstorer %v, $roots
    \t%id =l call $kiln.self()
    \tcall $kiln.yield()
    \tret %o
    }
    """,
    """
    # comments, blank lines, odd spacing
    function   w   $spacing ( w %a ,w %b ){
    @start  # trailing comment
    \t%x=w add %a,%b
    \t%y =w    sub   %x , 1

    \tjnz %y, @a, @b
    @a
    \tjmp @b
    @b
    \t%z =w phi @start %x, @a %y
    \tret %z
    }
    function $"quoted name"() {
    @start
    \tret
    }
    """,
]
