// The heap's figures, for `kiln run --stats` and the benchmarks.
//
// Counters grow for the life of the heap; sizes describe the heap after the
// last collection. Pause times go into a histogram with 16 buckets per
// doubling (each bucket about 4.4% wide), so recording one costs a few
// instructions and no allocation while the world is stopped; percentiles are
// read from it and are exact to a bucket (the upper bound is reported), the
// total and the longest pause are exact.

/// The managed heap's figures; see the file comment. A plain value (a copy taken under the lock).
public struct HeapStatistics: Sendable {
    /// Bytes handed to allocation: objects, plus the unused ends of buffers that were retired.
    public var allocatedBytes = 0
    /// Large objects allocated.
    public var largeObjectsAllocated = 0
    /// Collections of the nursery alone, and full collections.
    public var minorCollections = 0
    public var fullCollections = 0
    /// Bytes copied by all collections, and the part of them promoted out of the nursery.
    public var copiedBytes = 0
    public var promotedBytes = 0
    /// Bytes of objects live after the last full collection (old space + large objects), and
    /// in the old space and large objects now.
    public var liveBytesAfterFullCollection = 0
    public var oldBytes = 0
    public var largeBytes = 0
    /// The limit, the nursery's size and the old space's capacity, in bytes.
    public var limit = 0
    public var nurseryBytes = 0
    public var oldCapacity = 0
    /// Pause times of collections (stop to resume), in nanoseconds.
    public var pauses = PauseHistogram()
}

/// Collection pauses: count, total, longest, and a log-scale histogram for percentiles.
public struct PauseHistogram: Sendable {
    static let bucketsPerDoubling = 16
    static let bucketCount = 64 * bucketsPerDoubling
    /// Counts per bucket, allocated once.
    private var buckets = [UInt32](repeating: 0, count: bucketCount)
    public private(set) var count = 0
    public private(set) var totalNanoseconds: UInt64 = 0
    public private(set) var longestNanoseconds: UInt64 = 0

    public init() {}

    /// The bucket of a pause: 16 per power of two, from the leading bits of the value.
    static func bucket(of nanoseconds: UInt64) -> Int {
        guard nanoseconds >= 16 else { return Int(nanoseconds) }
        let exponent = 63 - nanoseconds.leadingZeroBitCount
        let fraction = Int((nanoseconds >> UInt64(exponent - 4)) & 15)
        return exponent * bucketsPerDoubling + fraction
    }

    /// The largest value that falls in `bucket`.
    static func upperBound(of bucket: Int) -> UInt64 {
        if bucket < 16 { return UInt64(bucket) }
        let exponent = bucket / bucketsPerDoubling, fraction = UInt64(bucket % bucketsPerDoubling)
        guard exponent < 59 else { return .max }
        return ((16 + fraction + 1) << UInt64(exponent - 4)) - 1
    }

    /// Adds one pause. Allocates nothing.
    public mutating func record(_ nanoseconds: UInt64) {
        buckets.withUnsafeMutableBufferPointer { $0[Self.bucket(of: nanoseconds)] &+= 1 }
        count += 1
        totalNanoseconds &+= nanoseconds
        longestNanoseconds = max(longestNanoseconds, nanoseconds)
    }

    /// The pause that `fraction` (0 ... 1) of all pauses are no longer than, to a bucket's
    /// precision (its upper bound, never above the longest); 0 without pauses.
    public func percentile(_ fraction: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let wanted = max(1, Int((Double(count) * fraction).rounded(.up)))
        var seen = 0
        for (bucket, number) in buckets.enumerated() {
            seen += Int(number)
            if seen >= wanted { return min(Self.upperBound(of: bucket), longestNanoseconds) }
        }
        return longestNanoseconds
    }
}
