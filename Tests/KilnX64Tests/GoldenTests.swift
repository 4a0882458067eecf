// Golden rows in the Cranelift manner: an instruction, the bytes it must
// encode to (worked out by hand from the Intel manual), and its Intel text.
// `everyRowEncodesToItsBytes` checks the bytes; the oracle test also feeds every row to
// objdump and llvm-mc, which checks the text.
//
// The rows pick one representative of each form and the special cases a
// reader would look for first: REX bits, byte registers needing an empty
// REX, SIB for rsp/r12, disp8 0 for rbp/r13, imm8 against imm32.

import KilnX64
import Testing

@Suite struct GoldenTests {
    @Test func everyRowEncodesToItsBytes() {
        for row in goldenRows {
            let bytes = encoded(row.emit)
            #expect(bytes == row.bytes, "\(row.text): got \(hex(bytes)), expected \(hex(row.bytes))")
        }
    }
}

/// One golden encoding.
struct GoldenRow: Sendable {
    let text: String
    let bytes: [UInt8]
    /// Significant bits of the immediate, for comparing disassembler text.
    let bits: Int
    /// For a branch row, the displacement from the end of the instruction.
    let displacement: Int64?
    let emit: @Sendable (inout CodeBuffer) -> Void

    init(
        _ text: String, _ bytes: [UInt8], bits: Int = 64, displacement: Int64? = nil,
        _ emit: @escaping @Sendable (inout CodeBuffer) -> Void
    ) {
        self.text = text
        self.bytes = bytes
        self.bits = bits
        self.displacement = displacement
        self.emit = emit
    }
}

let goldenRows: [GoldenRow] = integerRows + moveRows + controlRows + sseRows

