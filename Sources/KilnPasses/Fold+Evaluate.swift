// Evaluating one instruction on constant operands, exactly as the machine would.
//
// Integer `w` operations see the low 32 bits of their operands; shifts take
// their count modulo the width; comparisons give 0 or 1. What traps or
// depends on the machine is left alone: integer division by zero or of the
// most negative value by -1, float results or inputs that are NaN (their
// payload is the processor's choice), float-to-integer conversions out of
// range, and unsigned conversions whose lowering the code generator picks.
// Floats follow IEEE 754 with round-to-nearest, which is what SSE does with
// the default MXCSR.

import KilnIL

extension Constant {
    /// The same bits, normalised for a value of class `cls`: `w` sign-extended from 32 bits,
    /// `s` its low 32 bits, floats marked so they print as float literals.
    func normalized(for cls: Class) -> Constant {
        guard kind == .bits else { return self }
        switch cls {
        case .w: return Constant(bits: UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: bits))))
        case .l, .r: return Constant(bits: bits)
        case .s: return Constant(bits: bits & 0xFFFF_FFFF, floatKind: .single)
        case .d: return Constant(bits: bits, floatKind: .double)
        }
    }

    var single: Float { Float(bitPattern: UInt32(truncatingIfNeeded: bits)) }
    var double: Double { Double(bitPattern: bits) }
}

private func integer(_ value: UInt64, _ cls: Class) -> Constant { Constant(bits: value).normalized(for: cls) }
private func single(_ value: Float) -> Constant? {
    value.isNaN ? nil : Constant(bits: UInt64(value.bitPattern), floatKind: .single)
}
private func double(_ value: Double) -> Constant? {
    value.isNaN ? nil : Constant(bits: value.bitPattern, floatKind: .double)
}
private func flag(_ condition: Bool, _ cls: Class) -> Constant { Constant(bits: condition ? 1 : 0) }

/// The result of `op` of class `cls` on constant operands, or nil when it must be computed at run time.
/// `b` is nil for one-operand instructions.
func evaluate(_ op: Opcode, _ cls: Class, _ a: Constant, _ b: Constant?) -> Constant? {
    if op == .copy { return a.normalized(for: cls) }
    if let b, a.kind == .address || b.kind == .address {
        return evaluateAddress(op, cls, a, b)
    }
    guard a.kind == .bits, b?.kind ?? .bits == .bits else { return nil }
    if op.isComparison { return b.flatMap { compare(op, cls, a, $0) } }
    switch cls {
    case .w, .l:
        if let b, op.rawValue <= Opcode.shl.rawValue { return integerArithmetic(op, cls, a.bits, b.bits) }
        return convertToInteger(op, cls, a)
    case .s, .d:
        if let b, op.rawValue <= Opcode.shl.rawValue { return floatArithmetic(op, cls, a, b) }
        if op == .neg { return cls == .s ? single(-a.single) : double(-a.double) }
        return convertToFloat(op, cls, a)
    case .r:
        return nil
    }
}

/// `$sym + c`, `c + $sym`, `$sym - c` on `l`: the address with a new offset.
private func evaluateAddress(_ op: Opcode, _ cls: Class, _ a: Constant, _ b: Constant) -> Constant? {
    guard cls == .l else { return nil }
    switch (op, a.kind, b.kind) {
    case (.add, .address, .bits):
        var result = a
        result.bits = a.bits &+ b.bits
        return result
    case (.add, .bits, .address):
        var result = b
        result.bits = a.bits &+ b.bits
        return result
    case (.sub, .address, .bits):
        var result = a
        result.bits = a.bits &- b.bits
        return result
    default:
        return nil
    }
}

private func integerArithmetic(_ op: Opcode, _ cls: Class, _ x: UInt64, _ y: UInt64) -> Constant? {
    let is64 = cls == .l
    let shift = y & (is64 ? 63 : 31)
    switch op {
    case .add: return integer(x &+ y, cls)
    case .sub: return integer(x &- y, cls)
    case .mul: return integer(x &* y, cls)
    case .and: return integer(x & y, cls)
    case .or: return integer(x | y, cls)
    case .xor: return integer(x ^ y, cls)
    case .shl: return integer(x << shift, cls)
    case .shr:
        return integer(is64 ? x >> shift : UInt64(UInt32(truncatingIfNeeded: x) >> UInt32(shift)), cls)
    case .sar:
        return is64 ? integer(UInt64(bitPattern: Int64(bitPattern: x) >> Int64(shift)), cls)
            : integer(UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: x) >> Int32(shift))), cls)
    case .div, .rem:
        if is64 {
            let (p, q) = (Int64(bitPattern: x), Int64(bitPattern: y))
            if q == 0 || (p == .min && q == -1) { return nil }
            return integer(UInt64(bitPattern: op == .div ? p / q : p % q), cls)
        }
        let (p, q) = (Int32(truncatingIfNeeded: x), Int32(truncatingIfNeeded: y))
        if q == 0 || (p == .min && q == -1) { return nil }
        return integer(UInt64(bitPattern: Int64(op == .div ? p / q : p % q)), cls)
    case .udiv, .urem:
        if is64 {
            if y == 0 { return nil }
            return integer(op == .udiv ? x / y : x % y, cls)
        }
        let (p, q) = (UInt32(truncatingIfNeeded: x), UInt32(truncatingIfNeeded: y))
        if q == 0 { return nil }
        return integer(UInt64(op == .udiv ? p / q : p % q), cls)
    default:
        return nil
    }
}

