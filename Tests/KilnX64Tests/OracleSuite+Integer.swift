// Oracle cases for the integer families: every operation at every width over
// every register pair, every register against each special addressing form,
// and the edge immediates.

import KilnX64

extension OracleSuite {
    func addArithmeticLogic() {
        for op in ALUOperation.allCases {
            let m = "\(op)"
            for width in Width.allCases {
                let size = Intel.size(width)
                for destination in GPR.allCases {
                    for source in GPR.allCases {
                        add("\(m) \(n(destination, width)), \(n(source, width))") {
                            $0.alu(op, width, destination, source)
                        }
                    }
                }
                // Every register with every special form for add; cycled for the rest.
                for (i, memory) in Memories.few.enumerated() {
                    let registers = op == .add ? GPR.allCases : [cycled(i + Int(op.rawValue))]
                    for register in registers {
                        add("\(m) \(n(register, width)), \(size)\(memory.text)") {
                            $0.alu(op, width, register, memory.memory)
                        }
                        add("\(m) \(size)\(memory.text), \(n(register, width))") {
                            $0.alu(op, width, memory.memory, register)
                        }
                    }
                }
                for register in GPR.allCases {
                    for imm in edgeImmediates(width) {
                        add("\(m) \(n(register, width)), \(imm)", bits: width.bits) {
                            $0.alu(op, width, register, imm: imm)
                        }
                    }
                }
                for (i, memory) in Memories.few.enumerated() {
                    let imms = edgeImmediates(width)
                    let imm = imms[i % imms.count]
                    add("\(m) \(size)\(memory.text), \(imm)", bits: width.bits) {
                        $0.alu(op, width, memory.memory, imm: imm)
                    }
                }
            }
        }
        for width in Width.allCases {
            let size = Intel.size(width)
            for first in GPR.allCases {
                for second in GPR.allCases {
                    add("test \(n(first, width)), \(n(second, width))") { $0.test(width, first, second) }
                }
                for imm in edgeImmediates(width) {
                    add("test \(n(first, width)), \(imm)", bits: width.bits) { $0.test(width, first, imm: imm) }
                }
            }
            for memory in Memories.few {
                for register in GPR.allCases {
                    add("test \(size)\(memory.text), \(n(register, width))") {
                        $0.test(width, memory.memory, register)
                    }
                }
                for imm in [edgeImmediates(width).last!, -1] {
                    add("test \(size)\(memory.text), \(imm)", bits: width.bits) {
                        $0.test(width, memory.memory, imm: imm)
                    }
                }
            }
        }
    }

    func addMoves() {
        for width in Width.allCases {
            let size = Intel.size(width)
            for destination in GPR.allCases {
                for source in GPR.allCases {
                    add("mov \(n(destination, width)), \(n(source, width))") { $0.mov(width, destination, source) }
                }
            }
            for (i, memory) in Memories.full.enumerated() {
                let register = cycled(i)
                add("mov \(n(register, width)), \(size)\(memory.text)") { $0.mov(width, register, memory.memory) }
                add("mov \(size)\(memory.text), \(n(register, width))") { $0.mov(width, memory.memory, register) }
            }
            for memory in Memories.few {
                for register in GPR.allCases {
                    add("mov \(n(register, width)), \(size)\(memory.text)") { $0.mov(width, register, memory.memory) }
                    add("mov \(size)\(memory.text), \(n(register, width))") { $0.mov(width, memory.memory, register) }
                }
                for imm in edgeImmediates(width) {
                    add("mov \(size)\(memory.text), \(imm)", bits: width.bits) { $0.mov(width, memory.memory, imm: imm) }
                }
            }
            for register in GPR.allCases {
                for value in Self.moveImmediates(width) {
                    let (text, bits) = Self.expectedMove(width, register, value)
                    add(text, bits: bits) { $0.mov(width, register, imm: value) }
                }
            }
        }
        for register in GPR.allCases {
            for value: Int64 in [0, -1, Int64.min, 0x1122_3344_5566_7788] {
                add("movabs \(n(register, .b64)), \(value)") { $0.movabs(register, imm64: value) }
            }
        }
        addWideningMoves()
        for (i, memory) in Memories.full.enumerated() {
            let register = cycled(i + 3)
            add("lea \(n(register, .b64)), \(memory.text)") { $0.lea(.b64, register, memory.memory) }
        }
        for memory in Memories.few {
            for register in GPR.allCases {
                add("lea \(n(register, .b32)), \(memory.text)") { $0.lea(.b32, register, memory.memory) }
            }
        }
    }