private let integerRows: [GoldenRow] = [
    GoldenRow("add rax, rcx", [0x48, 0x01, 0xC8]) { $0.alu(.add, .b64, .rax, .rcx) },
    GoldenRow("add eax, ecx", [0x01, 0xC8]) { $0.alu(.add, .b32, .rax, .rcx) },
    GoldenRow("add ax, cx", [0x66, 0x01, 0xC8]) { $0.alu(.add, .b16, .rax, .rcx) },
    GoldenRow("add al, cl", [0x00, 0xC8]) { $0.alu(.add, .b8, .rax, .rcx) },
    GoldenRow("add spl, dil", [0x40, 0x00, 0xFC]) { $0.alu(.add, .b8, .rsp, .rdi) },
    GoldenRow("add r8, r15", [0x4D, 0x01, 0xF8]) { $0.alu(.add, .b64, .r8, .r15) },
    GoldenRow("sub r12d, dword ptr [r13]", [0x45, 0x2B, 0x65, 0x00]) {
        $0.alu(.sub, .b32, .r12, Memory(base: .r13))
    },
    GoldenRow("cmp qword ptr [rsp+8], rdi", [0x48, 0x39, 0x7C, 0x24, 0x08]) {
        $0.alu(.cmp, .b64, Memory(base: .rsp, displacement: 8), .rdi)
    },
    GoldenRow("xor r9b, byte ptr [r12]", [0x45, 0x32, 0x0C, 0x24]) {
        $0.alu(.xor, .b8, .r9, Memory(base: .r12))
    },
    GoldenRow("and rax, 127", [0x48, 0x83, 0xE0, 0x7F]) { $0.alu(.and, .b64, .rax, imm: 127) },
    GoldenRow("and rax, 128", [0x48, 0x81, 0xE0, 0x80, 0x00, 0x00, 0x00]) { $0.alu(.and, .b64, .rax, imm: 128) },
    GoldenRow("or ecx, -128", [0x83, 0xC9, 0x80], bits: 32) { $0.alu(.or, .b32, .rcx, imm: -128) },
    GoldenRow("or ecx, -129", [0x81, 0xC9, 0x7F, 0xFF, 0xFF, 0xFF], bits: 32) { $0.alu(.or, .b32, .rcx, imm: -129) },
    GoldenRow("adc dx, 1000", [0x66, 0x81, 0xD2, 0xE8, 0x03], bits: 16) { $0.alu(.adc, .b16, .rdx, imm: 1000) },
    GoldenRow("sbb bl, 255", [0x80, 0xDB, 0xFF], bits: 8) { $0.alu(.sbb, .b8, .rbx, imm: 255) },
    GoldenRow("cmp qword ptr [rbp-8], 0", [0x48, 0x83, 0x7D, 0xF8, 0x00]) {
        $0.alu(.cmp, .b64, Memory(base: .rbp, displacement: -8), imm: 0)
    },
    GoldenRow("cmp dword ptr [rip+16], 1000", [0x81, 0x3D, 0x10, 0x00, 0x00, 0x00, 0xE8, 0x03, 0x00, 0x00], bits: 32) {
        $0.alu(.cmp, .b32, .rip(16), imm: 1000)
    },
    GoldenRow("test rax, rax", [0x48, 0x85, 0xC0]) { $0.test(.b64, .rax, .rax) },
    GoldenRow("test sil, 1", [0x40, 0xF6, 0xC6, 0x01], bits: 8) { $0.test(.b8, .rsi, imm: 1) },
    GoldenRow("test edi, 65536", [0xF7, 0xC7, 0x00, 0x00, 0x01, 0x00], bits: 32) { $0.test(.b32, .rdi, imm: 65536) },
    GoldenRow("imul rax, rcx", [0x48, 0x0F, 0xAF, 0xC1]) { $0.imul(.b64, .rax, .rcx) },
    GoldenRow("imul eax, ecx, 100", [0x6B, 0xC1, 0x64], bits: 32) { $0.imul(.b32, .rax, .rcx, imm: 100) },
    GoldenRow("imul rdx, qword ptr [rsi], 1000", [0x48, 0x69, 0x16, 0xE8, 0x03, 0x00, 0x00]) {
        $0.imul(.b64, .rdx, Memory(base: .rsi), imm: 1000)
    },
    GoldenRow("idiv rcx", [0x48, 0xF7, 0xF9]) { $0.idiv(.b64, .rcx) },
    GoldenRow("div r8d", [0x41, 0xF7, 0xF0]) { $0.div(.b32, .r8) },
    GoldenRow("neg rax", [0x48, 0xF7, 0xD8]) { $0.neg(.b64, .rax) },
    GoldenRow("not r15b", [0x41, 0xF6, 0xD7]) { $0.not(.b8, .r15) },
    GoldenRow("mul qword ptr [rbx]", [0x48, 0xF7, 0x23]) { $0.unary(.mul, .b64, Memory(base: .rbx)) },
    GoldenRow("inc dword ptr [rax]", [0xFF, 0x00]) { $0.inc(.b32, Memory(base: .rax)) },
    GoldenRow("dec rcx", [0x48, 0xFF, 0xC9]) { $0.dec(.b64, .rcx) },
    GoldenRow("cqo", [0x48, 0x99]) { $0.cqo() },
    GoldenRow("cdq", [0x99]) { $0.cdq() },
    GoldenRow("shl rax, cl", [0x48, 0xD3, 0xE0]) { $0.shiftByCL(.shl, .b64, .rax) },
    GoldenRow("shr edx, 1", [0xD1, 0xEA], bits: 8) { $0.shift(.shr, .b32, .rdx, count: 1) },
    GoldenRow("sar r11, 63", [0x49, 0xC1, 0xFB, 0x3F], bits: 8) { $0.shift(.sar, .b64, .r11, count: 63) },
    GoldenRow("rol bpl, 3", [0x40, 0xC0, 0xC5, 0x03], bits: 8) { $0.shift(.rol, .b8, .rbp, count: 3) },
    GoldenRow("ror word ptr [rax], cl", [0x66, 0xD3, 0x08]) { $0.shiftByCL(.ror, .b16, Memory(base: .rax)) },
    GoldenRow("sete al", [0x0F, 0x94, 0xC0]) { $0.setcc(.e, .rax) },
    GoldenRow("setne sil", [0x40, 0x0F, 0x95, 0xC6]) { $0.setcc(.ne, .rsi) },
    GoldenRow("setb r12b", [0x41, 0x0F, 0x92, 0xC4]) { $0.setcc(.b, .r12) },
    GoldenRow("cmovg rax, rcx", [0x48, 0x0F, 0x4F, 0xC1]) { $0.cmov(.g, .b64, .rax, .rcx) },
    GoldenRow("cmovae r8d, dword ptr [rsp]", [0x44, 0x0F, 0x43, 0x04, 0x24]) {
        $0.cmov(.ae, .b32, .r8, Memory(base: .rsp))
    },
]

