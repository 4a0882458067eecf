// Helpers shared by the loader tests: hand-assembled code objects with their
// relocation records, C function types to call them, and a thread runner.
//
// `assemble` is the one place that turns emitted instructions into a
// `CodeObject`; the `Relocations` recorder reads the encoder's patch sites so
// a test never counts bytes by hand.

import KilnCode
import KilnLoader
import KilnX64
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Collects relocation records while a code object is assembled.
struct Relocations {
    var records: [Relocation] = []

    /// A pc32 record for the rip-relative operand of the instruction just emitted.
    mutating func ripRelative(_ buffer: borrowing CodeBuffer, to target: RelocationTarget, addend: Int64 = 0) {
        let site = buffer.lastRIPRelativeSite!
        records.append(Relocation(
            offset: UInt32(site.offset), kind: .pcRelative32, target: target,
            addend: addend + Int64(site.offset - site.instructionEnd)))
    }

    /// A record for the 32-bit immediate that ends the instruction just emitted.
    mutating func trailing32(_ buffer: borrowing CodeBuffer, _ kind: RelocationKind, to target: RelocationTarget,
                             addend: Int64 = 0) {
        records.append(Relocation(offset: UInt32(buffer.count - 4), kind: kind, target: target, addend: addend))
    }
}

/// A code object made of the instructions `body` emits: the one `check` of this layer.
func assemble(_ name: String, exported: Bool = true,
              _ body: (inout CodeBuffer, inout Relocations) -> Void) -> CodeObject {
    var buffer = CodeBuffer()
    var relocations = Relocations()
    body(&buffer, &relocations)
    return CodeObject(name: name, isExported: exported, code: buffer.bytes, relocations: relocations.records)
}

/// Emits `call [rip + slot(symbol)]` with its record; rsp must be 16-byte aligned.
func callThroughSlot(_ symbol: String, _ buffer: inout CodeBuffer, _ relocations: inout Relocations) {
    buffer.call(Memory.rip(0))
    relocations.ripRelative(buffer, to: .callSlot(symbol))
}

/// Emits Kiln's thread-data access: `mov edi, off32(thread data + addend); call [rip + slot]`.
func threadAddress(_ index: Int, addend: Int64 = 0, _ buffer: inout CodeBuffer, _ relocations: inout Relocations) {
    buffer.mov(.b32, .rdi, imm: 0)
    relocations.trailing32(buffer, .offset32, to: .threadLocal(index), addend: addend)
    callThroughSlot("kiln.tls.address", &buffer, &relocations)
}

/// Little-endian bytes of a 64-bit value.
func bytes(_ value: Int64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * Int64($0))) }
}

typealias NoArguments = @convention(c) () -> Int64
typealias OneArgument = @convention(c) (Int64) -> Int64
typealias StringArgument = @convention(c) (UnsafePointer<CChar>) -> Int64

func function<F>(_ address: UnsafeRawPointer, as type: F.Type) -> F {
    unsafeBitCast(address, to: type)
}

/// Runs `body` on a new POSIX thread and waits for it.
func onNewThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    let status = pthread_create(&thread, nil, { raw in
        // Started from a test's thread, which blocks every signal: let the runtime stop it.
        World.acceptStops()
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, context)
    precondition(status == 0, "pthread_create failed")
    return thread
}

func join(_ thread: pthread_t) {
    pthread_join(thread, nil)
}

/// A counter threads wait on: `arrive` bumps it, `wait(for:)` spins until it reaches n.
final class Rendezvous: Sendable {
    private let count = Atomic<Int>(0)

    func arrive() { count.add(1, ordering: .sequentiallyConsistent) }

    func wait(for target: Int) {
        while count.load(ordering: .sequentiallyConsistent) < target { sched_yield() }
    }
}

/// Writes `text` to a fresh file under /tmp and returns its path.
func temporaryFile(_ name: String, _ text: String) -> String {
    let path = "/tmp/kiln-loader-test-\(getpid())-\(name)"
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
    return path
}

extension Crate {
    /// The stable address (stub) of function `index`, for calling it from a test.
    func address(ofFunction index: Int) -> UnsafeRawPointer {
        try! stub(ofFunction: index)
    }

    /// The same, as an integer.
    func stubAddress(_ index: Int) -> UInt {
        UInt(bitPattern: address(ofFunction: index))
    }
}
