// Helpers shared by the encoder tests: encode a snippet into a fresh buffer,
// render bytes as hex, and the test's own tables of Intel names.
//
// The tests name registers from their own tables, keyed by the Swift case
// name (`String(describing: GPR.r12)` is "r12"), never from the encoder's raw
// values or `GPR.name(_:)`: if the encoder mapped a register to the wrong
// number, the names the tests expect would stay right and the disassembler
// would disagree.

import KilnX64

/// The bytes `body` emits into a fresh buffer: the one `check` of this layer.
func encoded(_ body: (inout CodeBuffer) -> Void) -> [UInt8] {
    var buffer = CodeBuffer()
    body(&buffer)
    return buffer.bytes
}

/// `48 01 c8`.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined(separator: " ")
}

/// Intel names, independent of the encoder.
enum Intel {
    private static let narrowNames: [String: (String, String, String)] = [
        "rax": ("eax", "ax", "al"), "rcx": ("ecx", "cx", "cl"), "rdx": ("edx", "dx", "dl"),
        "rbx": ("ebx", "bx", "bl"), "rsp": ("esp", "sp", "spl"), "rbp": ("ebp", "bp", "bpl"),
        "rsi": ("esi", "si", "sil"), "rdi": ("edi", "di", "dil"),
    ]

    /// The name of `register` at `width`: `rax`, `eax`, `ax`, `al`, `r8d`, `r8w`, `r8b`.
    static func name(_ register: GPR, _ width: Width) -> String {
        let full = String(describing: register)
        if let narrow = narrowNames[full] {
            switch width {
            case .b64: return full
            case .b32: return narrow.0
            case .b16: return narrow.1
            case .b8: return narrow.2
            }
        }
        switch width {
        case .b64: return full
        case .b32: return full + "d"
        case .b16: return full + "w"
        case .b8: return full + "b"
        }
    }

    /// `xmm0` to `xmm15`.
    static func name(_ register: XMM) -> String {
        String(describing: register)
    }

    /// The size keyword of a memory operand of `width`, with a trailing space.
    static func size(_ width: Width) -> String {
        switch width {
        case .b8: return "byte ptr "
        case .b16: return "word ptr "
        case .b32: return "dword ptr "
        case .b64: return "qword ptr "
        }
    }

    /// The size keyword of a float operand of `precision`.
    static func size(_ precision: Precision) -> String {
        precision == .single ? "dword ptr " : "qword ptr "
    }
}

/// A memory operand together with the Intel text that names it.
struct MemoryCase {
    let memory: Memory
    let text: String

    /// `[base + index * scale + displacement]`, any part optional; with neither
    /// base nor index, an absolute address.
    init(base: GPR?, index: IndexRegister? = nil, scale: Scale = .x1, displacement: Int32 = 0) {
        var parts: [String] = []
        if let base { parts.append(String(describing: base)) }
        if let index { parts.append("\(index)*\(scale.factor)") }
        var text = parts.joined(separator: "+")
        if displacement != 0 || parts.isEmpty {
            text += displacement < 0 || parts.isEmpty ? "\(displacement)" : "+\(displacement)"
        }
        self.text = "[" + text + "]"
        switch (base, index) {
        case (let base?, let index?):
            memory = Memory(base: base, index: index, scale: scale, displacement: displacement)
        case (let base?, nil):
            memory = Memory(base: base, displacement: displacement)
        case (nil, let index?):
            memory = Memory(index: index, scale: scale, displacement: displacement)
        case (nil, nil):
            memory = .absolute(displacement)
        }
    }

    /// `[rip + displacement]`.
    init(rip displacement: Int32) {
        memory = .rip(displacement)
        text = displacement < 0 ? "[rip\(displacement)]" : "[rip+\(displacement)]"
    }
}