    static func moveImmediates(_ width: Width) -> [Int64] {
        switch width {
        case .b8: return [0, 1, -1, 127, 128, -128, 255]
        case .b16: return [0, 1, -1, 127, 128, -128, -129, 32767, -32768, 65535]
        case .b32: return [0, 1, -1, 127, 128, -128, -129, 0x7fff_ffff, -0x8000_0000, 0xffff_ffff]
        case .b64:
            return [
                0, 1, -1, 127, 128, -128, -129, 0x7fff_ffff, -0x8000_0000, 0xffff_ffff, 0x8000_0000,
                0x1_0000_0000, -0x8000_0001, Int64.max, Int64.min, 0x1122_3344_5566_7788,
            ]
        }
    }

    /// What `mov(width, register, imm: value)` should be: the shortest form.
    static func expectedMove(_ width: Width, _ register: GPR, _ value: Int64) -> (String, Int) {
        guard width == .b64 else { return ("mov \(n(register, width)), \(value)", width.bits) }
        if value >= 0 && value <= 0xffff_ffff { return ("mov \(n(register, .b32)), \(value)", 32) }
        if value >= -0x8000_0000 && value <= 0x7fff_ffff { return ("mov \(n(register, .b64)), \(value)", 64) }
        return ("movabs \(n(register, .b64)), \(value)", 64)
    }

    private func addWideningMoves() {
        let pairs: [(Width, Width)] = [(.b16, .b8), (.b32, .b8), (.b64, .b8), (.b32, .b16), (.b64, .b16), (.b64, .b32)]
        for (width, source) in pairs {
            for destination in GPR.allCases {
                for register in GPR.allCases {
                    let zeroText = source == .b32
                        ? "mov \(n(destination, .b32)), \(n(register, .b32))"
                        : "movzx \(n(destination, width)), \(n(register, source))"
                    add(zeroText) { $0.movzx(width, destination, source, register) }
                    let signName = source == .b32 ? "movsxd" : "movsx"
                    add("\(signName) \(n(destination, width)), \(n(register, source))") {
                        $0.movsx(width, destination, source, register)
                    }
                }
            }
            for (i, memory) in Memories.few.enumerated() {
                for destination in [cycled(i), cycled(i + 8)] {
                    let zeroText = source == .b32
                        ? "mov \(n(destination, .b32)), dword ptr \(memory.text)"
                        : "movzx \(n(destination, width)), \(Intel.size(source))\(memory.text)"
                    add(zeroText) { $0.movzx(width, destination, source, memory.memory) }
                    let signName = source == .b32 ? "movsxd" : "movsx"
                    add("\(signName) \(n(destination, width)), \(Intel.size(source))\(memory.text)") {
                        $0.movsx(width, destination, source, memory.memory)
                    }
                }
            }
        }
    }

