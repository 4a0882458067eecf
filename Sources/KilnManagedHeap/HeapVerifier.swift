// The heap verifier: every object well formed, every reference to an object.
//
// It walks the old space and the nursery from their bases (objects are packed,
// so each header says where the next one starts; the unused part of a
// thread's buffer, zero words from its cursor to its end, is skipped), checks
// each header and notes where each object starts in a side table with one
// bit per word. Then it checks every reference: in every tagged object's
// fields (a closure's code field excepted), in every large object's, and in
// every root (handles, global handles, the world's roots). A reference is
// good when it leads to the start of an object in the old space or the
// nursery, or to a large object's header. Anything else (a word in the
// middle of an object, the emptied semispace, memory outside the heap) is a
// violation, reported with where the word is (the object and field, or the
// root slot) and what it holds.
//
// In the stress mode it runs after each collection, inside the stop, so it
// must not allocate: the side table is mapped beforehand and the first
// `keptViolations` violations go into a buffer made with it; the rest are
// only counted.

/// A problem the verifier found: a bad header, or a word that should refer to an object and does
/// not. A plain value.
public struct HeapViolation: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable {
        /// The header at `location` (holding `value`) is not a valid object header.
        case badHeader
        /// The object at `location` runs past the end of its space.
        case objectOverrunsSpace
        /// The word at `location` (a field or a root) holds a reference to no object.
        case danglingReference
    }

    public var kind: Kind
    /// The address of the bad header, or of the word holding the bad reference.
    public var location: UInt
    /// The bad word.
    public var value: UInt64
    /// The object whose field holds the bad reference (its header address), or 0 for a root.
    public var object: UInt
    /// The field's index in `object`.
    public var field: Int

    public var description: String {
        let word = "0x" + String(value, radix: 16)
        switch kind {
        case .badHeader:
            return "bad header \(word) at 0x\(String(location, radix: 16)): \(ObjectHeader(bits: value).problem ?? "")"
        case .objectOverrunsSpace:
            return "the object at 0x\(String(location, radix: 16)) (header \(word)) runs past the end of its space"
        case .danglingReference:
            let place = object == 0 ? "the root slot at 0x\(String(location, radix: 16))"
                : "field \(field) of the object at 0x\(String(object, radix: 16))"
            return "\(place) holds \(word), which does not refer to an object"
        }
    }
}

/// What a verification found.
public struct HeapVerification: Sendable {
    /// The first violations found (at most `VerifierMap.keptViolations`).
    public var violations: [HeapViolation]
    /// Every violation found.
    public var violationCount: Int
    /// Objects walked and references checked.
    public var objects: Int
    public var references: Int
    /// Whether nothing was wrong.
    public var isClean: Bool { violationCount == 0 }
}

/// The verifier's memory, made before any stop: a start bit per word of the main reservation,
/// and room for the first violations. Owns its mappings.
final class VerifierMap {
    static let keptViolations = 16
    let base: UInt
    let bits: UnsafeMutablePointer<UInt64>
    let wordCount: Int
    let violations: UnsafeMutablePointer<HeapViolation>
    var violationCount = 0
    var objects = 0
    var references = 0

    init(covering range: Range<UInt>) throws(HeapSystemError) {
        base = range.lowerBound
        wordCount = (range.count / 8 + 63) / 64
        bits = try HeapSystem.mapZeroed(wordCount * 8).bindMemory(to: UInt64.self, capacity: wordCount)
        violations = .allocate(capacity: Self.keptViolations)
    }

    deinit {
        HeapSystem.unmap(UnsafeMutableRawPointer(bits), wordCount * 8)
        violations.deallocate()
    }

    @inline(__always) private func position(_ address: UInt) -> (word: Int, bit: UInt64) {
        let index = Int((address - base) / 8)
        return (index >> 6, 1 << UInt64(index & 63))
    }

    func clear(_ range: Range<UInt>) {
        guard !range.isEmpty else { return }
        let first = position(range.lowerBound).word, last = position(range.upperBound - 8).word
        (bits + first).initialize(repeating: 0, count: last - first + 1)
    }

    @inline(__always) func setStart(_ address: UInt) {
        let (word, bit) = position(address)
        bits[word] |= bit
    }

    @inline(__always) func isStart(_ address: UInt) -> Bool {
        let (word, bit) = position(address)
        return bits[word] & bit != 0
    }

    func reset() {
        violationCount = 0
        objects = 0
        references = 0
    }

    func report(_ violation: HeapViolation) {
        if violationCount < Self.keptViolations { violations[violationCount] = violation }
        violationCount += 1
    }
}

/// The verifier's root visitor state: the heap and the map.
private struct RootCheck {
    unowned(unsafe) let heap: ManagedHeap
    unowned(unsafe) let map: VerifierMap
}

