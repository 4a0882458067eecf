// One random function of a RandomProgram (see RandomProgram.swift for the
// rules that keep every program defined and terminating).
//
// Layout: `@start` (stack slots cleared, the function's temporaries defined
// from the parameters and constants, the fuel set), then blocks `@b0`... Each
// block may open with phis, runs random instructions, spends one unit of fuel
// (`jnz` to `@exit` when none is left, else to `@c<i>`), and `@c<i>` ends
// with the block's own random jump, branch or return. `@exit` folds every
// temporary, two loads and a call into the result.

struct FunctionWriter {
    let index: Int
    var random: SplitMix64
    let signatures: [(parameters: [String], result: Character)]
    let blockCount: Int
    var text = ""
    /// ABI types of the parameters: a class, or a sub-word type (a `w` the callee extends).
    var parameters: [String] = []
    var result: Character = "l"
    /// The temporaries the start block defines, by class; blocks may assign them again.
    var globals: [Character: [String]] = [:]
    /// Temporaries usable in the current block only (defined in it, or its phis).
    var locals: [Character: [String]] = [:]
    var counter = 0

    static let classes: [Character] = ["w", "l", "s", "d"]

    init(index: Int, random: SplitMix64, signatures: [(parameters: [String], result: Character)], blockCount: Int) {
        self.index = index
        self.random = random
        self.signatures = signatures
        self.blockCount = blockCount
    }

    mutating func line(_ content: String) { text += "\t\(content)\n" }

    mutating func fresh(_ prefix: String = "t") -> String {
        counter += 1
        return "%\(prefix)\(counter)"
    }

    mutating func write() {
        // Up to ten parameters: more than six integers or eight floats travel on the stack.
        parameters = (0..<random.below(11)).map { _ in
            random.chance(15) ? random.pick(["sb", "ub", "sh", "uh"]) : String(random.pick(FunctionWriter.classes))
        }
        result = random.pick(FunctionWriter.classes)
        let list = parameters.enumerated().map { "\($1) %p\($0)" }.joined(separator: ", ")
        text += "function \(result) $f\(index)(\(list)) {\n@start\n"
        line("%mem =l alloc8 64")
        line("%mem2 =l alloc16 32")
        for (base, size) in [("%mem", 64), ("%mem2", 32)] {
            for offset in stride(from: 0, to: size, by: 8) {
                let at = offset == 0 ? base : fresh("a")
                if offset > 0 { line("\(at) =l add \(base), \(offset)") }
                line("storel \(base == "%mem" ? offset * 3 + 1 : 0), \(at)")
            }
        }
        for cls in FunctionWriter.classes {
            let count = cls == "w" || cls == "l" ? 4 : 2
            var names: [String] = []
            for number in 0..<count {
                let name = "%\(cls)\(number)"
                let parameter = parameters.indices.filter { classOf(parameters[$0]) == cls }.dropFirst(number).first
                if let parameter, parameters[parameter].count == 2 {
                    // Only the low bits of a sub-word parameter are defined: extend them.
                    line("\(name) =w ext\(parameters[parameter]) %p\(parameter)")
                } else {
                    line("\(name) =\(cls) copy \(parameter.map { "%p\($0)" } ?? constant(cls))")
                }
                names.append(name)
            }
            globals[cls] = names
            // Defined once and never again: what phis read (QBE does not rename a temporary that
            // a phi reads, so phi arguments must already be in SSA form).
            line("%k\(cls) =\(cls) copy \(random.chance(50) ? constant(cls) : names[0])")
        }
        line("%fuel =w copy \(6 + random.below(30))")
        line("jmp @b0")

        // The jumps first, so that each block's predecessors are known for its phis.
        /// `logic`: a branch through a join that merges 1 and 0 in a phi and branches on it,
        /// as C front ends compile `&&` and `||`.
        enum Ending { case ret, jmp(Int), jnz(Int, Int), logic(Int, Int) }
        var endings: [Ending] = []
        var predecessors = Array(repeating: [String](), count: blockCount)
        predecessors[0].append("@start")
        for block in 0..<blockCount {
            func target() -> Int { random.below(blockCount + 1) }
            let name = "@c\(block)"
            switch random.below(10) {
            case 0:
                endings.append(.ret)
            case 1, 2, 3:
                let to = target()
                endings.append(.jmp(to))
                if to < blockCount { predecessors[to].append(name) }
            default:
                let (yes, no) = (target(), target())
                let isLogic = random.chance(30)
                endings.append(isLogic ? .logic(yes, no) : .jnz(yes, no))
                let from = isLogic ? "@j\(block)" : name
                if yes < blockCount { predecessors[yes].append(from) }
                if no < blockCount, no != yes { predecessors[no].append(from) }
            }
        }
        for block in 0..<blockCount {
            text += "@b\(block)\n"
            locals = [:]
            if !predecessors[block].isEmpty, random.chance(40) {
                for _ in 0..<(1 + random.below(3)) {
                    let cls = random.pick(FunctionWriter.classes)
                    let name = fresh("phi")
                    var arguments: [String] = []
                    for predecessor in predecessors[block] { arguments.append("\(predecessor) \(phiArgument(cls))") }
                    line("\(name) =\(cls) phi \(arguments.joined(separator: ", "))")
                    locals[cls, default: []].append(name)
                }
            }
            for _ in 0..<(3 + random.below(10)) { instruction() }
            line("%fuel =w sub %fuel, 1")
            line("%alive =w csgtw %fuel, 0")
            line("jnz %alive, @c\(block), @exit")
            text += "@c\(block)\n"
            switch endings[block] {
            case .ret: line("ret %\(result)0")
            case .jmp(let to): line("jmp \(label(to))")
            case .jnz(let yes, let no): line("jnz \(condition()), \(label(yes)), \(label(no))")
            case .logic(let yes, let no):
                line("jnz \(condition()), @t\(block), @f\(block)")
                text += "@t\(block)\n"
                line("jmp @j\(block)")
                text += "@f\(block)\n"
                line("jmp @j\(block)")
                text += "@j\(block)\n"
                let (taken, other) = random.chance(50) ? ("1", "0") : ("0", "1")
                line("%j\(block) =w phi @t\(block) \(taken), @f\(block) \(other)")
                line("jnz %j\(block), \(label(yes)), \(label(no))")
            }
        }
        writeExit()
        text += "}\n"
    }

