// Jumps, conditional jumps, calls and returns.
//
// Forms and opcodes:
//   jmp rel8  EB cb         jmp rel32  E9 cd         jmp r/m64  FF /4
//   jcc rel8  70+cc cb      jcc rel32  0F 80+cc cd
//   call rel32 E8 cd        call r/m64 FF /2         ret C3
//
// A displacement is relative to the end of the branch instruction. To a
// `Label`, `jmp(to:)` and `jcc(_:to:)` pick the 2-byte rel8 form when the
// label is already bound (a backward branch) and within -128...127 of the end
// of the short form; otherwise they emit the rel32 form, patched when the
// label is bound. Forward branches are therefore always near: the encoder
// never goes back to shrink them, so offsets handed out earlier stay valid.
//
// External targets (runtime functions, other functions in the code heap) use
// the `rel32:` forms, which return the `PatchSite` of the 4-byte field; the
// caller records a PC-relative relocation against it. A target beyond ±2 GiB
// must be called through a register (`movabs` then `call(_:)`).

extension CodeBuffer {
    // MARK: To labels

    /// `jmp label`: short if the label is bound and in reach, else near.
    public mutating func jmp(to label: Label) {
        if let target = offset(of: label), let short = Self.rel8(target, end: used + 2) {
            emit(0xEB)
            emit(UInt8(bitPattern: short))
        } else {
            emit(0xE9)
            emitRelative32(to: label)
        }
    }

    /// `jcc label`: short if the label is bound and in reach, else near.
    public mutating func jcc(_ condition: Condition, to label: Label) {
        if let target = offset(of: label), let short = Self.rel8(target, end: used + 2) {
            emit(0x70 + condition.rawValue)
            emit(UInt8(bitPattern: short))
        } else {
            emit(0x0F)
            emit(0x80 + condition.rawValue)
            emitRelative32(to: label)
        }
    }

    /// `call label`, to a function in the same buffer.
    public mutating func call(to label: Label) {
        emit(0xE8)
        emitRelative32(to: label)
    }

    /// The rel8 displacement from `end` to `target`, if it fits.
    private static func rel8(_ target: Int, end: Int) -> Int8? {
        Int8(exactly: target - end)
    }

    // MARK: Raw displacements

    /// `jmp rel8` with a displacement from the end of this 2-byte instruction.
    public mutating func jmp(rel8: Int8) {
        emit(0xEB)
        emit(UInt8(bitPattern: rel8))
    }

    /// `jmp rel32` with a displacement from the end of this 5-byte instruction.
    /// Returns the site of the displacement, for a relocation.
    @discardableResult
    public mutating func jmp(rel32: Int32) -> PatchSite {
        emit(0xE9)
        return emitRawRelative32(rel32)
    }

    /// `jcc rel8` with a displacement from the end of this 2-byte instruction.
    public mutating func jcc(_ condition: Condition, rel8: Int8) {
        emit(0x70 + condition.rawValue)
        emit(UInt8(bitPattern: rel8))
    }

    /// `jcc rel32` with a displacement from the end of this 6-byte instruction.
    /// Returns the site of the displacement, for a relocation.
    @discardableResult
    public mutating func jcc(_ condition: Condition, rel32: Int32) -> PatchSite {
        emit(0x0F)
        emit(0x80 + condition.rawValue)
        return emitRawRelative32(rel32)
    }

    /// `call rel32` with a displacement from the end of this 5-byte instruction.
    /// Returns the site of the displacement, for a relocation.
    @discardableResult
    public mutating func call(rel32: Int32) -> PatchSite {
        emit(0xE8)
        return emitRawRelative32(rel32)
    }

    private mutating func emitRawRelative32(_ displacement: Int32) -> PatchSite {
        let site = PatchSite(offset: used, instructionEnd: used + 4)
        emitInt32(displacement)
        return site
    }

    // MARK: Indirect

    /// `jmp target`: jumps to the address in a register.
    public mutating func jmp(_ target: GPR) {
        encode(opcode: 0xFF, reg: 4, rm: target.rawValue)
    }

    /// `jmp qword ptr [target]`: jumps to the address stored in memory.
    public mutating func jmp(_ target: Memory) {
        encode(opcode: 0xFF, reg: 4, memory: target)
    }

    /// `call target`: calls the address in a register.
    public mutating func call(_ target: GPR) {
        encode(opcode: 0xFF, reg: 2, rm: target.rawValue)
    }

    /// `call qword ptr [target]`: calls the address stored in memory.
    public mutating func call(_ target: Memory) {
        encode(opcode: 0xFF, reg: 2, memory: target)
    }

    /// `ret`.
    public mutating func ret() {
        emit(0xC3)
    }
}
