// The code heap: where every code object, stub and TOC of a loader lives.
//
// It manages an `ExecutableRegion` in three parts:
//
//   movable code  the lower part of the code half. Each code object is a
//                 block: a 16-byte header (magic, block id, code size,
//                 function index) followed by the code, 16-byte aligned.
//                 Blocks move when the heap is compacted and are freed when
//                 nothing reaches them.
//   fixed code    the top `fixedSize` bytes of the code half: the runtime's
//                 own routines and 16-byte cells for stubs (resolver stubs of
//                 TOC call slots, callback stubs). Nothing here ever moves, so
//                 C code and TOC slots may hold these addresses forever.
//   data          the data half: crates' data objects and TOCs. Never moves.
//
// Names: a *block* is the heap's view of one code object (`CodeBlock`: where
// it is, how big, which crate and function it belongs to); its *entry* is the
// address of its first instruction; its *extent* is header plus code.
//
// Invariants: `blocks` is sorted by address and holds exactly the live
// blocks, so `owner(of:)` (which block holds a return address) is a binary
// search; compaction updates addresses and re-sorts before it returns. The
// header written in memory always matches the block (`checkHeaders` verifies).
// All writes to code go through the region's writable alias.

import KilnCode

/// One code object placed in the heap. Owned by the heap; a crate holds its blocks.
///
/// The block's address changes when the heap compacts; hold the block, not its entry.
public final class CodeBlock: CustomStringConvertible {
    /// A number unique among the heap's live blocks (reused after a block is freed).
    public let id: UInt32
    /// The first instruction; moves when the heap compacts.
    public internal(set) var entry: UInt
    /// Bytes of code (a block rewritten in place by a reload may shrink).
    public internal(set) var size: Int
    /// Bytes available for code: the size the block was allocated with, or what is left
    /// after `shrink`.
    var capacity: Int
    /// The function's name as in the IL.
    public internal(set) var name: String
    /// The crate the code belongs to (nil once the crate is gone).
    /// Not weak: weak references would make every retain of a crate state take the slow
    /// path. A live block's crate and owning version are always alive (they free their
    /// blocks before they go); `free` clears both.
    unowned var crate: CrateState? { didSet { crateName = crate?.name } }
    /// The name of the crate the code belongs to (nil once the block is freed). Stored, so a
    /// host may read it from a block it kept longer than the loader.
    public private(set) var crateName: String?
    /// The function's index in its crate's module.
    public internal(set) var functionIndex: Int
    /// The newest crate version whose code this is: its records are applied in that
    /// version's terms. (Older versions may still list the block; they do not own it.)
    unowned var version: CrateVersion?
    /// How many times compaction has moved the block.
    public internal(set) var moves = 0
    /// Never moves: the function calls the setjmp family, so a `jmp_buf` somewhere may
    /// hold a return address into it (RootScan.swift).
    var isFixed = false
    /// The scan that last found a conservative root into the block (RootScan's epoch).
    var pinEpoch: UInt64 = 0
    /// The compaction that last moved the block.
    var moveEpoch: UInt64 = 0

    // What points at the block, and what it points at (CodeLinks.swift), so that moving it
    // touches exactly the fields that change.

    /// Indices of the function's records whose field depends on where the block is
    /// (pc-relative): applied again when it moves.
    var movingRecords: [Int32] = []
    /// For each record of the function, the block a direct call (`.function`) reaches; nil
    /// for other records.
    var callees: [CodeBlock?] = []
    /// The direct calls of other blocks into this one: the calling block and its record.
    var callers: [CodeLinks.Caller] = []
    /// TOC call slots bound to this block's entry.
    var boundSlots: [UInt] = []
    /// The callback stub that jumps to this block.
    var stub: CallbackStub?
    /// The scan that last found a precise frame running in the block.
    var frameEpoch: UInt64 = 0
    /// Whether the block has been freed.
    public internal(set) var isFreed = false

    init(id: UInt32, entry: UInt, size: Int, name: String, crate: CrateState?, functionIndex: Int) {
        self.id = id
        self.entry = entry
        self.size = size
        self.capacity = size
        self.name = name
        self.crate = crate
        self.functionIndex = functionIndex
    }

    /// Header plus code, rounded up to 16 bytes.
    public var extent: Range<UInt> { (entry - UInt(CodeHeap.headerSize))..<(entry + UInt(align(max(capacity, 1), 16))) }

    public var description: String { "$\(name) at 0x\(String(entry, radix: 16)) (\(size) bytes)" }
}

/// The heap of one loader; see the file comment.
final class CodeHeap {
    static let headerSize = 16
    static let headerMagic: UInt32 = 0x444F_434B  // "KCOD"

