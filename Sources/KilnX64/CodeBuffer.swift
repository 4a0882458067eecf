// The growable byte buffer that every emitter writes into.
//
// The compiler emits millions of bytes per second, so the append path is a
// raw-pointer store guarded by one capacity check, and it is `@inlinable` so
// that code in other modules (the code generator, the code heap) does not pay
// a call per byte. Growth is out of line and doubles the capacity.
//
// Ownership: a `CodeBuffer` is `~Copyable`. It owns one heap allocation made
// with `UnsafeMutableRawPointer.allocate`, freed in `deinit`; moving the buffer
// moves that ownership. Bytes are plain data and nothing points into them, so
// growth may move them freely. Offsets (`count`, label offsets, `PatchSite`s)
// are stable; pointers handed out by `withUnsafeBytes` are valid only inside
// the closure.
//
// Labels and their pending fixups live here too (see Labels.swift), because
// binding a label patches bytes already written.

/// A growable buffer of x86-64 machine code, with labels.
///
/// Emitters are `mutating` methods grouped by instruction family in the other
/// files of this module (`alu`, `mov`, `jmp`, `scalar`, ...). Operands are in
/// Intel order: destination first.
public struct CodeBuffer: ~Copyable {
    @usableFromInline var storage: UnsafeMutableRawPointer
    @usableFromInline var capacity: Int
    @usableFromInline var used: Int

    @usableFromInline var labels = LabelTable()

    /// The 32-bit displacement field written by the most recent instruction
    /// with a RIP-relative memory operand.
    ///
    /// Read it right after emitting such an instruction to make a relocation:
    /// the field holds `target - instructionEnd`. Stale once another
    /// RIP-relative instruction is emitted.
    public internal(set) var lastRIPRelativeSite: PatchSite?

    /// An empty buffer with room for `capacity` bytes before it first grows.
    public init(capacity: Int = 1024) {
        let capacity = max(capacity, 16)
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        self.capacity = capacity
        used = 0
    }

    deinit {
        storage.deallocate()
    }

    /// The number of bytes emitted so far: also the offset of the next byte.
    @inlinable public var count: Int { used }

    /// Whether nothing has been emitted yet.
    @inlinable public var isEmpty: Bool { used == 0 }

    /// A copy of the emitted bytes.
    public var bytes: [UInt8] {
        // Safe: the first `used` bytes of storage are initialized.
        Array(UnsafeRawBufferPointer(start: storage, count: used))
    }

    /// Calls `body` with the emitted bytes; the pointer is valid only inside `body`.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: storage, count: used))
    }

    /// The byte at `offset`, which must be below `count`.
    public subscript(offset: Int) -> UInt8 {
        precondition(offset >= 0 && offset < used, "CodeBuffer offset \(offset) out of range 0..<\(used)")
        return storage.load(fromByteOffset: offset, as: UInt8.self)
    }

    /// Forgets all bytes and labels but keeps the allocation, to encode the next function.
    ///
    /// Labels made before the reset must not be used afterwards.
    public mutating func removeAll() {
        used = 0
        labels = LabelTable()
        lastRIPRelativeSite = nil
    }

    // MARK: Appending

    /// Makes room for at least `extra` more bytes without further growth.
    @inlinable public mutating func reserve(_ extra: Int) {
        if capacity &- used < extra { grow(minimumExtra: extra) }
    }

    @usableFromInline @inline(never)
    mutating func grow(minimumExtra: Int) {
        var newCapacity = capacity * 2
        while newCapacity - used < minimumExtra { newCapacity *= 2 }
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newStorage.copyMemory(from: storage, byteCount: used)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
    }

    /// Appends one byte.
    @inlinable public mutating func emit(_ byte: UInt8) {
        if used == capacity { grow(minimumExtra: 1) }
        // Safe: the check above leaves room for one byte at `used`.
        storage.storeBytes(of: byte, toByteOffset: used, as: UInt8.self)
        used &+= 1
    }

    /// Appends a 16-bit value, little-endian.
    @inlinable public mutating func emit16(_ value: UInt16) {
        if capacity &- used < 2 { grow(minimumExtra: 2) }
        // Safe: room was made above; storeBytes allows unaligned stores.
        storage.storeBytes(of: value.littleEndian, toByteOffset: used, as: UInt16.self)
        used &+= 2
    }

    /// Appends a 32-bit value, little-endian.
    @inlinable public mutating func emit32(_ value: UInt32) {
        if capacity &- used < 4 { grow(minimumExtra: 4) }
        // Safe: room was made above; storeBytes allows unaligned stores.
        storage.storeBytes(of: value.littleEndian, toByteOffset: used, as: UInt32.self)
        used &+= 4
    }

    /// Appends a 64-bit value, little-endian.
    @inlinable public mutating func emit64(_ value: UInt64) {
        if capacity &- used < 8 { grow(minimumExtra: 8) }
        // Safe: room was made above; storeBytes allows unaligned stores.
        storage.storeBytes(of: value.littleEndian, toByteOffset: used, as: UInt64.self)
        used &+= 8
    }

    /// Appends raw bytes (data, or an instruction the encoder does not know).
    public mutating func emit(_ bytes: some Collection<UInt8>) {
        reserve(bytes.count)
        for byte in bytes { emit(byte) }
    }

    // MARK: Patching

    /// Overwrites the byte at `offset`, which must already have been emitted.
    public mutating func patch8(at offset: Int, _ value: UInt8) {
        checkPatch(offset, 1)
        storage.storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }

    /// Overwrites the 32-bit little-endian field at `offset`.
    public mutating func patch32(at offset: Int, _ value: UInt32) {
        checkPatch(offset, 4)
        storage.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Overwrites the 64-bit little-endian field at `offset`.
    public mutating func patch64(at offset: Int, _ value: UInt64) {
        checkPatch(offset, 8)
        storage.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Reads the 32-bit little-endian field at `offset`.
    public func read32(at offset: Int) -> UInt32 {
        checkPatch(offset, 4)
        return UInt32(littleEndian: storage.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Reads the 64-bit little-endian field at `offset`.
    public func read64(at offset: Int) -> UInt64 {
        checkPatch(offset, 8)
        return UInt64(littleEndian: storage.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    private func checkPatch(_ offset: Int, _ size: Int) {
        precondition(
            offset >= 0 && offset + size <= used,
            "CodeBuffer field \(offset)..<\(offset + size) is outside the \(used) emitted bytes")
    }
}
