// The random instructions of a RandomProgram's blocks, and each function's
// exit block. Every instruction keeps the program defined: divisors are odd
// and positive, float-to-integer conversions read values they can represent,
// memory accesses stay inside the function's two stack slots or `$table`.

extension FunctionWriter {
    static let integerOperations = ["add", "sub", "mul", "and", "or", "xor", "add", "sub"]
    static let divisions = ["div", "rem", "udiv", "urem"]
    static let shifts = ["sar", "shr", "shl"]
    static let integerComparisons = ["ceq", "cne", "cslt", "csle", "csgt", "csge", "cult", "cule", "cugt", "cuge"]
    static let floatComparisons = ["ceq", "cne", "clt", "cle", "cgt", "cge", "co", "cuo"]

    /// One random instruction (a few, for the patterns that need a guard).
    mutating func instruction() {
        let cls = random.pick(FunctionWriter.classes)
        let isInteger = cls == "w" || cls == "l"
        switch random.below(14) {
        case 0, 1, 2:
            if isInteger {
                define(cls, "\(random.pick(FunctionWriter.integerOperations)) \(operand(cls)), \(operand(cls))")
            } else {
                let op = random.pick(["add", "sub", "mul", "div"])
                define(cls, "\(op) \(operand(cls)), \(operand(cls))")
            }
        case 3:
            if isInteger {
                // Divisor in 1...255, odd: never zero, and never -1 under the most negative value.
                let divisor = fresh()
                line("\(divisor) =\(cls) and \(operand(cls)), 255")
                line("\(divisor) =\(cls) or \(divisor), 1")
                define(cls, "\(random.pick(FunctionWriter.divisions)) \(operand(cls)), \(divisor)")
            } else {
                define(cls, "neg \(operand(cls))")
            }
        case 4:
            if isInteger {
                // The shifted value is a temporary, the count within the width: QBE emits invalid
                // instructions for a shifted constant and for a count that folds to 32 or more.
                let width = cls == "w" ? 32 : 64
                var count = String(random.below(width))
                if random.chance(50) {
                    count = fresh()
                    line("\(count) =w and \(temporary("w")), \(width - 1)")
                }
                let value = temporary(cls)
                define(cls, "\(random.pick(FunctionWriter.shifts)) \(value), \(count)")
            } else {
                define(cls, "copy \(operand(cls))")
            }
        case 5:
            comparison(into: isInteger ? cls : random.pick(["w", "l"]))
        case 6:
            conversion(to: cls)
        case 7, 8:
            load(cls)
        case 9:
            store(cls)
        case 10:
            if isInteger {
                let op = random.pick(["extsb", "extub", "extsh", "extuh"] + (cls == "l" ? ["extsw", "extuw"] : []))
                define(cls, "\(op) \(operand("w"))")
            } else {
                define(cls, "cast \(temporary(cls == "s" ? "w" : "l"))")
            }
        case 11:
            if random.chance(30) {
                line("blit %mem, %mem2, \(random.pick([8, 16, 24, 3, 13]))")
            } else {
                define(cls, "copy \(operand(cls))")
            }
        case 12:
            // A loaded table entry: memory that is not the function's own.
            let at = fresh("a")
            line("\(at) =l add $table, \(random.below(16) * 8)")
            define("l", "loadl \(at)")
        default:
            // A value that depends on a phi or a branch-carried temporary.
            let cls: Character = isInteger ? cls : "w"
            define(cls, "add \(operand(cls)), \(operand(cls))")
        }
    }

    mutating func comparison(into cls: Character) {
        let operandClass = random.pick(FunctionWriter.classes)
        let isInteger = operandClass == "w" || operandClass == "l"
        let name = random.pick(isInteger ? FunctionWriter.integerComparisons : FunctionWriter.floatComparisons)
        define(cls, "\(name)\(operandClass) \(operand(operandClass)), \(operand(operandClass))")
    }

