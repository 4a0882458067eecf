// Oracle cases for control flow, the stack and miscellany, and the SSE
// families.

import KilnX64

extension OracleSuite {
    func addControlFlow() {
        for displacement: Int8 in [-128, -2, 0, 1, 127] {
            add("jmp @target", displacement: Int64(displacement)) { $0.jmp(rel8: displacement) }
            for condition in Condition.allCases {
                add("j\(condition) @target", displacement: Int64(displacement)) { $0.jcc(condition, rel8: displacement) }
            }
        }
        for displacement: Int32 in [Int32.min, -129, -5, 0, 128, 0x1234_5678, Int32.max] {
            add("jmp @target", displacement: Int64(displacement)) { $0.jmp(rel32: displacement) }
            add("call @target", displacement: Int64(displacement)) { $0.call(rel32: displacement) }
            for condition in Condition.allCases {
                add("j\(condition) @target", displacement: Int64(displacement)) { $0.jcc(condition, rel32: displacement) }
            }
        }
        for register in GPR.allCases {
            add("jmp \(n(register, .b64))") { $0.jmp(register) }
            add("call \(n(register, .b64))") { $0.call(register) }
        }
        for memory in Memories.few {
            add("jmp qword ptr \(memory.text)") { $0.jmp(memory.memory) }
            add("call qword ptr \(memory.text)") { $0.call(memory.memory) }
        }
        addLabelBranches()
        add("ret") { $0.ret() }
    }

    /// Branches through labels: a backward short one, a backward near one,
    /// and forward ones patched when their label is bound.
    private func addLabelBranches() {
        let back = buffer.makeLabel()
        let backOffset = buffer.count
        try! buffer.bind(back)
        add("jmp @target", displacement: Int64(backOffset - buffer.count - 2)) { $0.jmp(to: back) }
        for condition in Condition.allCases {
            add("j\(condition) @target", displacement: Int64(backOffset - buffer.count - 2)) { $0.jcc(condition, to: back) }
        }
        let forward = buffer.makeLabel()
        let waiting = cases.count
        add("jmp @target") { $0.jmp(to: forward) }
        add("je @target") { $0.jcc(.e, to: forward) }
        add("call @target") { $0.call(to: forward) }
        add("lea rax, [rip+@rip]") { $0.lea(.b64, .rax, .rip(forward)) }
        for _ in 0..<40 { add("nop dword ptr [rax+rax*1+0]") { $0.nop(length: 5) } }
        let forwardOffset = buffer.count
        try! buffer.bind(forward)
        for i in waiting..<waiting + 4 {
            cases[i].target = forwardOffset
            let end = cases[i].offset + cases[i].length
            cases[i].text = cases[i].text.replacingOccurrences(of: "@rip", with: "\(forwardOffset - end)")
        }
        // Now far enough back that rel8 no longer reaches.
        add("jmp @target", displacement: Int64(backOffset - buffer.count - 5)) { $0.jmp(to: back) }
        add("jne @target", displacement: Int64(backOffset - buffer.count - 6)) { $0.jcc(.ne, to: back) }
    }

    func addMiscellaneous() {
        for register in GPR.allCases {
            add("push \(n(register, .b64))") { $0.push(register) }
            add("pop \(n(register, .b64))") { $0.pop(register) }
        }
        for imm: Int32 in [0, -1, 127, -128, 128, -129, Int32.max, Int32.min] {
            add("push \(imm)") { $0.push(imm: imm) }
        }
        add("ud2") { $0.ud2() }
        add("int3") { $0.int3() }
        add("endbr64") { $0.endbr64() }
        let nops = [
            "nop", "nop", "nop dword ptr [rax]", "nop dword ptr [rax+0]",
            "nop dword ptr [rax+rax*1+0]", "nop word ptr [rax+rax*1+0]", "nop dword ptr [rax+0]",
            "nop dword ptr [rax+rax*1+0]", "nop word ptr [rax+rax*1+0]",
        ]
        for (i, text) in nops.enumerated() {
            add(text) { $0.nop(length: i + 1) }
        }
    }