extension ManagedHeap {
    /// Verifies the heap now, stopping the world for it (see the file comment). Takes the lock.
    /// `threadsNotStopped` when the world could not be stopped.
    public func verify() throws(HeapError) -> HeapVerification {
        lock()
        defer { unlock() }
        if verifierMap == nil {
            do {
                verifierMap = try VerifierMap(covering: reservation.base..<reservation.end)
            } catch {
                throw HeapError(.systemRefused)
            }
        }
        if let world, !world.stopForCollection() { throw HeapError(.threadsNotStopped) }
        _ = verifyStopped()
        world?.resumeAfterCollection()
        let map = verifierMap!
        return HeapVerification(violations: (0..<min(map.violationCount, VerifierMap.keptViolations)).map { map.violations[$0] },
                                violationCount: map.violationCount, objects: map.objects, references: map.references)
    }

    /// Runs the verifier with the world stopped (or no other thread running); the first
    /// violation as a `heapCorrupted` error, or nil. Allocates nothing. Lock held.
    func verifyStopped() -> HeapError? {
        guard let map = verifierMap else { return nil }
        map.reset()
        map.clear(old.base..<old.top)
        map.clear(nursery.base..<nursery.top)
        markStarts(old.base, old.top, map)
        markStarts(nursery.base, nursery.top, map)
        checkFields(old.base, old.top, map)
        checkFields(nursery.base, nursery.top, map)
        for index in large.objects.indices {
            let address = large.objects[index]
            let header = ObjectHeader(bits: UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee)
            map.objects += 1
            if header.problem != nil {
                map.report(HeapViolation(kind: .badHeader, location: address, value: header.bits, object: 0, field: 0))
            } else {
                checkObjectFields(address, header, map)
            }
        }
        var check = RootCheck(heap: self, map: map)
        withUnsafeMutablePointer(to: &check) { pointer in
            visitRoots(RootVisitor(context: UnsafeMutableRawPointer(pointer), action: Self.checkRoot))
        }
        guard map.violationCount > 0 else { return nil }
        let first = map.violations[0]
        var failure = HeapError(.heapCorrupted)
        failure.value = first.value
        failure.location = first.location
        return failure
    }

    private static let checkRoot: @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<UInt64>) -> Void = { context, slot in
        let check = context.assumingMemoryBound(to: RootCheck.self).pointee
        check.heap.checkReference(slot.pointee, at: UInt(bitPattern: slot), object: 0, field: 0, check.map)
    }

    /// Where the unused part of a thread's buffer that starts at `address` ends, or nil: those
    /// zero words are free, not empty objects. Asked only of zero headers.
    private func endOfFreeBuffer(at address: UInt) -> UInt? {
        for record in records where record.pointee.cursor == address && record.pointee.bufferEnd > address {
            return record.pointee.bufferEnd
        }
        return nil
    }

    /// Walks the objects of `start ..< end`, checking headers and noting where each starts.
    private func markStarts(_ start: UInt, _ end: UInt, _ map: VerifierMap) {
        var address = start
        while address < end {
            let header = ObjectHeader(bits: UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee)
            if header.bits == 0, let free = endOfFreeBuffer(at: address) {
                address = free
                continue
            }
            if header.problem != nil {
                map.report(HeapViolation(kind: .badHeader, location: address, value: header.bits, object: 0, field: 0))
                return
            }
            let bytes = header.objectBytes
            if bytes > Int(end - address) {
                map.report(HeapViolation(kind: .objectOverrunsSpace, location: address, value: header.bits, object: 0, field: 0))
                return
            }
            map.setStart(address)
            map.objects += 1
            address += UInt(bytes)
        }
    }

    /// Checks the fields of every object of `start ..< end` whose start was noted.
    private func checkFields(_ start: UInt, _ end: UInt, _ map: VerifierMap) {
        var address = start
        while address < end {
            let header = ObjectHeader(bits: UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee)
            if header.bits == 0, let free = endOfFreeBuffer(at: address) {
                address = free
                continue
            }
            guard map.isStart(address) else { return }
            checkObjectFields(address, header, map)
            address += UInt(header.objectBytes)
        }
    }

    private func checkObjectFields(_ address: UInt, _ header: ObjectHeader, _ map: VerifierMap) {
        guard !header.isRaw else { return }
        let fields = UnsafeMutablePointer<UInt64>(bitPattern: address + 8)!
        for index in (header.hasCode ? 1 : 0)..<header.count {
            checkReference(fields[index], at: address + 8 + UInt(8 * index), object: address, field: index, map)
        }
    }

    /// Checks that `word`, found at `location`, is an integer or a reference to an object.
    func checkReference(_ word: UInt64, at location: UInt, object: UInt, field: Int, _ map: VerifierMap) {
        guard word & 1 != 0 else { return }
        map.references += 1
        let address = UInt(word - 1)
        let valid: Bool
        if reservation.contains(address) {
            valid = address % 8 == 0
                && ((address >= old.base && address < old.top) || (address >= nursery.base && address < nursery.top))
                && map.isStart(address)
        } else {
            valid = large.isObject(at: address)
        }
        if !valid {
            map.report(HeapViolation(kind: .danglingReference, location: location, value: word, object: object, field: field))
        }
    }
}