    func label(_ block: Int) -> String { block < blockCount ? "@b\(block)" : "@exit" }

    mutating func phiArgument(_ cls: Character) -> String {
        random.chance(30) ? constant(cls) : "%k\(cls)"
    }

    mutating func constant(_ cls: Character) -> String {
        switch cls {
        case "w":
            return random.pick(["0", "1", "-1", "2147483647", "-2147483648", "255", "65535",
                                String(Int32(truncatingIfNeeded: random.next() >> UInt64(random.below(40))))])
        case "l":
            return random.pick(["0", "1", "-1", "9223372036854775807", "-9223372036854775808", "4294967295",
                                String(Int64(bitPattern: random.next() >> UInt64(random.below(64))))])
        case "s": return "s_\(Double(random.below(2000)) / 16 - 60)"
        default: return "d_\(Double(random.below(20000)) / 64 - 150)"
        }
    }

    /// A readable value of class `cls`: a temporary defined on every path here, or a constant.
    mutating func operand(_ cls: Character) -> String {
        if random.chance(15) { return constant(cls) }
        var choices = globals[cls]! + (locals[cls] ?? [])
        if cls == "w", random.chance(10) { choices = globals["l"]! }
        return random.pick(choices)
    }

    /// `<destination> =cls <rest>`: the destination is chosen after the operands in `rest`, so
    /// an instruction never reads the new temporary it defines.
    mutating func define(_ cls: Character, _ rest: String) {
        line("\(destination(cls)) =\(cls) \(rest)")
    }

    /// A `jnz` condition: a word temporary (QBE folds a constant or long condition on all 64 bits
    /// but tests 32 at run time, so those are left out).
    mutating func condition() -> String { temporary("w") }

    /// A temporary of class `cls` (no constant: QBE emits invalid instructions for some constant
    /// operands, such as the value of a shift or of a `cast`, so those get a temporary).
    mutating func temporary(_ cls: Character) -> String {
        random.pick(globals[cls]! + (locals[cls] ?? []))
    }

    /// Where a new value of class `cls` goes: a new temporary or one of the function's own.
    mutating func destination(_ cls: Character) -> String {
        if random.chance(50) { return random.pick(globals[cls]!) }
        let name = fresh()
        locals[cls, default: []].append(name)
        return name
    }

    /// A fresh address `%mem + offset` (or `%mem2`), aligned to `width`.
    mutating func address(_ width: Int, base: String = "%mem", size: Int = 64) -> String {
        let offset = random.below(size / width) * width
        guard offset > 0 else { return base }
        let name = fresh("a")
        line("\(name) =l add \(base), \(offset)")
        return name
    }
}

/// The class of an ABI type: sub-word types are words.
func classOf(_ type: String) -> Character { type.count == 1 ? type.first! : "w" }
