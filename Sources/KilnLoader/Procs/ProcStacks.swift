// Stack segments of procs: power-of-two blocks from a buddy allocator over one
// reservation that lies below every thread stack of the process.
//
// A segment is `[base, base + size)`; the stack grows down from its top. Its
// first bytes are a header (`Segment`), then a reserve that only the runtime's
// own routines use (the call into the grow routine, a service call, the
// registers a proc leaves behind when it parks), and above that the frames of
// generated code. The *limit* generated code compares against is therefore
// `base + header + reserve`.
//
// Why low: generated code compares the stack pointer with one process-wide
// word (`kiln_stack_limit`), whatever thread runs it. Every segment lies below
// the stacks the kernel and pthreads hand out, so on any other thread the
// comparison passes and the grow path is never taken.
//
// Memory is committed by touching it; a segment given back is kept for reuse
// (its pages stay committed: a proc that ran deep once is likely to do so again).

import CKilnShim

/// The buddy allocator of stack segments.
final class ProcStacks {
    /// The smallest segment: 512 bytes (a new proc's first).
    static let minimumOrder = 9
    /// The largest: 1 MiB; a frame larger than that cannot run on a proc.
    static let maximumOrder = 20
    /// Bytes at the base of a segment before the reserve.
    static let headerSize = 32
    /// Bytes below the limit that routines may use without a check.
    static let reserve = 256

    /// The reserved range.
    let low: UInt
    let high: UInt
    /// The next never-used byte of the range, handed out in blocks of the maximum order.
    private var cursor: UInt
    /// The order of each free block, by address: what says a block is free (for merging).
    private var freeOrder: [UInt: Int] = [:]
    /// Free blocks per order, most recently freed last (their pages are the warmest). An
    /// entry whose block was merged into a larger one since is left in place and skipped
    /// when it comes up (its `freeOrder` no longer says so), so a merge costs no search.
    private var free: [[UInt]]
    /// Bytes in segments handed out now.
    private(set) var bytesInUse = 0
    private(set) var segmentsInUse = 0

    /// Where the range is placed: below the loader's reservations (16 TiB and up) and far
    /// below the kernel's stacks (near 128 TiB), above where programs are loaded.
    private static let preferredBase: UInt = 1 << 43
    private static let size = 64 << 30

    init() throws(LoadError) {
        var base: UnsafeMutableRawPointer?
        var candidate = Self.preferredBase
        while base == nil, candidate < Self.preferredBase + (1 << 42) {
            base = System.reserve(Self.size, at: candidate)
            candidate += UInt(Self.size)
        }
        guard let base else { throw .system(SystemError("mmap(proc stacks)", message: "no room below the thread stacks")) }
        do {
            try System.mapAnonymous(base, Self.size)
        } catch {
            System.unmap(base, Self.size)
            throw .system(error)
        }
        low = UInt(bitPattern: base)
        high = low + UInt(Self.size)
        cursor = low
        free = Array(repeating: [], count: Self.maximumOrder + 1)
    }

    deinit {
        System.unmap(UnsafeMutableRawPointer(bitPattern: low)!, Int(high - low))
    }

    /// The order of the smallest segment whose frames may use `bytes`.
    static func order(forUsable bytes: Int) -> Int? {
        var order = minimumOrder
        while (1 << order) - headerSize - reserve < bytes {
            order += 1
            if order > maximumOrder { return nil }
        }
        return order
    }

    /// A segment of `1 << order` bytes, or nil when the range is full.
    func allocate(order: Int) -> UInt? {
        var found = order
        var taken: UInt?
        while taken == nil, found <= Self.maximumOrder {
            if let candidate = free[found].popLast() {
                if freeOrder[candidate] == found { taken = candidate }
            } else {
                found += 1
            }
        }
        var block: UInt
        if let taken {
            block = taken
            freeOrder[block] = nil
        } else {
            guard cursor + (1 << Self.maximumOrder) <= high else { return nil }
            block = cursor
            cursor += 1 << Self.maximumOrder
            found = Self.maximumOrder
        }
        // Split down to the order asked for; the upper halves go on the free lists.
        while found > order {
            found -= 1
            let buddy = block + (1 << found)
            free[found].append(buddy)
            freeOrder[buddy] = found
        }
        bytesInUse += 1 << order
        segmentsInUse += 1
        return block
    }

    /// Gives back the segment at `block` of `1 << order` bytes, merging it with free buddies.
    func release(_ block: UInt, order: Int) {
        bytesInUse -= 1 << order
        segmentsInUse -= 1
        var block = block, order = order
        while order < Self.maximumOrder {
            let buddy = low + ((block - low) ^ (1 << order))
            guard freeOrder[buddy] == order else { break }
            freeOrder[buddy] = nil
            block = min(block, buddy)
            order += 1
        }
        free[order].append(block)
        freeOrder[block] = order
    }

    func contains(_ address: UInt) -> Bool { address >= low && address < high }
}

/// The header at the base of every segment.
struct Segment {
    /// Offsets of the header's words.
    static let previousOffset = 0      // the segment below in the chain (0 for the first)
    static let returnRspOffset = 8     // where the stack pointer goes back to in the previous one
    static let orderOffset = 16        // then 8 bytes of padding, to headerSize

    let base: UInt

    var order: Int { Int(load(Self.orderOffset)) }
    var size: UInt { 1 << UInt(order) }
    var top: UInt { base + size }
    var limit: UInt { base + UInt(ProcStacks.headerSize + ProcStacks.reserve) }
    var previous: Segment? {
        let word = load(Self.previousOffset)
        return word == 0 ? nil : Segment(base: word)
    }
    var returnRsp: UInt { load(Self.returnRspOffset) }

    func load(_ offset: Int) -> UInt {
        UnsafeRawPointer(bitPattern: base)!.load(fromByteOffset: offset, as: UInt.self)
    }

    func store(_ value: UInt, _ offset: Int) {
        UnsafeMutableRawPointer(bitPattern: base)!.storeBytes(of: value, toByteOffset: offset, as: UInt.self)
    }

    static func make(at base: UInt, order: Int, previous: Segment?, returnRsp: UInt) -> Segment {
        let segment = Segment(base: base)
        segment.store(previous?.base ?? 0, previousOffset)
        segment.store(returnRsp, returnRspOffset)
        segment.store(UInt(order), orderOffset)
        return segment
    }
}
