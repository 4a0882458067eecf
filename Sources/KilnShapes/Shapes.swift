// IL functions of a chosen size and shape, for measuring how compile time and
// memory grow with the size of the input.
//
// Each shape is one that real front ends emit and that once made some pass
// grow faster than its input: long chains of blocks whose temporaries are
// assigned again and again (SSA construction, liveness), a block with very
// many predecessors and a phi with an argument from each (dominators, phi
// copies), runs of empty blocks and of branches on constants (folding, block
// layout), an interpreter's dispatch loop where every case jumps back to one
// header (long live ranges, many back edges), and modules of many small
// functions. Every function verifies and compiles; the text depends only on
// the shape and the size, so two runs measure the same input.

/// A generated IL module and its size.
public struct Shape: Sendable {
    /// The IL text.
    public var text: String
    /// Lines of IL.
    public var lines: Int
    /// The size the shape was asked for (blocks, arguments, cases or functions).
    public var size: Int
}

/// The shapes, by name.
public enum ShapeKind: String, CaseIterable, Sendable {
    /// `size` blocks that reassign a few temporaries of every class and branch ahead by one or three.
    case chain
    /// A block with `size` predecessors and a phi with one argument from each.
    case phi
    /// `size` constant `jnz` in a row (folding leaves a run of empty blocks).
    case foldedBranches
    /// A loop whose header dispatches to `size` cases, each updating the loop's temporaries.
    case dispatch
    /// `size` small functions, each calling the next.
    case functions

    /// The module of this shape and size.
    public func make(_ size: Int) -> Shape {
        var writer = ShapeWriter()
        switch self {
        case .chain: writer.chain(size)
        case .phi: writer.phi(size)
        case .foldedBranches: writer.foldedBranches(size)
        case .dispatch: writer.dispatch(size)
        case .functions: writer.functions(size)
        }
        return Shape(text: writer.text, lines: writer.lines, size: size)
    }
}

struct ShapeWriter {
    var text = ""
    var lines = 0

    mutating func line(_ content: String) {
        text += content
        text += "\n"
        lines += 1
    }

    mutating func chain(_ blocks: Int) {
        line("export function w $f(w %n) {")
        line("@start")
        line("\t%x =w copy %n")
        line("\t%y =l copy 1")
        line("\t%z =d copy d_1")
        for index in 0..<blocks {
            line("@b\(index)")
            line("\t%x =w add %x, \(index % 7 + 1)")
            line("\t%c =w csltw %x, \(index * 3)")
            if index % 3 == 0 { line("\t%y =l add %y, %y") }
            if index % 5 == 0 { line("\t%z =d mul %z, d_1.0001") }
            let next = index + 1 < blocks ? "@b\(index + 1)" : "@end"
            let skip = index + 3 < blocks ? "@b\(index + 3)" : "@end"
            line("\tjnz %c, \(next), \(skip)")
        }
        line("@end")
        line("\t%g =w dtosi %z")
        line("\t%t =w copy %y")
        line("\t%r =w add %x, %g")
        line("\t%r =w add %r, %t")
        line("\tret %r")
        line("}")
    }

    mutating func phi(_ arguments: Int) {
        line("export function w $f(w %a) {")
        line("@start")
        line("\tjmp @b0")
        for index in 0..<arguments - 1 {
            line("@b\(index)")
            line("\t%c\(index) =w ceqw %a, \(index)")
            line("\tjnz %c\(index), @join, @b\(index + 1)")
        }
        line("@b\(arguments - 1)")
        line("\tjmp @join")
        line("@join")
        var phi = "\t%p =w phi "
        for index in 0..<arguments {
            if index > 0 { phi += ", " }
            phi += "@b\(index) \(index * 2)"
        }
        line(phi)
        line("\tret %p")
        line("}")
    }

    mutating func foldedBranches(_ count: Int) {
        line("export function w $f(w %a) {")
        line("@start")
        line("\t%k =w copy 1")
        for index in 0..<count {
            line("@b\(index)")
            line("\tjnz %k, @b\(index + 1), @out\(index)")
            line("@out\(index)")
            line("\tret \(index)")
        }
        line("@b\(count)")
        line("\tret %a")
        line("}")
    }

    /// Cases are reached through a binary tree of comparisons on the opcode, as a C `switch`
    /// compiled to compare-and-branch would.
    mutating func dispatch(_ cases: Int) {
        line("export function l $f(l %code, l %steps) {")
        line("@start")
        line("\t%pc =l copy 0")
        line("\t%acc =l copy 0")
        line("\t%count =w copy 0")
        line("\t%x =d copy d_0")
        line("\t%i =l copy 0")
        line("@loop")
        line("\t%i =l add %i, 1")
        line("\t%more =w csltl %i, %steps")
        line("\tjnz %more, @fetch, @done")
        line("@fetch")
        line("\t%at =l add %code, %pc")
        line("\t%op =w loadub %at")
        line("\tjmp @tree0")
        var pending: [(label: String, low: Int, high: Int)] = [("tree0", 0, cases)]
        var next = 1
        while let (label, low, high) = pending.popLast() {
            line("@\(label)")
            if high - low == 1 {
                caseBody(low)
                continue
            }
            let middle = (low + high) / 2
            let left = "tree\(next)", right = "tree\(next + 1)"
            next += 2
            line("\t%t\(label) =w csltw %op, \(middle)")
            line("\tjnz %t\(label), @\(left), @\(right)")
            pending.append((right, middle, high))
            pending.append((left, low, middle))
        }
        line("@done")
        line("\t%r =l dtosi %x")
        line("\t%r =l add %r, %acc")
        line("\t%w =l extsw %count")
        line("\t%r =l add %r, %w")
        line("\tret %r")
        line("}")
    }

    mutating func caseBody(_ index: Int) {
        line("\t%v\(index) =l mul %acc, \(index + 3)")
        line("\t%acc =l xor %v\(index), %pc")
        switch index % 4 {
        case 0: line("\t%x =d add %x, d_\(index).5")
        case 1: line("\t%count =w add %count, \(index)")
        case 2: line("\t%f\(index) =d sltof %acc")
            line("\t%x =d mul %x, %f\(index)")
        default: line("\t%acc =l shr %acc, 1")
        }
        line("\t%pc =l add %pc, \(index % 5 + 1)")
        line("\t%pc =l and %pc, 4095")
        line("\tjmp @loop")
    }

    mutating func functions(_ count: Int) {
        for index in 0..<count {
            line("function w $g\(index)(w %a, w %b) {")
            line("@start")
            line("\t%s =w add %a, %b")
            line("\t%c =w csltw %s, \(index)")
            line("\tjnz %c, @call, @done")
            line("@call")
            if index + 1 < count {
                line("\t%s =w call $g\(index + 1)(w %s, w %a)")
            } else {
                line("\t%s =w sub %s, 1")
            }
            line("@done")
            line("\tret %s")
            line("}")
        }
        line("export function w $f(w %a) {")
        line("@start")
        line("\t%r =w call $g0(w %a, w 1)")
        line("\tret %r")
        line("}")
    }
}