    func addMultiplyDivide() {
        for width in [Width.b16, .b32, .b64] {
            let size = Intel.size(width)
            for destination in GPR.allCases {
                for source in GPR.allCases {
                    add("imul \(n(destination, width)), \(n(source, width))") { $0.imul(width, destination, source) }
                }
                let source = cycled(Int(destination.rawValue) + 7)
                for imm in edgeImmediates(width) {
                    add("imul \(n(destination, width)), \(n(source, width)), \(imm)", bits: width.bits) {
                        $0.imul(width, destination, source, imm: imm)
                    }
                }
            }
            for (i, memory) in Memories.few.enumerated() {
                for destination in GPR.allCases {
                    add("imul \(n(destination, width)), \(size)\(memory.text)") { $0.imul(width, destination, memory.memory) }
                }
                let imms = edgeImmediates(width)
                for imm in [imms[i % imms.count], imms.last!] {
                    let destination = cycled(i)
                    add("imul \(n(destination, width)), \(size)\(memory.text), \(imm)", bits: width.bits) {
                        $0.imul(width, destination, memory.memory, imm: imm)
                    }
                }
            }
        }
        for width in Width.allCases {
            let size = Intel.size(width)
            for op in UnaryOperation.allCases {
                for register in GPR.allCases {
                    add("\(op) \(n(register, width))") { $0.unary(op, width, register) }
                }
                for memory in Memories.few {
                    add("\(op) \(size)\(memory.text)") { $0.unary(op, width, memory.memory) }
                }
            }
            for register in GPR.allCases {
                add("neg \(n(register, width))") { $0.neg(width, register) }
                add("not \(n(register, width))") { $0.not(width, register) }
                add("mul \(n(register, width))") { $0.mul(width, register) }
                add("div \(n(register, width))") { $0.div(width, register) }
                add("idiv \(n(register, width))") { $0.idiv(width, register) }
                add("inc \(n(register, width))") { $0.inc(width, register) }
                add("dec \(n(register, width))") { $0.dec(width, register) }
            }
            for memory in Memories.few {
                add("inc \(size)\(memory.text)") { $0.inc(width, memory.memory) }
                add("dec \(size)\(memory.text)") { $0.dec(width, memory.memory) }
            }
        }
        add("cdq") { $0.cdq() }
        add("cqo") { $0.cqo() }
    }

    func addShifts() {
        for op in ShiftOperation.allCases {
            for width in Width.allCases {
                let size = Intel.size(width)
                for register in GPR.allCases {
                    add("\(op) \(n(register, width)), cl") { $0.shiftByCL(op, width, register) }
                    for count: UInt8 in [1, 0, 5, UInt8(width.bits - 1)] {
                        add("\(op) \(n(register, width)), \(count)", bits: 8) {
                            $0.shift(op, width, register, count: count)
                        }
                    }
                }
                for memory in Memories.few {
                    add("\(op) \(size)\(memory.text), cl") { $0.shiftByCL(op, width, memory.memory) }
                    for count: UInt8 in [1, 7] {
                        add("\(op) \(size)\(memory.text), \(count)", bits: 8) {
                            $0.shift(op, width, memory.memory, count: count)
                        }
                    }
                }
            }
        }
    }

    func addConditional() {
        for condition in Condition.allCases {
            for register in GPR.allCases {
                add("set\(condition) \(n(register, .b8))") { $0.setcc(condition, register) }
            }
            for memory in Memories.few {
                add("set\(condition) byte ptr \(memory.text)") { $0.setcc(condition, memory.memory) }
            }
            for width in [Width.b16, .b32, .b64] {
                for destination in GPR.allCases {
                    let source = cycled(Int(destination.rawValue) * 5 + Int(condition.rawValue))
                    add("cmov\(condition) \(n(destination, width)), \(n(source, width))") {
                        $0.cmov(condition, width, destination, source)
                    }
                }
                for (i, memory) in Memories.few.enumerated() {
                    let destination = cycled(i + Int(condition.rawValue))
                    add("cmov\(condition) \(n(destination, width)), \(Intel.size(width))\(memory.text)") {
                        $0.cmov(condition, width, destination, memory.memory)
                    }
                }
            }
        }
        for destination in GPR.allCases {
            for source in GPR.allCases {
                add("cmovl \(n(destination, .b64)), \(n(source, .b64))") { $0.cmov(.l, .b64, destination, source) }
            }
        }
    }
}