    let region: ExecutableRegion
    /// Bytes at the top of the code half for never-moving code.
    let fixedSize: Int
    private(set) var movable: FreeList
    private(set) var fixed: FreeList
    private(set) var data: FreeList
    /// Live blocks, sorted by address.
    private(set) var blocks: [CodeBlock] = []
    private var freeIDs: [UInt32] = []
    /// Everything from here to the fixed part has been given back to the kernel and not
    /// allocated since (an offset into the code half).
    private var releasedFrom: Int
    private var nextID: UInt32 = 0

    init(regionSize: Int, placement: RegionPlacement = .lowWhenFree) throws(SystemError) {
        region = try ExecutableRegion(size: regionSize, placement: placement)
        fixedSize = max(1 << 16, min(32 << 20, region.halfSize / 16))
        movable = FreeList(limit: region.halfSize - fixedSize)
        fixed = FreeList(limit: fixedSize)
        data = FreeList(limit: region.halfSize)
        releasedFrom = movable.limit
    }

    var codeBase: UInt { region.base }
    var fixedBase: UInt { region.base + UInt(region.halfSize - fixedSize) }
    var movableRange: Range<UInt> { codeBase..<fixedBase }

    // MARK: Blocks

    /// Places a block for `size` bytes of code and writes its header; the code reads as
    /// int3 until written.
    func allocateBlock(size: Int, name: String, crate: CrateState?, functionIndex: Int) throws(LoadError) -> CodeBlock {
        let extent = Self.headerSize + align(max(size, 1), 16)
        guard let offset = movable.allocate(extent, alignment: 16) else {
            throw .regionFull(kind: "code", requested: extent)
        }
        releasedFrom = max(releasedFrom, offset + extent)
        let id: UInt32
        if let reused = freeIDs.popLast() { id = reused } else { id = nextID; nextID += 1 }
        let block = CodeBlock(id: id, entry: codeBase + UInt(offset + Self.headerSize), size: size, name: name,
                              crate: crate, functionIndex: functionIndex)
        writeHeader(of: block)
        insert(block)
        return block
    }

    /// Frees a block: its bytes become int3 (so a stale jump traps) and its pages may be released.
    func free(_ block: CodeBlock) {
        precondition(!block.isFreed, "block freed twice")
        let index = firstBlock(atOrAfter: block.entry)
        guard index < blocks.count, blocks[index] === block else { preconditionFailure("not a live block") }
        blocks.remove(at: index)
        let extent = block.extent
        fill(extent, with: 0xCC)
        movable.free(Int(extent.lowerBound - codeBase)..<Int(extent.upperBound - codeBase))
        block.isFreed = true
        block.crate = nil
        block.version = nil
        block.callees = []
        block.callers = []
        block.boundSlots = []
        block.stub = nil
        freeIDs.append(block.id)
        releaseFreePages()
    }

    /// Makes a block hold `size` bytes of code, giving the space after them back; unless
    /// `filling` is false (the new code is already written), its bytes become int3 first.
    func resize(_ block: CodeBlock, to size: Int, filling: Bool = true) {
        precondition(size <= block.capacity, "a block only shrinks")
        let oldEnd = block.extent.upperBound
        block.size = size
        block.capacity = size
        let newEnd = block.extent.upperBound
        if filling { fill(block.entry..<oldEnd, with: 0xCC) } else { fill(newEnd..<oldEnd, with: 0xCC) }
        if newEnd < oldEnd { movable.free(Int(newEnd - codeBase)..<Int(oldEnd - codeBase)) }
        writeHeader(of: block)
    }

    func writeHeader(of block: CodeBlock) {
        let header = region.writableAlias(of: block.entry - UInt(Self.headerSize))
        header.storeBytes(of: Self.headerMagic, toByteOffset: 0, as: UInt32.self)
        header.storeBytes(of: block.id, toByteOffset: 4, as: UInt32.self)
        header.storeBytes(of: UInt32(block.size), toByteOffset: 8, as: UInt32.self)
        header.storeBytes(of: UInt32(truncatingIfNeeded: block.functionIndex), toByteOffset: 12, as: UInt32.self)
    }

    /// Whether every live block's in-memory header names it.
    func checkHeaders() -> Bool {
        blocks.allSatisfy { block in
            let header = UnsafeRawPointer(bitPattern: block.entry - UInt(Self.headerSize))!
            return header.load(as: UInt32.self) == Self.headerMagic
                && header.load(fromByteOffset: 4, as: UInt32.self) == block.id
                && header.load(fromByteOffset: 8, as: UInt32.self) == UInt32(block.size)
        }
    }

    private func insert(_ block: CodeBlock) {
        let index = firstBlock(atOrAfter: block.entry)
        blocks.insert(block, at: index)
    }