    mutating func conversion(to cls: Character) {
        switch cls {
        case "w", "l":
            if random.chance(30) {
                define(cls, "cast \(temporary(cls == "w" ? "s" : "d"))")
                return
            }
            // A float made from a small integer, so that the conversion back can represent it.
            let small = fresh(), float = fresh("f")
            let source = random.pick(["s", "d"])
            let signed = random.chance(50)
            line("\(small) =w and \(operand("w")), \(signed ? 4095 : 65535)")
            if signed { line("\(small) =w sub \(small), 2048") }
            line("\(float) =\(source) swtof \(small)")
            let op = (source == "s" ? "sto" : "dto") + (signed ? "si" : "ui")
            define(cls, "\(op) \(float)")
        default:
            let (op, source): (String, Character) = random.pick([
                cls == "s" ? ("truncd", "d") : ("exts", "s"), ("swtof", "w"), ("uwtof", "w"), ("sltof", "l"), ("ultof", "l"),
            ])
            define(cls, "\(op) \(operand(source))")
        }
    }

    mutating func load(_ cls: Character) {
        let (op, width): (String, Int)
        switch cls {
        case "w": (op, width) = random.pick([("loadw", 4), ("loadsb", 1), ("loadub", 1), ("loadsh", 2), ("loaduh", 2)])
        case "l": (op, width) = random.pick([("loadl", 8), ("loadsw", 4), ("loaduw", 4), ("loadsb", 1), ("loaduh", 2)])
        case "s": (op, width) = ("loads", 4)
        default: (op, width) = ("loadd", 8)
        }
        let fromSecond = random.chance(25)
        let at = address(width, base: fromSecond ? "%mem2" : "%mem", size: fromSecond ? 32 : 64)
        define(cls, "\(op) \(at)")
    }

    mutating func store(_ cls: Character) {
        let (op, width, valueClass): (String, Int, Character)
        switch cls {
        case "w": (op, width, valueClass) = random.pick([("storew", 4, "w"), ("storeb", 1, "w"), ("storeh", 2, "w")])
        case "l": (op, width, valueClass) = ("storel", 8, "l")
        case "s": (op, width, valueClass) = ("stores", 4, "s")
        default: (op, width, valueClass) = ("stored", 8, "d")
        }
        let value = operand(valueClass)
        line("\(op) \(value), \(address(width))")
    }

    /// Folds every temporary, two loads and a call to the previous function into the result.
    mutating func writeExit() {
        text += "@exit\n"
        locals = [:]
        line("%acc =l copy %l0")
        for name in globals["l"]!.dropFirst() { line("%acc =l xor %acc, \(name)") }
        for name in globals["w"]! {
            line("%x =l extsw \(name)")
            line("%acc =l add %acc, %x")
        }
        for name in globals["d"]! {
            line("%x =l cast \(name)")
            line("%acc =l xor %acc, %x")
        }
        for name in globals["s"]! {
            line("%y =w cast \(name)")
            line("%x =l extuw %y")
            line("%acc =l add %acc, %x")
        }
        line("%x =l loadl %mem")
        line("%acc =l xor %acc, %x")
        let at = address(8, base: "%mem2", size: 32)
        line("%x =l loadl \(at)")
        line("%acc =l add %acc, %x")
        if index > 0 {
            let callee = random.below(index)
            var arguments: [String] = []
            for type in signatures[callee].parameters { arguments.append("\(type) \(operand(classOf(type)))") }
            let resultClass = signatures[callee].result
            line("%call =\(resultClass) call $f\(callee)(\(arguments.joined(separator: ", ")))")
            for text in bits(of: "%call", resultClass, into: "%x", scratch: "%y") { line(text) }
            line("%acc =l xor %acc, %x")
        }
        switch result {
        case "w", "l": line("ret %acc")
        case "s":
            line("%y =w copy %acc")
            line("%r =s cast %y")
            line("ret %r")
        default:
            line("%r =d cast %acc")
            line("ret %r")
        }
    }
}