private let moveRows: [GoldenRow] = [
    GoldenRow("mov rax, rcx", [0x48, 0x89, 0xC8]) { $0.mov(.b64, .rax, .rcx) },
    GoldenRow("mov r15d, eax", [0x41, 0x89, 0xC7]) { $0.mov(.b32, .r15, .rax) },
    GoldenRow("mov rax, qword ptr [rbx+rcx*8+16]", [0x48, 0x8B, 0x44, 0xCB, 0x10]) {
        $0.mov(.b64, .rax, Memory(base: .rbx, index: .rcx, scale: .x8, displacement: 16))
    },
    GoldenRow("mov qword ptr [r12+r13*2-128], r14", [0x4F, 0x89, 0x74, 0x6C, 0x80]) {
        $0.mov(.b64, Memory(base: .r12, index: .r13, scale: .x2, displacement: -128), .r14)
    },
    GoldenRow("mov eax, dword ptr [rbp+128]", [0x8B, 0x85, 0x80, 0x00, 0x00, 0x00]) {
        $0.mov(.b32, .rax, Memory(base: .rbp, displacement: 128))
    },
    GoldenRow("mov ecx, dword ptr [rcx*4+0]", [0x8B, 0x0C, 0x8D, 0x00, 0x00, 0x00, 0x00]) {
        $0.mov(.b32, .rcx, Memory(index: .rcx, scale: .x4))
    },
    GoldenRow("mov rdx, qword ptr [4096]", [0x48, 0x8B, 0x14, 0x25, 0x00, 0x10, 0x00, 0x00]) {
        $0.mov(.b64, .rdx, .absolute(4096))
    },
    GoldenRow("mov rax, qword ptr [rip-7]", [0x48, 0x8B, 0x05, 0xF9, 0xFF, 0xFF, 0xFF]) {
        $0.mov(.b64, .rax, .rip(-7))
    },
    GoldenRow("mov byte ptr [rax], dil", [0x40, 0x88, 0x38]) { $0.mov(.b8, Memory(base: .rax), .rdi) },
    GoldenRow("mov word ptr [rax], 65535", [0x66, 0xC7, 0x00, 0xFF, 0xFF], bits: 16) {
        $0.mov(.b16, Memory(base: .rax), imm: 65535)
    },
    GoldenRow("mov qword ptr [rsp], -1", [0x48, 0xC7, 0x04, 0x24, 0xFF, 0xFF, 0xFF, 0xFF]) {
        $0.mov(.b64, Memory(base: .rsp), imm: -1)
    },
    GoldenRow("mov eax, 4294967295", [0xB8, 0xFF, 0xFF, 0xFF, 0xFF], bits: 32) { $0.mov(.b64, .rax, imm: 0xFFFF_FFFF) },
    GoldenRow("mov r10, -1", [0x49, 0xC7, 0xC2, 0xFF, 0xFF, 0xFF, 0xFF]) { $0.mov(.b64, .r10, imm: -1) },
    GoldenRow("movabs r11, 81985529216486895", [0x49, 0xBB, 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01]) {
        $0.mov(.b64, .r11, imm: 0x0123_4567_89AB_CDEF)
    },
    GoldenRow("mov r8w, 4660", [0x66, 0x41, 0xB8, 0x34, 0x12], bits: 16) { $0.mov(.b16, .r8, imm: 0x1234) },
    GoldenRow("mov sil, 200", [0x40, 0xB6, 0xC8], bits: 8) { $0.mov(.b8, .rsi, imm: 200) },
    GoldenRow("movzx eax, cl", [0x0F, 0xB6, 0xC1]) { $0.movzx(.b32, .rax, .b8, .rcx) },
    GoldenRow("movzx eax, sil", [0x40, 0x0F, 0xB6, 0xC6]) { $0.movzx(.b32, .rax, .b8, .rsi) },
    GoldenRow("movzx r9, word ptr [rdx]", [0x4C, 0x0F, 0xB7, 0x0A]) { $0.movzx(.b64, .r9, .b16, Memory(base: .rdx)) },
    GoldenRow("movsx rax, bl", [0x48, 0x0F, 0xBE, 0xC3]) { $0.movsx(.b64, .rax, .b8, .rbx) },
    GoldenRow("movsxd rax, r9d", [0x49, 0x63, 0xC1]) { $0.movsx(.b64, .rax, .b32, .r9) },
    GoldenRow("mov ecx, edx", [0x89, 0xD1]) { $0.movzx(.b64, .rcx, .b32, .rdx) },
    GoldenRow("lea rax, [rax+rax*2]", [0x48, 0x8D, 0x04, 0x40]) {
        $0.lea(.b64, .rax, Memory(base: .rax, index: .rax, scale: .x2))
    },
    GoldenRow("lea r13, [r13+0]", [0x4D, 0x8D, 0x6D, 0x00]) { $0.lea(.b64, .r13, Memory(base: .r13)) },
    GoldenRow("lea rsp, [rsp+8]", [0x48, 0x8D, 0x64, 0x24, 0x08]) {
        $0.lea(.b64, .rsp, Memory(base: .rsp, displacement: 8))
    },
]

