// Conversions between integers and floats, and between the two precisions.
//
// Forms and opcodes (prefix F3 for single, F2 for double; REX.W for a 64-bit
// integer operand):
//   cvtsi2ss/cvtsi2sd xmm, r/m32 or r/m64      F3/F2 [REX.W] 0F 2A
//   cvttss2si/cvttsd2si r32 or r64, xmm/m      F3/F2 [REX.W] 0F 2C (truncating)
//   cvtss2sd xmm, xmm/m32                      F3 0F 5A
//   cvtsd2ss xmm, xmm/m64                      F2 0F 5A
//
// The integer side is always signed. An out-of-range or NaN float converts to
// the "integer indefinite" value 0x80000000 / 0x8000000000000000. cvtsi2s*
// and cvts*2s* write only the low lane, so the destination carries a false
// dependency on its previous value; `packedLogic(.xor, p, d, d)` first breaks it.
//
// Unsigned conversions, which the code generator builds from these:
// - u32 to float: zero-extend to 64 bits (`mov(.b32, r, r)`), then convert
//   with a 64-bit source; every u32 is a non-negative Int64.
// - float to u32: convert to a 64-bit destination and keep the low 32 bits.
// - u64 to float: if the sign bit is clear (`test r, r` / `js`), convert
//   directly. Otherwise halve the value with `shr r, 1` while ORing the bit
//   shifted out back into bit 0 (so the rounding of the halved value matches
//   the rounding of the original), convert, and double with `add d, d`.
// - float to u64: compare with 2^63 (`ucomis` against a constant). Below it,
//   convert directly. Otherwise subtract 2^63, convert, and flip bit 63 of the
//   result (`xor` with a `movabs`-loaded 1 << 63).

extension CodeBuffer {
    /// `cvtsi2ss`/`cvtsi2sd destination, source`: a signed 32- or 64-bit integer
    /// (`sourceWidth` `.b32` or `.b64`) to float, rounding by MXCSR (to nearest).
    public mutating func cvtsi2s(_ precision: Precision, _ destination: XMM, _ sourceWidth: Width, _ source: GPR) {
        checkConversionWidth(sourceWidth)
        encode(
            prefix: precision.scalarPrefix, rex: sourceWidth.sizeREX, opcode: 0x0F2A,
            reg: destination.rawValue, rm: source.rawValue)
    }

    /// `cvtsi2ss`/`cvtsi2sd destination, dword/qword ptr [source]`.
    public mutating func cvtsi2s(_ precision: Precision, _ destination: XMM, _ sourceWidth: Width, _ source: Memory) {
        checkConversionWidth(sourceWidth)
        encode(
            prefix: precision.scalarPrefix, rex: sourceWidth.sizeREX, opcode: 0x0F2A,
            reg: destination.rawValue, memory: source)
    }

    /// `cvttss2si`/`cvttsd2si destination, source`: float to a signed 32- or
    /// 64-bit integer (`width`), truncating toward zero.
    public mutating func cvtts2si(_ precision: Precision, _ width: Width, _ destination: GPR, _ source: XMM) {
        checkConversionWidth(width)
        encode(
            prefix: precision.scalarPrefix, rex: width.sizeREX, opcode: 0x0F2C,
            reg: destination.rawValue, rm: source.rawValue)
    }

    /// `cvttss2si`/`cvttsd2si destination, dword/qword ptr [source]`.
    public mutating func cvtts2si(_ precision: Precision, _ width: Width, _ destination: GPR, _ source: Memory) {
        checkConversionWidth(width)
        encode(
            prefix: precision.scalarPrefix, rex: width.sizeREX, opcode: 0x0F2C,
            reg: destination.rawValue, memory: source)
    }

    /// `cvtss2sd destination, source`: float to double (exact).
    public mutating func cvtss2sd(_ destination: XMM, _ source: XMM) {
        encode(prefix: 0xF3, opcode: 0x0F5A, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `cvtss2sd destination, dword ptr [source]`.
    public mutating func cvtss2sd(_ destination: XMM, _ source: Memory) {
        encode(prefix: 0xF3, opcode: 0x0F5A, reg: destination.rawValue, memory: source)
    }

    /// `cvtsd2ss destination, source`: double to float, rounding by MXCSR.
    public mutating func cvtsd2ss(_ destination: XMM, _ source: XMM) {
        encode(prefix: 0xF2, opcode: 0x0F5A, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `cvtsd2ss destination, qword ptr [source]`.
    public mutating func cvtsd2ss(_ destination: XMM, _ source: Memory) {
        encode(prefix: 0xF2, opcode: 0x0F5A, reg: destination.rawValue, memory: source)
    }

    private func checkConversionWidth(_ width: Width) {
        precondition(width == .b32 || width == .b64, "float conversions take a 32- or 64-bit integer, not \(width)")
    }
}