    /// The index of the first block whose entry is at or after `address`.
    func firstBlock(atOrAfter address: UInt) -> Int {
        var low = 0, high = blocks.count
        while low < high {
            let middle = (low + high) / 2
            if blocks[middle].entry < address { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The block whose extent holds `address` (a return address, say), or nil.
    func owner(of address: UInt) -> CodeBlock? {
        guard movableRange.contains(address) else { return nil }
        let index = firstBlock(atOrAfter: address + 1)
        guard index > 0 else { return nil }
        let candidate = blocks[index - 1]
        return candidate.extent.contains(address) ? candidate : nil
    }

    /// Brings the free list and the order of `blocks` up to date after compaction moved
    /// blocks (their entries are already new), and fills the space they left with int3.
    /// `topBefore` is the end of the highest block before, as an offset.
    func placeMoved(_ moves: [Compactor.Move], topBefore: Int) {
        guard !moves.isEmpty else { return }
        let header = UInt(Self.headerSize)
        var lowest = UInt.max
        var ordered = true
        for move in moves {
            let size = move.block.extent.count
            let start = Int(move.from - header - codeBase)
            movable.free(start..<(start + size))
            lowest = min(lowest, move.from - header)
            if move.to < move.from { continue }
            ordered = false  // evacuated above the others
        }
        for move in moves {
            let start = Int(move.to - header - codeBase)
            movable.take(start..<(start + move.block.extent.count))
        }
        if !ordered { blocks.sort { $0.entry < $1.entry } }
        releasedFrom = max(releasedFrom, movable.top)
        // What the moved blocks left: every hole between the lowest of them and the old top.
        let end = codeBase + UInt(max(topBefore, movable.top))
        for hole in movable.holes where codeBase + UInt(hole.upperBound) > lowest {
            let start = max(codeBase + UInt(hole.lowerBound), lowest)
            let stop = min(codeBase + UInt(hole.upperBound), end)
            if start < stop { fill(start..<stop, with: 0xCC) }
            if codeBase + UInt(hole.lowerBound) >= end { break }
        }
    }

    // MARK: Writing code

    /// Copies `bytes` to the code at `address` through the writable alias.
    func write(_ bytes: UnsafeRawBufferPointer, at address: UInt) {
        guard bytes.count > 0 else { return }
        region.writableAlias(of: address).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    /// Fills code bytes with `byte` (int3 for freed space).
    func fill(_ range: Range<UInt>, with byte: UInt8) {
        guard !range.isEmpty else { return }
        region.writableAlias(of: range.lowerBound).initializeMemory(as: UInt8.self, repeating: byte, count: range.count)
    }

    /// Gives the pages above the highest block back to the kernel, once: a range already
    /// given back is not handed to the kernel again (that walk is not free).
    func releaseFreePages() {
        let top = movable.top
        guard top < releasedFrom else { return }
        region.release((codeBase + UInt(top))..<(codeBase + UInt(releasedFrom)))
        releasedFrom = top
    }

    /// Takes `count` bytes of movable space that hold no block (a gap, for randomised placement).
    func allocatePadding(_ count: Int) throws(LoadError) -> UInt {
        guard let offset = movable.allocate(align(count, 16), alignment: 16) else {
            throw .regionFull(kind: "code", requested: count)
        }
        releasedFrom = max(releasedFrom, offset + align(count, 16))
        return codeBase + UInt(offset)
    }

    func freePadding(_ address: UInt, _ count: Int) {
        movable.free(Int(address - codeBase)..<Int(address - codeBase) + align(count, 16))
    }

    // MARK: Fixed cells

    /// Takes `count` bytes (a multiple of 16) of never-moving code space.
    func allocateFixed(_ count: Int) throws(LoadError) -> UInt {
        guard let offset = fixed.allocate(align(count, 16), alignment: 16) else {
            throw .regionFull(kind: "stub", requested: count)
        }
        let address = fixedBase + UInt(offset)
        fill(address..<(address + UInt(align(count, 16))), with: 0xCC)
        return address
    }

    func freeFixed(_ address: UInt, count: Int) {
        fill(address..<(address + UInt(align(count, 16))), with: 0xCC)
        fixed.free(Int(address - fixedBase)..<Int(address - fixedBase) + align(count, 16))
    }

    // MARK: Data

    /// Takes `count` zeroed bytes of data at `alignment`.
    func allocateData(_ count: Int, alignment: Int) throws(LoadError) -> UInt {
        let size = align(max(count, 1), 8)
        guard let offset = data.allocate(size, alignment: max(alignment, 8)) else {
            throw .regionFull(kind: "data", requested: count)
        }
        return region.dataBase + UInt(offset)
    }

    /// Returns data to the heap, zeroed (so the next allocation reads zeros); the whole pages
    /// of a large object go back to the kernel instead of being written.
    func freeData(_ address: UInt, count: Int) {
        let size = align(max(count, 1), 8)
        region.zeroData(address..<(address + UInt(size)))
        data.free(Int(address - region.dataBase)..<Int(address - region.dataBase) + size)
    }

    // MARK: Statistics

    /// Bytes taken by live blocks (headers included).
    var movableBytes: Int { blocks.reduce(0) { $0 + $1.extent.count } }
    var fixedBytes: Int { fixedSize - fixed.freeBytes }
    var dataBytes: Int { data.limit - data.freeBytes }
}
