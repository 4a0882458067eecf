// The copying collector: Cheney's algorithm over the roots the caller gives.
//
// A collection copies every object reachable from the roots out of the
// *from* range into *to-space*, packed in the order it reaches them, and
// leaves behind, in each old header, the forwarding bit and the address of
// the copy. To-space is its own queue: `scan` walks the copies from where
// the collection began to the copy frontier (`free`), forwarding each field,
// and copying what a field reaches appends to the queue; when `scan` catches
// up with `free` every reachable object has been copied and every field
// updated. Nothing else is allocated, so the collection runs inside a stop of
// the world without touching malloc; to-space has room for everything in the
// from range, committed before the collection starts.
//
// A full collection's from range is the old space and the nursery (they are
// adjacent in the reservation, so one range check tells whether an object
// moves); to-space is the other old semispace. A minor collection's from
// range is the nursery alone and to-space is the old space's free part above
// its top (promotion); its roots include the remembered slots of old objects.
//
// Large objects never move. A full collection marks them (the header's mark
// bit) and queues the marked ones on a worklist with room for every large
// object, then scans their fields like copies; the large-object space sweeps
// the unmarked ones afterwards. A minor collection leaves them alone.
//
// Closures (headers with the code bit) hold an untagged code address in field
// 0: the scan skips it as a reference and, in a full collection, reports the
// slot of the copy to the world (`HeapWorld.visitCode`), so the code heap can
// keep the code alive and later rewrite the field when the code moves.

/// One copying collection in progress; see the file comment. Plain state over raw memory.
struct Evacuation {
    /// Objects whose header address `a` satisfies `a - fromBase < fromSize` are copied.
    let fromBase: UInt
    let fromSize: UInt
    /// The copy frontier: where the next copy goes.
    var free: UInt
    /// To-space ends here (room was checked before the collection began).
    let toLimit: UInt
    /// Large objects in this range are marked; an empty range in a minor collection.
    let largeBase: UInt
    let largeSize: UInt
    /// Marked large objects still to scan; room for every large object.
    let worklist: UnsafeMutablePointer<UInt>
    var pending = 0
    /// Objects copied so far.
    var copiedObjects = 0
    /// Receives the code slot of every closure scanned, or nil.
    unowned(unsafe) let codeVisitor: (any HeapWorld)?

    init(from: Range<UInt>, to: Range<UInt>, large: Range<UInt>, worklist: UnsafeMutablePointer<UInt>,
         codeVisitor: (any HeapWorld)?) {
        fromBase = from.lowerBound
        fromSize = UInt(from.count)
        free = to.lowerBound
        toLimit = to.upperBound
        largeBase = large.lowerBound
        largeSize = UInt(large.count)
        self.worklist = worklist
        self.codeVisitor = codeVisitor
    }

    /// The word `word` (a reference: low bit 1) should now hold: the copy's reference for an
    /// object in the from range (copied now unless it already was), the same word otherwise.
    @inline(__always)
    mutating func forward(_ word: UInt64) -> UInt64 {
        let address = UInt(truncatingIfNeeded: word &- 1)
        if address &- fromBase < fromSize {
            let source = UnsafeMutablePointer<UInt64>(bitPattern: address)!
            let header = source.pointee
            if header & ObjectHeader.forwardedBit != 0 { return (header & ObjectHeader.sizeMask) | 1 }
            let bytes = ObjectHeader(bits: header).objectBytes
            let target = free
            free = target &+ UInt(bytes)
            Self.copy(from: source, to: UnsafeMutablePointer<UInt64>(bitPattern: target)!, bytes: bytes)
            source.pointee = ObjectHeader.forwardedBit | UInt64(target)
            copiedObjects &+= 1
            return UInt64(target) | 1
        }
        if address &- largeBase < largeSize { mark(address) }
        return word
    }

    @inline(__always)
    private static func copy(from source: UnsafeMutablePointer<UInt64>, to target: UnsafeMutablePointer<UInt64>, bytes: Int) {
        if bytes <= 64 {
            // Small objects dominate: a few word moves beat a call to memcpy.
            var index = 0
            let words = bytes &>> 3
            while index < words {
                target[index] = source[index]
                index &+= 1
            }
        } else {
            UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: bytes)
        }
    }

    @inline(__always)
    private mutating func mark(_ address: UInt) {
        let header = UnsafeMutablePointer<UInt64>(bitPattern: address)!
        let bits = header.pointee
        guard bits & ObjectHeader.markBit == 0 else { return }
        header.pointee = bits | ObjectHeader.markBit
        if bits & ObjectHeader.rawBit == 0 {
            worklist[pending] = address
            pending &+= 1
        }
    }

    /// Forwards the word in `slot` if it is a reference.
    @inline(__always)
    mutating func visit(_ slot: UnsafeMutablePointer<UInt64>) {
        let word = slot.pointee
        if word & 1 != 0 { slot.pointee = forward(word) }
    }

    /// Scans the copies from `start` and the marked large objects until both queues are empty.
    mutating func scan(from start: UInt) {
        var scan = start
        while true {
            while scan < free {
                scan = scanObject(at: scan)
            }
            guard pending > 0 else { return }
            pending &-= 1
            _ = scanObject(at: worklist[pending])
        }
    }

    /// Forwards the fields of the object at `address`; returns the address after it.
    @inline(__always)
    private mutating func scanObject(at address: UInt) -> UInt {
        let header = ObjectHeader(bits: UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee & ~ObjectHeader.markBit)
        if !header.isRaw {
            let fields = UnsafeMutablePointer<UInt64>(bitPattern: address &+ 8)!
            var index = header.hasCode ? 1 : 0
            let count = header.count
            while index < count {
                let word = fields[index]
                if word & 1 != 0 { fields[index] = forward(word) }
                index &+= 1
            }
            if header.hasCode, let codeVisitor { codeVisitor.visitCode(fields) }
        }
        return address &+ UInt(header.objectBytes)
    }
}