    func addSSEMoves() {
        for destination in XMM.allCases {
            for source in XMM.allCases {
                add("movss \(n(destination)), \(n(source))") { $0.movss(destination, source) }
                add("movsd \(n(destination)), \(n(source))") { $0.movsd(destination, source) }
                add("movaps \(n(destination)), \(n(source))") { $0.movaps(destination, source) }
                add("movapd \(n(destination)), \(n(source))") { $0.movapd(destination, source) }
            }
            for register in GPR.allCases {
                add("movd \(n(destination)), \(n(register, .b32))") { $0.movd(destination, register) }
                add("movd \(n(register, .b32)), \(n(destination))") { $0.movd(register, destination) }
                add("movq \(n(destination)), \(n(register, .b64))") { $0.movq(destination, register) }
                add("movq \(n(register, .b64)), \(n(destination))") { $0.movq(register, destination) }
            }
        }
        for (i, memory) in Memories.full.enumerated() {
            let register = XMM.allCases[i % 16]
            add("movsd \(n(register)), qword ptr \(memory.text)") { $0.movsd(register, memory.memory) }
            add("movss dword ptr \(memory.text), \(n(register))") { $0.movss(memory.memory, register) }
        }
        for memory in Memories.few {
            for register in XMM.allCases {
                add("movss \(n(register)), dword ptr \(memory.text)") { $0.movss(register, memory.memory) }
                add("movsd \(n(register)), qword ptr \(memory.text)") { $0.movsd(register, memory.memory) }
                add("movss dword ptr \(memory.text), \(n(register))") { $0.movss(memory.memory, register) }
                add("movsd qword ptr \(memory.text), \(n(register))") { $0.movsd(memory.memory, register) }
                add("movaps \(n(register)), xmmword ptr \(memory.text)") { $0.movaps(register, memory.memory) }
                add("movaps xmmword ptr \(memory.text), \(n(register))") { $0.movaps(memory.memory, register) }
            }
        }
    }

    func addSSEArithmetic() {
        for precision in Precision.allCases {
            let size = Intel.size(precision)
            let suffix = precision == .single ? "s" : "d"
            for destination in XMM.allCases {
                for source in XMM.allCases {
                    for op in ScalarOperation.allCases {
                        add("\(op)s\(suffix) \(n(destination)), \(n(source))") {
                            $0.scalar(op, precision, destination, source)
                        }
                    }
                    for op in PackedLogicOperation.allCases {
                        add("\(op)p\(suffix) \(n(destination)), \(n(source))") {
                            $0.packedLogic(op, precision, destination, source)
                        }
                    }
                    add("ucomis\(suffix) \(n(destination)), \(n(source))") { $0.ucomis(precision, destination, source) }
                    add("comis\(suffix) \(n(destination)), \(n(source))") { $0.comis(precision, destination, source) }
                }
            }
            for (i, memory) in Memories.few.enumerated() {
                for op in ScalarOperation.allCases {
                    let register = XMM.allCases[(i + Int(op.rawValue)) % 16]
                    add("\(op)s\(suffix) \(n(register)), \(size)\(memory.text)") {
                        $0.scalar(op, precision, register, memory.memory)
                    }
                }
                for op in PackedLogicOperation.allCases {
                    let register = XMM.allCases[(i + Int(op.rawValue)) % 16]
                    add("\(op)p\(suffix) \(n(register)), xmmword ptr \(memory.text)") {
                        $0.packedLogic(op, precision, register, memory.memory)
                    }
                }
                let register = XMM.allCases[15 - i]
                add("ucomis\(suffix) \(n(register)), \(size)\(memory.text)") { $0.ucomis(precision, register, memory.memory) }
                add("comis\(suffix) \(n(register)), \(size)\(memory.text)") { $0.comis(precision, register, memory.memory) }
            }
        }
        for destination in XMM.allCases {
            for source in XMM.allCases {
                add("pxor \(n(destination)), \(n(source))") { $0.pxor(destination, source) }
            }
        }
    }

    func addSSEConversions() {
        for precision in Precision.allCases {
            let suffix = precision == .single ? "ss" : "sd"
            for width in [Width.b32, .b64] {
                for register in XMM.allCases {
                    for integer in GPR.allCases {
                        add("cvtsi2\(suffix) \(n(register)), \(n(integer, width))") {
                            $0.cvtsi2s(precision, register, width, integer)
                        }
                        add("cvtt\(suffix)2si \(n(integer, width)), \(n(register))") {
                            $0.cvtts2si(precision, width, integer, register)
                        }
                    }
                }
                for (i, memory) in Memories.few.enumerated() {
                    let register = XMM.allCases[i]
                    let integer = cycled(i + 5)
                    add("cvtsi2\(suffix) \(n(register)), \(Intel.size(width))\(memory.text)") {
                        $0.cvtsi2s(precision, register, width, memory.memory)
                    }
                    add("cvtt\(suffix)2si \(n(integer, width)), \(Intel.size(precision))\(memory.text)") {
                        $0.cvtts2si(precision, width, integer, memory.memory)
                    }
                }
            }
        }
        for destination in XMM.allCases {
            for source in XMM.allCases {
                add("cvtss2sd \(n(destination)), \(n(source))") { $0.cvtss2sd(destination, source) }
                add("cvtsd2ss \(n(destination)), \(n(source))") { $0.cvtsd2ss(destination, source) }
            }
        }
        for (i, memory) in Memories.few.enumerated() {
            add("cvtss2sd \(n(XMM.allCases[i])), dword ptr \(memory.text)") { $0.cvtss2sd(XMM.allCases[i], memory.memory) }
            add("cvtsd2ss \(n(XMM.allCases[i])), qword ptr \(memory.text)") { $0.cvtsd2ss(XMM.allCases[i], memory.memory) }
        }
    }
}
