// Random valid IL programs that print what they compute, for comparing Kiln
// with QBE (or with an interpreter) on code nobody wrote by hand.
//
// A program is a set of functions and a `main` that calls each with fixed
// arguments and prints the result's bits in hexadecimal. Each function has a
// random signature (every class, enough parameters to spill to the stack), a
// start block that defines a few temporaries of every class and a stack slot,
// then random blocks joined by random jumps and branches (loops included) and
// an exit block that folds everything into the result. Blocks reassign the
// start block's temporaries (non-SSA input, so SSA construction places phis),
// define phis of their own, and use every kind of instruction: integer and
// float arithmetic, comparisons of every kind, extensions and conversions,
// casts, loads and stores of every width, `blit`, and calls to the functions
// before them.
//
// Every program is defined and terminates on any machine: each block spends
// one unit of a fuel counter and leaves for the exit block when it runs out;
// calls go only to earlier functions, once per call; divisors are forced odd
// and positive; float-to-integer conversions get operands they can represent;
// every temporary is written on every path before it is read (it is defined
// in the start block, or earlier in the same block, or by a phi of that
// block). The same seed gives the same program.

/// A small deterministic random number generator (SplitMix64).
public struct SplitMix64: Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// True with probability `percent` / 100.
    public mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Generates one random program per seed.
public struct RandomProgram {
    /// The program's IL text.
    public private(set) var text = ""
    var random: SplitMix64
    /// Signature of each function generated so far: parameter classes and return class.
    var signatures: [(parameters: [String], result: Character)] = []

    /// A program of `functions` functions (and `main`) from `seed`.
    public init(seed: UInt64, functions: Int = 6, blocks: Int = 8) {
        random = SplitMix64(seed: seed)
        text += "data $format = { b \"%lx\\n\", b 0 }\n"
        text += "data $table = { l 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 }\n\n"
        for index in 0..<functions {
            var writer = FunctionWriter(index: index, random: random, signatures: signatures,
                                        blockCount: 2 + random.below(blocks))
            writer.write()
            random = writer.random
            signatures.append((writer.parameters, writer.result))
            text += writer.text + "\n"
        }
        writeMain()
    }

    mutating func writeMain() {
        text += "export function w $main() {\n@start\n"
        for (index, signature) in signatures.enumerated() {
            var list: [String] = []
            for type in signature.parameters { list.append("\(type) \(constant(classOf(type)))") }
            let arguments = list.joined(separator: ", ")
            text += "\t%r\(index) =\(signature.result) call $f\(index)(\(arguments))\n"
            for line in bits(of: "%r\(index)", signature.result, into: "%b\(index)", scratch: "%c\(index)") {
                text += "\t\(line)\n"
            }
            text += "\tcall $printf(l $format, ..., l %b\(index))\n"
        }
        text += "\tret 0\n}\n"
    }

    mutating func constant(_ cls: Character) -> String {
        switch cls {
        case "w": return String(Int32(truncatingIfNeeded: random.next() >> UInt64(random.below(40))))
        case "l": return String(Int64(bitPattern: random.next() >> UInt64(random.below(64))))
        case "s": return "s_\(Double(random.below(2000)) / 16 - 60)"
        default: return "d_\(Double(random.below(20000)) / 64 - 150)"
        }
    }
}

/// Instructions that put the bits of `value` (of class `cls`) into the `l` temporary `result`,
/// using `scratch` for a single's 32 bits.
func bits(of value: String, _ cls: Character, into result: String, scratch: String) -> [String] {
    switch cls {
    case "w": return ["\(result) =l extuw \(value)"]
    case "l": return ["\(result) =l copy \(value)"]
    case "s": return ["\(scratch) =w cast \(value)", "\(result) =l extuw \(scratch)"]
    default: return ["\(result) =l cast \(value)"]
    }
}
