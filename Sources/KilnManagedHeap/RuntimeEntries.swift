// The heap's C-callable entry points: for generated code (the allocation slow
// path, checked access, `$kiln.collect`) and for C hosts (handles).
//
// Every entry takes the calling thread's allocation record as its context
// (the record leads to the heap, no global state is read). A record that is
// not attached is refused. Results: a reference or an address, 0 meaning
// failure; or a status, 0 meaning success and otherwise the
// `HeapError.Kind` raw value. Whenever an entry fails, the full error is in
// the record (`AllocationRecord.error`) for the caller to turn into a message
// with the site it knows. `kiln_heap.h`, beside this file, declares them for C.
//
// Each entry exists twice: as an exported C symbol (`kiln_heap_*`,
// `kiln_handle_*`, `kiln_global_handle_*`) for hosts that link Kiln, and as a
// function pointer in `HeapEntries` for a loader that writes entry addresses
// into slots.

/// The C entries as function pointers (see the file comment and `kiln_heap.h`).
public enum HeapEntries {
    /// `uint64_t kiln_heap_allocate_slow(record, header)`: the allocation slow path. A reference,
    /// or 0 with the error in the record. May collect.
    public static let allocateSlow: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> UInt64 = kiln_heap_allocate_slow
    /// `uintptr_t kiln_heap_checked_access(record, object, index, access)`: the address of the
    /// field (access 0), byte (1) or header (2), or 0 with the error in the record.
    public static let checkedAccess: @convention(c) (UnsafeMutableRawPointer?, UInt64, Int64, UInt32) -> UInt = kiln_heap_checked_access
    /// `int32_t kiln_heap_collect(record, full)`: collects (fully unless `full` is 0); a status.
    public static let collect: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Int32 = kiln_heap_collect
    /// `uint64_t kiln_handle_scope_open(record)`: a scope token, or 0.
    public static let openHandleScope: @convention(c) (UnsafeMutableRawPointer?) -> UInt64 = kiln_handle_scope_open
    /// `int32_t kiln_handle_scope_close(record, scope)`: a status.
    public static let closeHandleScope: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> Int32 = kiln_handle_scope_close
    /// `uint64_t kiln_handle_new(record, value)`: a handle, or 0.
    public static let makeHandle: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> UInt64 = kiln_handle_new
    /// `int32_t kiln_handle_get(record, handle, uint64_t *value)`: a status.
    public static let handleValue: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeMutablePointer<UInt64>?) -> Int32 = kiln_handle_get
    /// `int32_t kiln_handle_set(record, handle, value)`: a status.
    public static let setHandle: @convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64) -> Int32 = kiln_handle_set
    /// `uint64_t kiln_global_handle_new(record, value)`: a global handle, or 0.
    public static let makeGlobalHandle: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> UInt64 = kiln_global_handle_new
    /// `int32_t kiln_global_handle_get(record, handle, uint64_t *value)`: a status.
    public static let globalHandleValue: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeMutablePointer<UInt64>?) -> Int32 = kiln_global_handle_get
    /// `int32_t kiln_global_handle_set(record, handle, value)`: a status.
    public static let setGlobalHandle: @convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64) -> Int32 = kiln_global_handle_set
    /// `int32_t kiln_global_handle_free(record, handle)`: a status.
    public static let freeGlobalHandle: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> Int32 = kiln_global_handle_free
}

/// The record and its heap, or nil for a pointer that is not an attached record.
private func attached(_ pointer: UnsafeMutableRawPointer?) -> (UnsafeMutablePointer<AllocationRecord>, ManagedHeap)? {
    guard let pointer, UInt(bitPattern: pointer) % 8 == 0 else { return nil }
    let record = pointer.assumingMemoryBound(to: AllocationRecord.self)
    guard let heap = ManagedHeap.owner(of: record) else { return nil }
    return (record, heap)
}

/// Runs `body` for an attached record: its status (0, or the error kind, also stored in the
/// record); `invalidRecord` for anything else.
private func status(_ pointer: UnsafeMutableRawPointer?,
                    _ body: (UnsafeMutablePointer<AllocationRecord>, ManagedHeap) throws(HeapError) -> Void) -> Int32 {
    guard let (record, heap) = attached(pointer) else { return Int32(HeapError.Kind.invalidRecord.rawValue) }
    do {
        try body(record, heap)
        return 0
    } catch {
        record.pointee.error = error
        return Int32(error.kind.rawValue)
    }
}

@_cdecl("kiln_heap_allocate_slow")
public func kiln_heap_allocate_slow(_ pointer: UnsafeMutableRawPointer?, _ header: UInt64) -> UInt64 {
    guard let (record, heap) = attached(pointer) else { return 0 }
    switch heap.allocateSlow(record, header: ObjectHeader(bits: header)) {
    case .success(let object): return object.bits
    case .failure(let error):
        record.pointee.error = error
        return 0
    }
}

