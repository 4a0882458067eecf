// Lists of small integers per node, stored flat.
//
// Control-flow edges, dominator-tree children, dominance frontiers, the
// blocks where a temporary is defined or used: each is a list per node, and
// an array of arrays would cost one heap allocation per node (a hundred
// thousand for a large function). `Adjacency` keeps every list in one array,
// node i's list at `items[start[i] ..< start[i + 1]]`, built in linear time
// from (node, item) pairs by a stable counting sort: within a node, items keep
// the order in which their pairs were added.

/// One list of integers per node, in one flat array.
public struct Adjacency: Sendable {
    /// Where each node's list starts in `items`; one more entry than nodes.
    public private(set) var start: [Int]
    /// Every list, one after another.
    public private(set) var items: [Int]

    /// Empty lists for `count` nodes.
    public init(count: Int) {
        start = [Int](repeating: 0, count: count + 1)
        items = []
    }

    /// The lists made of `pairs`, grouped by node; pairs of one node keep their order.
    public init(count: Int, pairs: [(node: Int, item: Int)]) {
        var start = [Int](repeating: 0, count: count + 1)
        for pair in pairs { start[pair.node + 1] += 1 }
        for node in 0..<count { start[node + 1] += start[node] }
        var items = [Int](repeating: 0, count: pairs.count)
        for pair in pairs {
            items[start[pair.node]] = pair.item
            start[pair.node] += 1
        }
        Adjacency.restore(&start)
        self.start = start
        self.items = items
    }

    /// After the items were placed with `start[node]` as each node's cursor, every entry holds
    /// where the next node starts: moving them up by one gives the starts back. (Using the starts
    /// as cursors saves a copy of the array for every list built, and lists are built often.)
    private static func restore(_ start: inout [Int]) {
        var node = start.count - 1
        while node > 0 {
            start[node] = start[node - 1]
            node -= 1
        }
        start[0] = 0
    }

    /// The same, from two parallel arrays (nodes and items), which avoids building tuples.
    public init(count: Int, nodes: [Int32], items pairedItems: [Int32]) {
        var start = [Int](repeating: 0, count: count + 1)
        for node in nodes { start[Int(node) + 1] += 1 }
        for node in 0..<count { start[node + 1] += start[node] }
        var items = [Int](repeating: 0, count: nodes.count)
        for (node, item) in zip(nodes, pairedItems) {
            items[start[Int(node)]] = Int(item)
            start[Int(node)] += 1
        }
        Adjacency.restore(&start)
        self.start = start
        self.items = items
    }

    /// The number of nodes.
    @inlinable public var count: Int { start.count - 1 }

    /// Node `node`'s list.
    @inlinable public subscript(node: Int) -> ArraySlice<Int> {
        items[start[node]..<start[node + 1]]
    }

    /// The length of node `node`'s list.
    @inlinable public func degree(_ node: Int) -> Int { start[node + 1] - start[node] }

    /// The lists as arrays (for tests and printing).
    public var lists: [[Int]] { (0..<count).map { Array(self[$0]) } }
}
