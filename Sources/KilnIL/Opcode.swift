// Opcodes and the operand classes each one accepts.
//
// The table mirrors QBE's `ops.h`: for every result class an instruction may
// have, the class its first and second operands must have. `.invalid` marks a
// result class the instruction cannot produce, `.none` an operand that must be
// absent, `.pointer` an address (an `l` on amd64). The verifier checks every
// instruction against this one table, and later passes read the same flags.
//
// Opcodes from `par` on are structural: the parser makes them from the
// function signature, call syntax, `blit` and Kiln's three-operand stores;
// they are never written by hand under those names.

/// An IL operation.
public enum Opcode: UInt8, Sendable, CaseIterable {
    // Arithmetic and bits.
    case add, sub, neg, div, rem, udiv, urem, mul, and, or, xor, sar, shr, shl
    // Integer comparisons, word operands.
    case ceqw, cnew, csgew, csgtw, cslew, csltw, cugew, cugtw, culew, cultw
    // Integer comparisons, long operands.
    case ceql, cnel, csgel, csgtl, cslel, csltl, cugel, cugtl, culel, cultl
    // Floating comparisons.
    case ceqs, cges, cgts, cles, clts, cnes, cos, cuos
    case ceqd, cged, cgtd, cled, cltd, cned, cod, cuod
    // Memory.
    case storeb, storeh, storew, storel, stores, stored
    case loadsb, loadub, loadsh, loaduh, loadsw, loaduw, load
    // Extensions, truncations and conversions.
    case extsb, extub, extsh, extuh, extsw, extuw, exts, truncd
    case stosi, stoui, dtosi, dtoui, swtof, uwtof, sltof, ultof, cast
    // Stack allocation.
    case alloc4, alloc8, alloc16
    // Variadic helpers, copy, debug.
    case vaarg, vastart, copy, dbgloc
    // Kiln's managed references (docs/IL-EXTENSIONS.md).
    case rnew, rnewb, rload, rloadb, rlen, rtag, runtag, risref, ceqr, cner, loadr, storer, rclosure, rcode
    // Structural: parameters, arguments, calls, blit, three-operand stores.
    case par, parsb, parub, parsh, paruh, parc, pare
    case arg, argsb, argub, argsh, arguh, argc, arge, argv
    case call, blit0, blit1, rstore0, rstore1, rstoreb0, rstoreb1

    /// The first structural opcode; everything before it is written by name in the IL.
    public static let firstStructural = Opcode.par

    /// Whether the IL writes this opcode by its own name.
    @inlinable public var isPublic: Bool { rawValue < Opcode.par.rawValue }

    /// The mnemonic, as written in the IL (structural opcodes print as their IR names).
    public var name: String { opcodeNames[Int(rawValue)] }

    /// Whether this is a store (no result, value then address).
    @inlinable public var isStore: Bool {
        rawValue >= Opcode.storeb.rawValue && rawValue <= Opcode.stored.rawValue || self == .storer
    }

    /// Whether this is one of the loads of raw memory.
    @inlinable public var isLoad: Bool {
        rawValue >= Opcode.loadsb.rawValue && rawValue <= Opcode.load.rawValue || self == .loadr
    }

    /// Whether this is an integer or floating comparison producing 0 or 1.
    @inlinable public var isComparison: Bool {
        rawValue >= Opcode.ceqw.rawValue && rawValue <= Opcode.cuod.rawValue || self == .ceqr || self == .cner
    }

    /// Whether this is a `par*` opcode.
    @inlinable public var isParameter: Bool { rawValue >= Opcode.par.rawValue && rawValue <= Opcode.pare.rawValue }
    /// Whether this is an `arg*` opcode.
    @inlinable public var isArgument: Bool { rawValue >= Opcode.arg.rawValue && rawValue <= Opcode.argv.rawValue }

    /// The operand classes for a result class, or nil if the result class is invalid.
    public func operandClasses(result: Class) -> (OperandClass, OperandClass)? {
        let row = operandTable[Int(rawValue)]
        let pair = row[Int(result.rawValue)]
        if pair.0 == .invalid { return nil }
        return pair
    }
}

/// What an operand slot of an instruction must hold.
public enum OperandClass: UInt8, Sendable {
    case invalid, none, w, l, s, d, r, pointer

    /// The class a value in this slot must have, for slots that take a value.
    public var valueClass: Class? {
        switch self {
        case .w: .w
        case .l, .pointer: .l
        case .s: .s
        case .d: .d
        case .r: .r
        case .invalid, .none: nil
        }
    }
}

private let opcodeNames: [String] = Opcode.allCases.map { "\($0)" }

/// Builds one row of the operand table from QBE-style letters: five letters for the
/// result classes w l s d r, for the first and the second operand.
/// `e` invalid, `x` none, `m` pointer.
private func row(_ first: String, _ second: String) -> [(OperandClass, OperandClass)] {
    func decode(_ letter: Character) -> OperandClass {
        switch letter {
        case "e": .invalid
        case "x": .none
        case "w": .w
        case "l": .l
        case "s": .s
        case "d": .d
        case "r": .r
        case "m": .pointer
        default: fatalError("bad operand letter \(letter)")
        }
    }
    let a = Array(first), b = Array(second)
    return (0..<5).map { index in
        let x = decode(a[index]), y = decode(b[index])
        return (x == .invalid || y == .invalid) ? (.invalid, .invalid) : (x, y)
    }
}

