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
// Offsets are reused: when no code that uses a thread datum is left (its
// version was collected, its crate unloaded, its loader freed), its range goes
// back to the layout, and a later registration may take it (the C shim then
// refreshes the bytes in threads that already hold them). A pointer to thread
// data is valid while code of the version that defined it is alive.

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

    /// Gives a range back for reuse.
    static func unregister(offset: Int, size: Int) {
        kiln_tls_unregister(Int64(offset), size)
    }

    /// The size of the layout: the sum of all registered objects and their padding.
    public static var layoutSize: Int { kiln_tls_layout_size() }

    /// Bytes of the layout given back and not yet reused.
    public static var freeBytes: Int { kiln_tls_free_bytes() }

    /// The calling thread's address of byte `offset` of the layout.
    public static func address(ofOffset offset: Int) -> UnsafeMutableRawPointer {
        kiln_tls_address(Int32(offset))!
    }

    /// The address of the function behind `kiln.tls.address`.
    static var entryAddress: UInt { UInt(bitPattern: kiln_tls_address_entry()) }
}
