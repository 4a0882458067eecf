// A thread's Swift interface to the heap: allocation, object access, handles.
//
// `Mutator` owns one allocation record and is used on one thread. Its
// allocation fast path is the same bump the code generator inlines (see
// AllocationRecord.swift), compiled into the caller; everything else goes
// through the heap. Object access comes in two forms: checked (the
// reference must lead to an object of the right kind, the index must be in
// bounds; a violation is a `HeapError`, never a crash) and `unsafe` (the
// caller guarantees all that; one load or store, as generated code does).
//
// Values held in Swift variables are not roots: across an allocation or a
// collection keep references in handles (`withHandleScope`) and read them
// back afterwards.

/// A thread's allocation record with the Swift API around it; see the file comment. Owns the
/// record and detaches it when it ends; keeps its heap alive. Use on one thread only.
public struct Mutator: ~Copyable {
    /// The heap it allocates in.
    public let heap: ManagedHeap
    /// The allocation record, for generated code and the C entries. The heap frees it when the
    /// mutator ends.
    public let record: UnsafeMutablePointer<AllocationRecord>

    /// Attaches a new record to `heap` for the calling thread.
    public init(heap: ManagedHeap) throws(HeapError) {
        self.heap = heap
        record = try heap.attach()
    }

    deinit {
        try? heap.detach(record)
    }

    // MARK: Allocation

    /// A new tagged object of `fields` fields, all the integer 0 (`rnew`). May collect.
    @inlinable @inline(__always)
    public func allocate(fields: Int) throws(HeapError) -> Value {
        if UInt(bitPattern: fields) < 1 << 20 {
            let cursor = record.pointee.cursor
            let end = cursor &+ UInt(8 &+ fields &<< 3)
            if end <= record.pointee.limit {
                record.pointee.cursor = end
                UnsafeMutablePointer<UInt64>(bitPattern: cursor).unsafelyUnwrapped.pointee = UInt64(fields)
                return Value(unsafeObjectAt: cursor)
            }
        }
        return try allocateSlow(count: fields, raw: false)
    }

    /// A new raw object of `bytes` bytes, all zero (`rnewb`). May collect.
    @inlinable @inline(__always)
    public func allocate(bytes: Int) throws(HeapError) -> Value {
        if UInt(bitPattern: bytes) < 1 << 20 {
            let cursor = record.pointee.cursor
            let end = cursor &+ UInt(8 &+ (bytes &+ 7) & ~7)
            if end <= record.pointee.limit {
                record.pointee.cursor = end
                UnsafeMutablePointer<UInt64>(bitPattern: cursor).unsafelyUnwrapped.pointee = ObjectHeader.rawBit | UInt64(bytes)
                return Value(unsafeObjectAt: cursor)
            }
        }
        return try allocateSlow(count: bytes, raw: true)
    }

    @usableFromInline
    func allocateSlow(count: Int, raw: Bool) throws(HeapError) -> Value {
        guard count >= 0 && count <= ObjectHeader.maximumCount else {
            var failure = HeapError(.objectTooLarge)
            failure.requested = UInt64(bitPattern: Int64(count))
            throw failure
        }
        return try heap.allocateSlow(record, header: raw ? .raw(bytes: count) : .tagged(fields: count)).get()
    }

    /// A new closure of `fields` fields (at least 1): field 0 holds `code`, an untagged code
    /// address the collector reports to the world (ObjectHeader.swift); the others are 0.
    public func allocateClosure(fields: Int, code: UInt64) throws(HeapError) -> Value {
        guard fields >= 1 && fields <= ObjectHeader.maximumCount else {
            var failure = HeapError(.objectTooLarge)
            failure.requested = UInt64(bitPattern: Int64(fields))
            throw failure
        }
        let object = try heap.allocateSlow(record, header: .closure(fields: fields)).get()
        UnsafeMutablePointer<UInt64>(bitPattern: object.unsafeObjectAddress + 8)!.pointee = code
        return object
    }

    // MARK: Checked access

