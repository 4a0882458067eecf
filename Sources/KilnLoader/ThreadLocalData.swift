// Thread-local data: Kiln's own scheme, since QBE's local-exec TLS only works
// in a main executable.
//
// Contract with the code generator. For `thread $x + k` generated code does
//
//     mov edi, <off32 relocation to .threadLocal(i), addend k>
//     call [rip + <pc32 relocation to .slot("kiln.tls.address"), addend -4>]
//
// and finds the address of `$x + k` for the calling thread in rax. The call is
// an ordinary SysV call: caller-saved registers are clobbered, rsp must be
// 16-byte aligned at the call. The loader gives each thread-local data object
// an offset in one process-wide layout (the off32 value) and registers its
// initial bytes, with its relocations applied, as a template; the C shim keeps
// the layout and each thread's block (see CKilnShim.h).
//
// Offsets are never reused: unloading a module leaves its part of the layout
// in place (a few bytes per thread variable).

import CKilnShim

/// The process-wide layout of thread-local data.
public enum ThreadLocalData {
    /// The external symbol generated code calls to find thread data.
    public static let addressSymbol = "kiln.tls.address"

    /// Appends an object's initial bytes to the layout; returns its offset, or nil when full.
    static func register(_ bytes: [UInt8], alignment: Int) -> Int? {
        let offset = bytes.withUnsafeBytes { kiln_tls_register($0.baseAddress, $0.count, alignment) }
        return offset < 0 ? nil : Int(offset)
    }

    /// The size of the layout: the sum of all registered objects and their padding.
    public static var layoutSize: Int { kiln_tls_layout_size() }

    /// The calling thread's address of byte `offset` of the layout.
    public static func address(ofOffset offset: Int) -> UnsafeMutableRawPointer {
        kiln_tls_address(Int32(offset))!
    }

    /// The address of the function behind `kiln.tls.address`.
    static var entryAddress: UInt { UInt(bitPattern: kiln_tls_address_entry()) }
}
