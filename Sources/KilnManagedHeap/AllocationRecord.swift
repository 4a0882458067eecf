// The allocation record: the per-thread state that generated code reads.
//
// Every thread that allocates has one record, made by `ManagedHeap.attach`
// and owned by the heap until `detach`; its address never changes, so
// generated code may keep it in a register or a thread-local slot and pass it
// to the runtime as the context pointer. Allocation inline in generated code
// is a bump of `cursor` checked against `limit`:
//
//     mov   rax, [record + cursor]
//     lea   rdx, [rax + bytes]          ; bytes = 8 + 8 * fields, or 8 + align8(n)
//     cmp   rdx, [record + limit]
//     ja    slow                        ; unsigned: the object does not fit
//     mov   [record + cursor], rdx
//     mov   qword [rax], header         ; ObjectHeader: the field count, or rawBit | n
//     lea   result, [rax + 1]           ; the reference: header address + 1
//   slow:
//     rdi = record, rsi = header        ; call ManagedHeap.allocationSlowPath
//     test  rax, rax                    ; 0: failed; the reason is in the record
//
// The memory from `cursor` to `limit` always reads as zero, so the new
// object's fields are already the integer 0 (and its bytes 0): the inline
// path writes the header only. An allocation is a safepoint only on the slow
// path (which may collect and move every object); the inline path never
// moves anything.
//
// `cursor` and `limit` are the only fields generated code touches. A limit
// of 0 sends every allocation to the slow path: that is how the stress mode
// (a collection at every Nth allocation) sees each one. The offsets below
// are the single source of truth for the code generator; a test checks them
// through raw memory.

/// The per-thread allocation state; see the file comment. Lives in memory the heap owns from
/// `ManagedHeap.attach` to `ManagedHeap.detach`; never moves. Fields other than `cursor`,
/// `limit` and `client` are the heap's own.
public struct AllocationRecord {
    /// The next free byte of the thread's buffer: where the next object's header goes.
    /// Generated code reads and writes it.
    public var cursor: UInt
    /// The end of the buffer, or 0 to send every allocation to the slow path. An object of
    /// `n` bytes fits when `cursor + n <= limit`. Generated code reads it.
    public var limit: UInt
    /// Free for the embedder (the loader keeps its per-thread state here); the heap never
    /// reads or writes it after `attach` sets it to 0.
    public var client: UInt
    /// The last failure of a runtime entry called with this record (`HeapError.none` when
    /// none); the caller reads it after a 0 result.
    public var error: HeapError
    /// The heap (unretained: the heap outlives its records).
    var heap: UnsafeMutableRawPointer
    /// The real end of the buffer when `limit` is held at 0.
    var bufferEnd: UInt
    /// Allocations left before the stress mode collects (unused outside it).
    var countdown: Int
    /// The handles of this thread.
    @usableFromInline var handles: HandleStack
    /// `AllocationRecord.attachedMagic` while attached, so a stale pointer is refused.
    var magic: UInt64

    static let attachedMagic: UInt64 = 0x6B69_6C6E_6865_6170  // "kilnheap"

    /// Byte offset of `cursor` from the record's address (for generated code).
    public static let cursorOffset = MemoryLayout<AllocationRecord>.offset(of: \.cursor)!
    /// Byte offset of `limit` from the record's address (for generated code).
    public static let limitOffset = MemoryLayout<AllocationRecord>.offset(of: \.limit)!
    /// Byte offset of `client` from the record's address.
    public static let clientOffset = MemoryLayout<AllocationRecord>.offset(of: \.client)!

    init(heap: UnsafeMutableRawPointer, handles: HandleStack) {
        cursor = 0
        limit = 0
        client = 0
        error = .none
        self.heap = heap
        bufferEnd = 0
        countdown = 0
        self.handles = handles
        magic = Self.attachedMagic
    }

    /// Bytes left in the buffer (whatever `limit` says in the stress mode).
    var bufferRoom: Int { Int(bufferEnd &- cursor) }
}