private let controlRows: [GoldenRow] = [
    GoldenRow("jmp @target", [0xEB, 0xFE], displacement: -2) { $0.jmp(rel8: -2) },
    GoldenRow("jne @target", [0x0F, 0x85, 0x00, 0x01, 0x00, 0x00], displacement: 256) { $0.jcc(.ne, rel32: 256) },
    GoldenRow("jl @target", [0x7C, 0x10], displacement: 16) { $0.jcc(.l, rel8: 16) },
    GoldenRow("call @target", [0xE8, 0x00, 0x00, 0x00, 0x00], displacement: 0) { $0.call(rel32: 0) },
    GoldenRow("jmp rax", [0xFF, 0xE0]) { $0.jmp(.rax) },
    GoldenRow("call r11", [0x41, 0xFF, 0xD3]) { $0.call(.r11) },
    GoldenRow("jmp qword ptr [rip+0]", [0xFF, 0x25, 0x00, 0x00, 0x00, 0x00]) { $0.jmp(.rip(0)) },
    GoldenRow("call qword ptr [rax+8]", [0xFF, 0x50, 0x08]) { $0.call(Memory(base: .rax, displacement: 8)) },
    GoldenRow("ret", [0xC3]) { $0.ret() },
    GoldenRow("push rbp", [0x55]) { $0.push(.rbp) },
    GoldenRow("push r12", [0x41, 0x54]) { $0.push(.r12) },
    GoldenRow("pop r15", [0x41, 0x5F]) { $0.pop(.r15) },
    GoldenRow("push -1", [0x6A, 0xFF]) { $0.push(imm: -1) },
    GoldenRow("ud2", [0x0F, 0x0B]) { $0.ud2() },
    GoldenRow("endbr64", [0xF3, 0x0F, 0x1E, 0xFA]) { $0.endbr64() },
    GoldenRow("int3", [0xCC]) { $0.int3() },
    GoldenRow("nop", [0x90]) { $0.nop(length: 1) },
    GoldenRow("nop dword ptr [rax+rax*1+0]", [0x0F, 0x1F, 0x44, 0x00, 0x00]) { $0.nop(length: 5) },
]

