// The collection of encodings that the oracle test hands to the
// disassemblers: one buffer holding every instruction back to back, and for
// each instruction its offset, its length and the Intel text it must decode
// to.
//
// Expected text is written by the test from the operands it chose (see
// Check.swift for the names), never printed by the encoder. A branch's text
// says `@target`: objdump prints the absolute target offset there and llvm-mc
// the displacement from the end of the instruction, so the suite records the
// target and substitutes per disassembler.

import KilnX64

/// One encoding to check.
struct OracleCase {
    var offset: Int
    var length: Int
    /// Expected Intel text; `@target` stands for a branch target.
    var text: String
    /// How many low bits of an immediate operand are significant.
    var immediateBits: Int
    /// The branch target as an offset in the buffer, for `@target`.
    var target: Int?

    /// The expected text as objdump prints it (absolute targets).
    var objdumpText: String {
        guard let target else { return text }
        return text.replacingOccurrences(of: "@target", with: "\(target)")
    }

    /// The expected text as llvm-mc prints it (relative targets).
    var llvmText: String {
        guard let target else { return text }
        return text.replacingOccurrences(of: "@target", with: "\(target - offset - length)")
    }
}

/// All oracle encodings, emitted into one buffer.
final class OracleSuite {
    var buffer = CodeBuffer(capacity: 1 << 20)
    var cases: [OracleCase] = []

    /// Emits one instruction with `emit` and records the text it should decode to.
    ///
    /// `displacement` is a branch displacement from the end of the instruction.
    func add(_ text: String, bits: Int = 64, displacement: Int64? = nil, _ emit: (inout CodeBuffer) -> Void) {
        let offset = buffer.count
        emit(&buffer)
        let length = buffer.count - offset
        let target = displacement.map { offset + length + Int($0) }
        cases.append(OracleCase(offset: offset, length: length, text: text, immediateBits: bits, target: target))
    }

    /// Builds the whole suite: golden rows first, then every family.
    static func build() -> OracleSuite {
        let suite = OracleSuite()
        for row in goldenRows {
            suite.add(row.text, bits: row.bits, displacement: row.displacement, row.emit)
        }
        suite.addArithmeticLogic()
        suite.addMoves()
        suite.addMultiplyDivide()
        suite.addShifts()
        suite.addConditional()
        suite.addControlFlow()
        suite.addMiscellaneous()
        suite.addSSEMoves()
        suite.addSSEArithmetic()
        suite.addSSEConversions()
        return suite
    }
}

// MARK: Operands

/// Addressing forms to run instructions over.
enum Memories {
    /// One of each special case, for instructions crossed with all 16 registers.
    static let few: [MemoryCase] = [
        MemoryCase(base: .rax),
        MemoryCase(base: .rsp),  // needs SIB
        MemoryCase(base: .r12),  // needs SIB
        MemoryCase(base: .rbp),  // needs disp8 0
        MemoryCase(base: .r13),  // needs disp8 0
        MemoryCase(base: .rcx, displacement: 127),
        MemoryCase(base: .rdx, displacement: -128),
        MemoryCase(base: .rbx, displacement: 128),
        MemoryCase(base: .rsi, displacement: -129),
        MemoryCase(base: .r15, displacement: Int32.max),
        MemoryCase(base: .rdi, index: .r8, scale: .x4, displacement: 8),
        MemoryCase(base: .r13, index: .r12, scale: .x2),
        MemoryCase(base: .rsp, index: .rbp, scale: .x8, displacement: -16),
        MemoryCase(base: nil, index: .r11, scale: .x8, displacement: 64),
        MemoryCase(rip: 256),
        MemoryCase(base: nil, displacement: 4096),
    ]

    static let displacements: [Int32] = [0, 1, -1, 127, -128, 128, -129, Int32.max, Int32.min]

    /// Every base with every boundary displacement, every index with every
    /// scale, no-base, absolute and RIP-relative forms.
    static let full: [MemoryCase] = {
        var result: [MemoryCase] = []
        for base in GPR.allCases {
            for displacement in displacements {
                result.append(MemoryCase(base: base, displacement: displacement))
            }
            result.append(MemoryCase(base: base, index: .rcx, scale: .x2))
            result.append(MemoryCase(base: base, index: .r12, scale: .x8, displacement: -128))
            result.append(MemoryCase(base: base, index: .r13, scale: .x1, displacement: 1000))
        }
        for index in IndexRegister.allCases {
            for scale in Scale.allCases {
                result.append(MemoryCase(base: .rax, index: index, scale: scale))
            }
            result.append(MemoryCase(base: nil, index: index, scale: .x4))
        }
        for scale in Scale.allCases {
            result.append(MemoryCase(base: nil, index: .rax, scale: scale, displacement: -129))
        }
        for address: Int32 in [0, -1, 0x7fff_ffff, Int32.min] {
            result.append(MemoryCase(base: nil, displacement: address))
        }
        for displacement: Int32 in [0, -4, 127, Int32.max, Int32.min] {
            result.append(MemoryCase(rip: displacement))
        }
        return result
    }()
}

/// The edge immediates that fit an operation of `width`.
func edgeImmediates(_ width: Width) -> [Int32] {
    switch width {
    case .b8: return [0, 1, -1, 127, 128, -128, 255]
    case .b16: return [0, 1, -1, 127, 128, -128, -129, 32767, -32768, 65535]
    case .b32, .b64: return [0, 1, -1, 127, 128, -128, -129, Int32.max, Int32.min]
    }
}

/// Register `i` of the 16, cycling: pairs a varying register with each memory form.
func cycled(_ i: Int) -> GPR {
    GPR.allCases[i % 16]
}

/// `name(register, width)`, shortened for the case tables.
func n(_ register: GPR, _ width: Width) -> String {
    Intel.name(register, width)
}

/// The Intel name of an XMM register.
func n(_ register: XMM) -> String {
    Intel.name(register)
}