    /// The number of fields, or of bytes for a raw object (`rlen`).
    public func count(of object: Value) throws(HeapError) -> Int {
        ObjectHeader(bits: try heap.checkedAccess(object, index: 0, .length).load(as: UInt64.self)).count
    }

    /// Whether `object` is a raw object (bytes).
    public func isRaw(_ object: Value) throws(HeapError) -> Bool {
        ObjectHeader(bits: try heap.checkedAccess(object, index: 0, .length).load(as: UInt64.self)).isRaw
    }

    /// Field `index` of a tagged object (`rload`).
    public func field(_ index: Int, of object: Value) throws(HeapError) -> Value {
        Value(bits: try heap.checkedAccess(object, index: index, .field).load(as: UInt64.self))
    }

    /// Stores `value` in field `index` of a tagged object (`rstore`).
    public func setField(_ index: Int, of object: Value, to value: Value) throws(HeapError) {
        try heap.checkedAccess(object, index: index, .field).storeBytes(of: value.bits, as: UInt64.self)
    }

    /// Byte `index` of a raw object (`rloadb`).
    public func byte(_ index: Int, of object: Value) throws(HeapError) -> UInt8 {
        try heap.checkedAccess(object, index: index, .byte).load(as: UInt8.self)
    }

    /// Stores `byte` at `index` of a raw object (`rstoreb`).
    public func setByte(_ index: Int, of object: Value, to byte: UInt8) throws(HeapError) {
        try heap.checkedAccess(object, index: index, .byte).storeBytes(of: byte, as: UInt8.self)
    }

    /// The bytes of a raw object, copied out.
    public func bytes(of object: Value) throws(HeapError) -> [UInt8] {
        let count = try count(of: object)
        guard try isRaw(object) else {
            var failure = HeapError(.wrongKind)
            failure.value = object.bits
            failure.header = UInt64(count)
            throw failure
        }
        let start = UnsafeRawPointer(bitPattern: object.unsafeObjectAddress + 8)!
        return Array(UnsafeRawBufferPointer(start: start, count: count))
    }

    // MARK: Unchecked access

    /// Field `index` of `object`, unchecked: the caller guarantees a tagged object with more
    /// than `index` fields.
    @inlinable @inline(__always)
    public func unsafeField(_ index: Int, of object: Value) -> Value {
        Value(bits: UnsafeMutablePointer<UInt64>(bitPattern: UInt(bitPattern: Int(bitPattern: object.unsafeObjectAddress) &+ 8 &+ index &<< 3)).unsafelyUnwrapped.pointee)
    }

    /// Stores into field `index` of `object`, unchecked (as `unsafeField`).
    @inlinable @inline(__always)
    public func unsafeSetField(_ index: Int, of object: Value, to value: Value) {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(bitPattern: Int(bitPattern: object.unsafeObjectAddress) &+ 8 &+ index &<< 3)).unsafelyUnwrapped.pointee = value.bits
    }

    // MARK: Handles

    /// Runs `body` with a new handle scope; every handle made in it is popped when it returns.
    public func withHandleScope<Result>(_ body: (borrowing HandleScope) throws -> Result) throws -> Result {
        let token = try record.pointee.handles.openScope()
        defer { try? record.pointee.handles.closeScope(token) }
        return try body(HandleScope(record: record))
    }

    /// Opens a handle scope by hand; `closeHandleScope` ends it (innermost first).
    public func openHandleScope() throws(HeapError) -> HandleScopeToken {
        try record.pointee.handles.openScope()
    }

    /// Closes the innermost handle scope; `staleHandle` when `token` is not the innermost.
    public func closeHandleScope(_ token: HandleScopeToken) throws(HeapError) {
        try record.pointee.handles.closeScope(token)
    }

    /// A new handle in the innermost open scope.
    public func handle(_ value: Value) throws(HeapError) -> Handle {
        Handle(record: record, token: try record.pointee.handles.push(value))
    }

    /// Handles open on this thread (scope markers included).
    public var openHandles: Int { record.pointee.handles.top }
}