private func floatArithmetic(_ op: Opcode, _ cls: Class, _ a: Constant, _ b: Constant) -> Constant? {
    if cls == .s {
        let (x, y) = (a.single, b.single)
        if x.isNaN || y.isNaN { return nil }
        switch op {
        case .add: return single(x + y)
        case .sub: return single(x - y)
        case .mul: return single(x * y)
        case .div: return single(x / y)
        default: return nil
        }
    }
    let (x, y) = (a.double, b.double)
    if x.isNaN || y.isNaN { return nil }
    switch op {
    case .add: return double(x + y)
    case .sub: return double(x - y)
    case .mul: return double(x * y)
    case .div: return double(x / y)
    default: return nil
    }
}

/// Comparisons: 0 or 1. Ordered float comparisons are false on NaN, `cne` is true, `cuo` says
/// whether either operand is NaN.
private func compare(_ op: Opcode, _ cls: Class, _ a: Constant, _ b: Constant) -> Constant? {
    let (x, y) = (a.bits, b.bits)
    let (xw, yw) = (UInt32(truncatingIfNeeded: x), UInt32(truncatingIfNeeded: y))
    let (sx, sy) = (Int64(bitPattern: x), Int64(bitPattern: y))
    let (swx, swy) = (Int32(bitPattern: xw), Int32(bitPattern: yw))
    let result: Bool
    switch op {
    case .ceqw: result = xw == yw
    case .cnew: result = xw != yw
    case .csltw: result = swx < swy
    case .cslew: result = swx <= swy
    case .csgtw: result = swx > swy
    case .csgew: result = swx >= swy
    case .cultw: result = xw < yw
    case .culew: result = xw <= yw
    case .cugtw: result = xw > yw
    case .cugew: result = xw >= yw
    case .ceql: result = x == y
    case .cnel: result = x != y
    case .csltl: result = sx < sy
    case .cslel: result = sx <= sy
    case .csgtl: result = sx > sy
    case .csgel: result = sx >= sy
    case .cultl: result = x < y
    case .culel: result = x <= y
    case .cugtl: result = x > y
    case .cugel: result = x >= y
    case .ceqs, .cges, .cgts, .cles, .clts, .cnes, .cos, .cuos:
        result = floatCompare(op, Double(a.single), Double(b.single))
    case .ceqd, .cged, .cgtd, .cled, .cltd, .cned, .cod, .cuod:
        result = floatCompare(op, a.double, b.double)
    default:
        return nil
    }
    return flag(result, cls)
}

private func floatCompare(_ op: Opcode, _ x: Double, _ y: Double) -> Bool {
    switch op {
    case .ceqs, .ceqd: x == y
    case .cnes, .cned: x != y
    case .clts, .cltd: x < y
    case .cles, .cled: x <= y
    case .cgts, .cgtd: x > y
    case .cges, .cged: x >= y
    case .cos, .cod: !x.isNaN && !y.isNaN
    default: x.isNaN || y.isNaN
    }
}

/// Extensions, float-to-integer conversions and casts with an integer result.
private func convertToInteger(_ op: Opcode, _ cls: Class, _ a: Constant) -> Constant? {
    let x = a.bits
    switch op {
    case .neg: return integer(0 &- x, cls)
    case .extsb: return integer(UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: x))), cls)
    case .extub: return integer(x & 0xFF, cls)
    case .extsh: return integer(UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: x))), cls)
    case .extuh: return integer(x & 0xFFFF, cls)
    case .extsw: return integer(UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: x))), cls)
    case .extuw: return integer(x & 0xFFFF_FFFF, cls)
    case .cast: return integer(cls == .w ? x & 0xFFFF_FFFF : x, cls)
    case .stosi, .dtosi, .stoui, .dtoui:
        let value = (op == .stosi || op == .stoui) ? Double(a.single) : a.double
        if value.isNaN { return nil }
        let truncated = value.rounded(.towardZero)
        let signed = op == .stosi || op == .dtosi
        // Unsigned conversions are folded only where they agree with the signed instruction.
        let low: Double = signed ? (cls == .w ? -2_147_483_648 : -9_223_372_036_854_775_808) : 0
        let high: Double = cls == .w ? 2_147_483_648 : 9_223_372_036_854_775_808
        guard truncated >= low, truncated < high else { return nil }
        return integer(UInt64(bitPattern: Int64(truncated)), cls)
    default:
        return nil
    }
}

/// Integer-to-float conversions, float extension and truncation, casts with a float result.
private func convertToFloat(_ op: Opcode, _ cls: Class, _ a: Constant) -> Constant? {
    let x = a.bits
    let isSingle = cls == .s
    switch op {
    case .cast:
        return isSingle ? Constant(bits: x & 0xFFFF_FFFF, floatKind: .single) : Constant(bits: x, floatKind: .double)
    case .exts:
        return a.single.isNaN ? nil : double(Double(a.single))
    case .truncd:
        return a.double.isNaN ? nil : single(Float(a.double))
    case .swtof:
        let value = Int32(truncatingIfNeeded: x)
        return isSingle ? single(Float(value)) : double(Double(value))
    case .uwtof:
        let value = UInt32(truncatingIfNeeded: x)
        return isSingle ? single(Float(value)) : double(Double(value))
    case .sltof, .ultof:
        let value = Int64(bitPattern: x)
        // Above 2^63 the unsigned lowering is the code generator's business.
        if op == .ultof && value < 0 { return nil }
        return isSingle ? single(Float(value)) : double(Double(value))
    default:
        return nil
    }
}