@_cdecl("kiln_heap_checked_access")
public func kiln_heap_checked_access(_ pointer: UnsafeMutableRawPointer?, _ object: UInt64, _ index: Int64, _ access: UInt32) -> UInt {
    var address: UInt = 0
    _ = status(pointer) { _, heap throws(HeapError) in
        guard let kind = ObjectAccess(rawValue: access) else { throw HeapError(.wrongKind) }
        address = UInt(bitPattern: try heap.checkedAccess(Value(bits: object), index: Int(index), kind))
    }
    return address
}

@_cdecl("kiln_heap_collect")
public func kiln_heap_collect(_ pointer: UnsafeMutableRawPointer?, _ full: Int32) -> Int32 {
    status(pointer) { _, heap throws(HeapError) in try heap.collect(full == 0 ? .minor : .full) }
}

/// `uint64_t kiln_handle_scope_open(record)`: a scope token, or 0 with the error in the record.
@_cdecl("kiln_handle_scope_open")
public func kiln_handle_scope_open(_ pointer: UnsafeMutableRawPointer?) -> UInt64 {
    var token: UInt64 = 0
    _ = status(pointer) { record, _ throws(HeapError) in token = try record.pointee.handles.openScope().bits }
    return token
}

/// `int32_t kiln_handle_scope_close(record, scope)`: closes the innermost scope; a status.
@_cdecl("kiln_handle_scope_close")
public func kiln_handle_scope_close(_ pointer: UnsafeMutableRawPointer?, _ scope: UInt64) -> Int32 {
    status(pointer) { record, _ throws(HeapError) in try record.pointee.handles.closeScope(HandleScopeToken(bits: scope)) }
}

/// `uint64_t kiln_handle_new(record, value)`: a handle in the innermost scope, or 0.
@_cdecl("kiln_handle_new")
public func kiln_handle_new(_ pointer: UnsafeMutableRawPointer?, _ value: UInt64) -> UInt64 {
    var handle: UInt64 = 0
    _ = status(pointer) { record, _ throws(HeapError) in handle = try record.pointee.handles.push(Value(bits: value)).bits }
    return handle
}

/// `int32_t kiln_handle_get(record, handle, uint64_t *value)`: the handle's current value.
@_cdecl("kiln_handle_get")
public func kiln_handle_get(_ pointer: UnsafeMutableRawPointer?, _ handle: UInt64, _ value: UnsafeMutablePointer<UInt64>?) -> Int32 {
    status(pointer) { record, _ throws(HeapError) in
        guard let value else { throw HeapError(.staleHandle) }
        value.pointee = try record.pointee.handles.slot(HandleToken(bits: handle)).pointee
    }
}

/// `int32_t kiln_handle_set(record, handle, value)`.
@_cdecl("kiln_handle_set")
public func kiln_handle_set(_ pointer: UnsafeMutableRawPointer?, _ handle: UInt64, _ value: UInt64) -> Int32 {
    status(pointer) { record, _ throws(HeapError) in
        try record.pointee.handles.slot(HandleToken(bits: handle)).pointee = value
    }
}

/// `uint64_t kiln_global_handle_new(record, value)`: a global handle of the record's heap, or 0.
@_cdecl("kiln_global_handle_new")
public func kiln_global_handle_new(_ pointer: UnsafeMutableRawPointer?, _ value: UInt64) -> UInt64 {
    var handle: UInt64 = 0
    _ = status(pointer) { _, heap in handle = heap.makeGlobalHandle(Value(bits: value)).bits }
    return handle
}

/// `int32_t kiln_global_handle_get(record, handle, uint64_t *value)`.
@_cdecl("kiln_global_handle_get")
public func kiln_global_handle_get(_ pointer: UnsafeMutableRawPointer?, _ handle: UInt64, _ value: UnsafeMutablePointer<UInt64>?) -> Int32 {
    status(pointer) { _, heap throws(HeapError) in
        guard let value else { throw HeapError(.staleHandle) }
        value.pointee = try heap.value(of: GlobalHandle(bits: handle)).bits
    }
}

/// `int32_t kiln_global_handle_set(record, handle, value)`.
@_cdecl("kiln_global_handle_set")
public func kiln_global_handle_set(_ pointer: UnsafeMutableRawPointer?, _ handle: UInt64, _ value: UInt64) -> Int32 {
    status(pointer) { _, heap throws(HeapError) in try heap.set(GlobalHandle(bits: handle), to: Value(bits: value)) }
}

/// `int32_t kiln_global_handle_free(record, handle)`.
@_cdecl("kiln_global_handle_free")
public func kiln_global_handle_free(_ pointer: UnsafeMutableRawPointer?, _ handle: UInt64) -> Int32 {
    status(pointer) { _, heap throws(HeapError) in try heap.freeGlobalHandle(GlobalHandle(bits: handle)) }
}