private let operandTable: [[(OperandClass, OperandClass)]] = Opcode.allCases.map { op in
    switch op {
    case .add, .sub, .div, .mul: row("wlsde", "wlsde")
    case .neg: row("wlsde", "xxxxe")
    case .rem, .udiv, .urem, .and, .or, .xor: row("wleee", "wleee")
    case .sar, .shr, .shl: row("wleee", "wweee")
    case .ceqw, .cnew, .csgew, .csgtw, .cslew, .csltw, .cugew, .cugtw, .culew, .cultw:
        row("wweee", "wweee")
    case .ceql, .cnel, .csgel, .csgtl, .cslel, .csltl, .cugel, .cugtl, .culel, .cultl:
        row("lleee", "lleee")
    case .ceqs, .cges, .cgts, .cles, .clts, .cnes, .cos, .cuos: row("sseee", "sseee")
    case .ceqd, .cged, .cgtd, .cled, .cltd, .cned, .cod, .cuod: row("ddeee", "ddeee")
    case .storeb, .storeh, .storew: row("weeee", "meeee")
    case .storel: row("leeee", "meeee")
    case .stores: row("seeee", "meeee")
    case .stored: row("deeee", "meeee")
    case .loadsb, .loadub, .loadsh, .loaduh, .loadsw, .loaduw: row("mmeee", "xxeee")
    case .load: row("mmmme", "xxxxe")
    case .extsb, .extub, .extsh, .extuh: row("wweee", "xxeee")
    case .extsw, .extuw: row("eweee", "exeee")
    case .exts: row("eeese", "eeexe")
    case .truncd: row("eedee", "eexee")
    case .stosi, .stoui: row("sseee", "xxeee")
    case .dtosi, .dtoui: row("ddeee", "xxeee")
    case .swtof, .uwtof: row("eewwe", "eexxe")
    case .sltof, .ultof: row("eelle", "eexxe")
    case .cast: row("sdwle", "xxxxe")
    case .alloc4, .alloc8, .alloc16: row("eleee", "exeee")
    case .vaarg: row("mmmme", "xxxxe")
    case .vastart: row("meeee", "xeeee")
    case .copy: row("wlsdr", "xxxxx")
    case .dbgloc: row("weeee", "weeee")
    case .rnew, .rnewb: row("eeeel", "eeeex")
    case .rload: row("eeeer", "eeeel")
    case .rloadb: row("rreee", "lleee")
    case .rlen, .risref: row("rreee", "xxeee")
    case .rtag: row("eeeel", "eeeex")
    case .runtag: row("rreee", "xxeee")
    case .ceqr, .cner: row("rreee", "rreee")
    case .loadr: row("eeeem", "eeeex")
    case .storer: row("reeee", "meeee")
    case .rclosure: row("eeeel", "eeeel")
    case .rcode: row("ereee", "exeee")
    default: row("eeeee", "eeeee")
    }
}

/// Words with a meaning of their own in the IL, interned first so that their
/// `Name.index` equals their raw value.
public enum Keyword: UInt32, CaseIterable, Sendable {
    case call, env, phi, jmp, jnz, ret, hlt, blit
    case export, thread, `extern`, common, function, type, data, section, align, dbgfile
    case l, w, sh, uh, h, sb, ub, b, d, s, z, r
    case loadw, loadl, loads, loadd, alloc1, alloc2
    case rstore, rstoreb

    /// The number of keywords (`allCases` builds an array on every use; this is a constant).
    public static let count = UInt32(Keyword.rstoreb.rawValue + 1)

    /// The keyword's spelling.
    public var text: String {
        switch self {
        case .extern: "extern"
        default: "\(self)"
        }
    }
}

/// The number of names reserved for keywords and opcode mnemonics at the start of every name table.
let reservedNameCount = Keyword.allCases.count + Int(Opcode.firstStructural.rawValue)

extension NameTable {
    /// A table with the keywords and public opcode names at their reserved indices.
    ///
    /// Every module starts from one shared copy, built once: spelling the keywords
    /// goes through reflection, which costs more than parsing a small file.
    public static func withKeywords() -> NameTable { keywordTable }
}

/// The keyword table every module starts from.
private let keywordTable: NameTable = {
    var table = NameTable()
    for keyword in Keyword.allCases {
        let name = table.intern(keyword.text)
        precondition(name.index == keyword.rawValue, "keyword \(keyword) interned twice")
    }
    for op in Opcode.allCases where op.isPublic {
        _ = table.intern(op.name)
    }
    precondition(table.count == reservedNameCount, "an opcode name collides with a keyword")
    return table
}()

extension NameTable {
    /// The keyword a name spells, if any.
    @inlinable public func keyword(_ name: Name) -> Keyword? {
        name.index < Keyword.count ? Keyword(rawValue: name.index) : nil
    }

    /// The public opcode a name spells, if any.
    @inlinable public func opcode(_ name: Name) -> Opcode? {
        let first = Keyword.count
        guard name.index >= first, name.index < first + UInt32(Opcode.firstStructural.rawValue) else { return nil }
        return Opcode(rawValue: UInt8(name.index - first))
    }
}