private let sseRows: [GoldenRow] = [
    GoldenRow("movss xmm0, dword ptr [rax]", [0xF3, 0x0F, 0x10, 0x00]) { $0.movss(.xmm0, Memory(base: .rax)) },
    GoldenRow("movsd xmm8, xmm1", [0xF2, 0x44, 0x0F, 0x10, 0xC1]) { $0.movsd(.xmm8, .xmm1) },
    GoldenRow("movsd qword ptr [rsp+16], xmm15", [0xF2, 0x44, 0x0F, 0x11, 0x7C, 0x24, 0x10]) {
        $0.movsd(Memory(base: .rsp, displacement: 16), .xmm15)
    },
    GoldenRow("movaps xmm1, xmm9", [0x41, 0x0F, 0x28, 0xC9]) { $0.movaps(.xmm1, .xmm9) },
    GoldenRow("movapd xmm0, xmm1", [0x66, 0x0F, 0x28, 0xC1]) { $0.movapd(.xmm0, .xmm1) },
    GoldenRow("movd xmm0, eax", [0x66, 0x0F, 0x6E, 0xC0]) { $0.movd(.xmm0, .rax) },
    GoldenRow("movq rax, xmm0", [0x66, 0x48, 0x0F, 0x7E, 0xC0]) { $0.movq(.rax, .xmm0) },
    GoldenRow("movq xmm9, r10", [0x66, 0x4D, 0x0F, 0x6E, 0xCA]) { $0.movq(.xmm9, .r10) },
    GoldenRow("addsd xmm0, xmm1", [0xF2, 0x0F, 0x58, 0xC1]) { $0.scalar(.add, .double, .xmm0, .xmm1) },
    GoldenRow("mulss xmm2, dword ptr [rip+0]", [0xF3, 0x0F, 0x59, 0x15, 0x00, 0x00, 0x00, 0x00]) {
        $0.scalar(.mul, .single, .xmm2, .rip(0))
    },
    GoldenRow("sqrtsd xmm1, xmm1", [0xF2, 0x0F, 0x51, 0xC9]) { $0.scalar(.sqrt, .double, .xmm1, .xmm1) },
    GoldenRow("divsd xmm14, xmm13", [0xF2, 0x45, 0x0F, 0x5E, 0xF5]) { $0.scalar(.div, .double, .xmm14, .xmm13) },
    GoldenRow("minss xmm0, xmm1", [0xF3, 0x0F, 0x5D, 0xC1]) { $0.scalar(.min, .single, .xmm0, .xmm1) },
    GoldenRow("maxsd xmm0, xmm1", [0xF2, 0x0F, 0x5F, 0xC1]) { $0.scalar(.max, .double, .xmm0, .xmm1) },
    GoldenRow("subss xmm3, xmm4", [0xF3, 0x0F, 0x5C, 0xDC]) { $0.scalar(.sub, .single, .xmm3, .xmm4) },
    GoldenRow("xorps xmm0, xmm0", [0x0F, 0x57, 0xC0]) { $0.packedLogic(.xor, .single, .xmm0, .xmm0) },
    GoldenRow("andpd xmm1, xmmword ptr [rip+0]", [0x66, 0x0F, 0x54, 0x0D, 0x00, 0x00, 0x00, 0x00]) {
        $0.packedLogic(.and, .double, .xmm1, .rip(0))
    },
    GoldenRow("orps xmm0, xmm1", [0x0F, 0x56, 0xC1]) { $0.packedLogic(.or, .single, .xmm0, .xmm1) },
    GoldenRow("pxor xmm0, xmm0", [0x66, 0x0F, 0xEF, 0xC0]) { $0.pxor(.xmm0, .xmm0) },
    GoldenRow("ucomisd xmm0, xmm1", [0x66, 0x0F, 0x2E, 0xC1]) { $0.ucomis(.double, .xmm0, .xmm1) },
    GoldenRow("comiss xmm0, dword ptr [rax]", [0x0F, 0x2F, 0x00]) { $0.comis(.single, .xmm0, Memory(base: .rax)) },
    GoldenRow("cvtsi2sd xmm0, rax", [0xF2, 0x48, 0x0F, 0x2A, 0xC0]) { $0.cvtsi2s(.double, .xmm0, .b64, .rax) },
    GoldenRow("cvtsi2ss xmm1, ecx", [0xF3, 0x0F, 0x2A, 0xC9]) { $0.cvtsi2s(.single, .xmm1, .b32, .rcx) },
    GoldenRow("cvttsd2si rax, xmm0", [0xF2, 0x48, 0x0F, 0x2C, 0xC0]) { $0.cvtts2si(.double, .b64, .rax, .xmm0) },
    GoldenRow("cvttss2si r8d, xmm9", [0xF3, 0x45, 0x0F, 0x2C, 0xC1]) { $0.cvtts2si(.single, .b32, .r8, .xmm9) },
    GoldenRow("cvtss2sd xmm0, xmm1", [0xF3, 0x0F, 0x5A, 0xC1]) { $0.cvtss2sd(.xmm0, .xmm1) },
    GoldenRow("cvtsd2ss xmm0, qword ptr [rax]", [0xF2, 0x0F, 0x5A, 0x00]) { $0.cvtsd2ss(.xmm0, Memory(base: .rax)) },
]
