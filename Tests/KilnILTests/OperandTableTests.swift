// The operand table, checked against the test's own copy of QBE's type strings
// (doc/il.txt section 7, ops.h) and Kiln's superset, and then end to end: every
// allowed form verifies, every other result class is rejected.

import KilnIL
import Testing

/// For each opcode written in the IL: each allowed result class, with the classes
/// of its first and second operand (`m` an address, `-` no operand).
private let expectedForms: [String: String] = {
    var table: [String: String] = [
        "add": "w:ww l:ll s:ss d:dd", "sub": "w:ww l:ll s:ss d:dd", "mul": "w:ww l:ll s:ss d:dd",
        "div": "w:ww l:ll s:ss d:dd", "neg": "w:w- l:l- s:s- d:d-",
        "udiv": "w:ww l:ll", "rem": "w:ww l:ll", "urem": "w:ww l:ll",
        "or": "w:ww l:ll", "xor": "w:ww l:ll", "and": "w:ww l:ll",
        "sar": "w:ww l:lw", "shr": "w:ww l:lw", "shl": "w:ww l:lw",
        "storeb": "w:wm", "storeh": "w:wm", "storew": "w:wm", "storel": "w:lm", "stores": "w:sm", "stored": "w:dm",
        "loadsb": "w:m- l:m-", "loadub": "w:m- l:m-", "loadsh": "w:m- l:m-", "loaduh": "w:m- l:m-",
        "loadsw": "w:m- l:m-", "loaduw": "w:m- l:m-", "load": "w:m- l:m- s:m- d:m-",
        "extsb": "w:w- l:w-", "extub": "w:w- l:w-", "extsh": "w:w- l:w-", "extuh": "w:w- l:w-",
        "extsw": "l:w-", "extuw": "l:w-", "exts": "d:s-", "truncd": "s:d-",
        "stosi": "w:s- l:s-", "stoui": "w:s- l:s-", "dtosi": "w:d- l:d-", "dtoui": "w:d- l:d-",
        "swtof": "s:w- d:w-", "uwtof": "s:w- d:w-", "sltof": "s:l- d:l-", "ultof": "s:l- d:l-",
        "cast": "w:s- l:d- s:w- d:l-",
        "alloc4": "l:l-", "alloc8": "l:l-", "alloc16": "l:l-",
        "vaarg": "w:m- l:m- s:m- d:m-", "vastart": "w:m-", "copy": "w:w- l:l- s:s- d:d- r:r-",
        "dbgloc": "w:ww",
        // Kiln's managed references (docs/IL-EXTENSIONS.md).
        "rnew": "r:l-", "rnewb": "r:l-", "rload": "r:rl", "rloadb": "w:rl l:rl", "rlen": "w:r- l:r-",
        "rtag": "r:l-", "runtag": "w:r- l:r-", "risref": "w:r- l:r-", "ceqr": "w:rr l:rr", "cner": "w:rr l:rr",
        "loadr": "r:m-", "storer": "w:rm", "rclosure": "r:ll", "rcode": "l:r-",
    ]
    for name in ["ceqw", "cnew", "csgew", "csgtw", "cslew", "csltw", "cugew", "cugtw", "culew", "cultw"] { table[name] = "w:ww l:ww" }
    for name in ["ceql", "cnel", "csgel", "csgtl", "cslel", "csltl", "cugel", "cugtl", "culel", "cultl"] { table[name] = "w:ll l:ll" }
    for name in ["ceqs", "cges", "cgts", "cles", "clts", "cnes", "cos", "cuos"] { table[name] = "w:ss l:ss" }
    for name in ["ceqd", "cged", "cgtd", "cled", "cltd", "cned", "cod", "cuod"] { table[name] = "w:dd l:dd" }
    return table
}()

private func operandLetter(_ operand: OperandClass) -> Character {
    switch operand {
    case .none: "-"
    case .pointer: "m"
    case .w: "w"
    case .l: "l"
    case .s: "s"
    case .d: "d"
    case .r: "r"
    case .invalid: "!"
    }
}

struct OperandTableTests {
    @Test func everyPublicOpcodeIsListed() {
        let publicNames = Set(Opcode.allCases.filter(\.isPublic).map(\.name))
        #expect(publicNames == Set(expectedForms.keys))
        #expect(Opcode.allCases.filter(\.isComparison).count == 36 + 2)
    }

    @Test(arguments: Opcode.allCases.filter(\.isPublic))
    func operandClasses(_ op: Opcode) {
        var actual: [String] = []
        for cls in Class.allCases {
            if let (first, second) = op.operandClasses(result: cls) {
                actual.append("\(cls.letter):\(operandLetter(first))\(operandLetter(second))")
            }
        }
        #expect(actual.joined(separator: " ") == expectedForms[op.name], "\(op.name)")
    }

    @Test func structuralOpcodesAreNotWrittenByName() {
        for op in Opcode.allCases where !op.isPublic {
            #expect(op.rawValue >= Opcode.firstStructural.rawValue)
            #expect(op.operandClasses(result: .w) == nil, "\(op.name)")
        }
    }

    @Test func predicates() {
        #expect(Opcode.allCases.filter(\.isStore).map(\.name).sorted() ==
                ["storeb", "stored", "storeh", "storel", "storer", "stores", "storew"])
        #expect(Opcode.allCases.filter(\.isLoad).map(\.name).sorted() ==
                ["load", "loadr", "loadsb", "loadsh", "loadsw", "loadub", "loaduh", "loaduw"])
        #expect(Opcode.allCases.filter(\.isParameter).count == 7)
        #expect(Opcode.allCases.filter(\.isArgument).count == 8)
        #expect(Class.l.canBeUsed(as: .w) && !Class.w.canBeUsed(as: .l) && !Class.r.canBeUsed(as: .l))
        #expect(!Class.l.canBeUsed(as: .r) && Class.r.canBeUsed(as: .r))
    }

    /// One line using `op` with result class `cls` and operands of the classes the table asks for.
    private func line(_ op: Opcode, _ cls: Class, _ form: String?) -> String {
        let letters = Array(form ?? "w-")
        func operand(_ letter: Character) -> String? {
            switch letter {
            case "-": nil
            case "m": "%l"
            default: "%" + String(letter)
            }
        }
        let operands = [operand(letters[0]), operand(letters[1])].compactMap { $0 }.joined(separator: ", ")
        if op.isStore || op == .vastart || op == .dbgloc {
            return op == .dbgloc ? "dbgloc 1, 2" : "\(op.name) \(operands)"
        }
        return "%x =\(cls.letter) \(op.name) \(operands)"
    }

    @Test(arguments: Opcode.allCases.filter(\.isPublic))
    func everyFormVerifiesAndEveryOtherClassIsRejected(_ op: Opcode) {
        let forms = Dictionary(uniqueKeysWithValues: (expectedForms[op.name] ?? "").split(separator: " ").map {
            (String($0.prefix(1)), String($0.dropFirst(2)))
        })
        let hasResult = !(op.isStore || op == .vastart || op == .dbgloc)
        for cls in Class.allCases where hasResult || cls == .w {
            let text = """
                function $f(w %w, l %l, s %s, d %d, r %r, ...) {
                @start
                \t\(line(op, cls, forms[cls.letter]))
                \tret
                }
                """
            let errors = check(text).errors
            if forms[cls.letter] != nil {
                #expect(errors.isEmpty, "\(op.name) =\(cls.letter): \(errors)")
            } else {
                #expect(errors.map(\.message).contains { $0.contains("cannot produce a result of class \(cls.letter)") },
                        "\(op.name) =\(cls.letter): \(errors)")
            }
        }
    }
}
