// How a heap is sized and how hard it is checked.
//
// The limit (`kiln run --heap-max`) bounds the memory the heap's objects may
// occupy: the nursery, the old space's capacity and the large objects
// together. A copying collection needs room to copy the live objects into
// besides; that reserve is not counted (it is given back when the
// collection ends), so the process may briefly hold the limit plus the live
// bytes. An allocation that cannot fit within the limit after a full
// collection fails with `HeapError.outOfMemory`.
//
// KILN_STRESS is a comma-separated list shared with the loader: `collect`
// collects at every allocation, `collect:N` at every Nth, and in that mode
// the heap is verified after each collection. Other items (`compact`) are
// the loader's and are ignored here.

/// The sizes and checks of a `ManagedHeap`; see the file comment.
public struct HeapConfiguration: Sendable, Equatable {
    /// The most bytes the heap's objects may occupy (nursery + old space + large objects).
    public var limit: Int
    /// The nursery's size in bytes; 0 for a single copying space without generations.
    public var nurseryBytes: Int
    /// The old space's first capacity in bytes.
    public var initialBytes: Int
    /// After a full collection the old space's capacity becomes this many times the live bytes.
    public var growthFactor: Double
    /// Bytes a thread takes from its space at a time for inline allocation.
    public var bufferBytes: Int
    /// Objects of this many bytes or more (header included) go to the large-object space and
    /// never move.
    public var largeObjectBytes: Int
    /// Collect (fully) at every Nth allocation; 0 never. Every allocation then takes the slow path.
    public var collectEvery: Int
    /// Verify the whole heap after every collection.
    public var verifiesEachCollection: Bool
    /// Handles a thread may hold open at once.
    public var handleCapacity: Int

    /// The defaults: a limit of half the physical memory (at least 256 MiB), no nursery,
    /// 4 MiB to start with, growth to twice the live bytes, 32 KiB buffers, large objects from
    /// 32 KiB, no stress.
    public init(limit: Int? = nil, nurseryBytes: Int = 0, initialBytes: Int = 4 << 20,
                growthFactor: Double = 2, bufferBytes: Int = 32 << 10, largeObjectBytes: Int = 32 << 10,
                collectEvery: Int = 0, verifiesEachCollection: Bool = false, handleCapacity: Int = 1 << 20) {
        self.limit = limit ?? max(HeapSystem.physicalMemory / 2, 256 << 20)
        self.nurseryBytes = nurseryBytes
        self.initialBytes = initialBytes
        self.growthFactor = growthFactor
        self.bufferBytes = bufferBytes
        self.largeObjectBytes = largeObjectBytes
        self.collectEvery = collectEvery
        self.verifiesEachCollection = verifiesEachCollection
        self.handleCapacity = handleCapacity
    }

    /// The defaults with the stress mode `KILN_STRESS` asks for (see the file comment).
    public static var fromEnvironment: HeapConfiguration {
        var configuration = HeapConfiguration()
        configuration.applyStress(HeapSystem.environment("KILN_STRESS") ?? "")
        return configuration
    }

    /// Applies the `collect` or `collect:N` item of a KILN_STRESS value, if any.
    public mutating func applyStress(_ value: String) {
        for item in value.split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1)
            guard parts.first == "collect" else { continue }
            collectEvery = parts.count > 1 ? max(Int(parts[1]) ?? 1, 1) : 1
            verifiesEachCollection = true
        }
    }

    /// Bytes from a size written as a number with an optional K, M or G suffix (powers of
    /// 1024): "512M", "2G", "65536". Nil for anything else or for zero.
    public static func bytes(from text: String) -> Int? {
        var digits = Substring(text)
        var scale = 1
        switch digits.last {
        case "K", "k": scale = 1 << 10
        case "M", "m": scale = 1 << 20
        case "G", "g": scale = 1 << 30
        default: break
        }
        if scale != 1 { digits = digits.dropLast() }
        guard let value = Int(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }

    /// What is wrong with this configuration, or nil.
    public var problem: String? {
        if limit < 1 << 20 { return "the heap limit must be at least 1 MiB" }
        if limit > 1 << 44 { return "the heap limit may not exceed 16 TiB" }
        if nurseryBytes != 0 { return "a nursery needs a write barrier, which the heap does not have yet" }
        if bufferBytes < 1 << 10 || bufferBytes > 1 << 24 { return "buffers must be 1 KiB to 16 MiB" }
        if largeObjectBytes < 64 || largeObjectBytes > bufferBytes { return "large objects must start between 64 bytes and the buffer size" }
        if !(growthFactor >= 1.25 && growthFactor <= 16) { return "the growth factor must be 1.25 to 16" }
        if initialBytes < bufferBytes { return "the initial capacity must hold a buffer" }
        if handleCapacity < 16 || handleCapacity > Int(Int32.max) { return "the handle capacity must be 16 to 2^31" }
        if collectEvery < 0 { return "collectEvery must not be negative" }
        return nil
    }
}
