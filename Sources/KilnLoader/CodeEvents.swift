// Telling tools where code is: a debugger (GdbJit.swift) and a profiler
// (JitDump.swift) must learn of every block placed, moved, rewritten or
// freed.
//
// Blocks move while the world is stopped, when nothing may allocate, so
// nothing is told then. Instead, at the end of each operation that changes
// code (load, reload, compaction, collection, unload), with the world running
// again and the loader's lock held, `publishCodeChanges` compares the heap's
// blocks with what listeners were last told and reports the difference:
// blocks new since then (or rewritten: another version's code, or another
// size), blocks that moved, blocks that are gone. With no listener, this is
// one check of an empty array.
//
// The published table holds each block strongly, so a freed block's identity
// cannot be taken by a new one before the difference is seen.

/// Something that follows the code of one loader; see the file comment.
protocol CodeListener: AnyObject {
    /// Called with the loader's lock held, after the world has resumed, in this order:
    /// blocks gone (or rewritten), blocks moved, blocks new (or rewritten).
    func codeChanged(_ changes: CodeChanges)
}

/// What changed since listeners were last told.
struct CodeChanges {
    /// Blocks freed, or rewritten in place (then they are also in `placed`), with where
    /// they were.
    var removed: [(block: CodeBlock, entry: UInt, size: Int)] = []
    /// Blocks that moved (same code), with where they were.
    var moved: [(block: CodeBlock, from: UInt)] = []
    /// Blocks placed (or rewritten) since.
    var placed: [CodeBlock] = []
    /// The crate versions whose blocks changed in any way (by identity).
    var versions: Set<ObjectIdentifier> = []

    var isEmpty: Bool { removed.isEmpty && moved.isEmpty && placed.isEmpty }
}

/// The loader's listeners and what they were told.
final class CodeEvents {
    var listeners: [CodeListener] = []
    /// What listeners know of each block: where it is, how big, whose code.
    private var published: [ObjectIdentifier: (block: CodeBlock, entry: UInt, size: Int, version: ObjectIdentifier?)] = [:]

    /// The difference between `blocks` and what was published, which becomes what was.
    func difference(from blocks: [CodeBlock]) -> CodeChanges {
        var changes = CodeChanges()
        var seen = Set<ObjectIdentifier>(minimumCapacity: blocks.count)
        for block in blocks {
            let key = ObjectIdentifier(block)
            seen.insert(key)
            let version = block.version.map(ObjectIdentifier.init)
            if let old = published[key] {
                if old.version != version || old.size != block.size {
                    changes.removed.append((block, old.entry, old.size))
                    changes.placed.append(block)
                    if let version = old.version { changes.versions.insert(version) }
                } else if old.entry != block.entry {
                    changes.moved.append((block, old.entry))
                } else {
                    continue
                }
            } else {
                changes.placed.append(block)
            }
            if let version { changes.versions.insert(version) }
            published[key] = (block, block.entry, block.size, version)
        }
        for (key, old) in published where !seen.contains(key) {
            changes.removed.append((old.block, old.entry, old.size))
            if let version = old.version { changes.versions.insert(version) }
            published[key] = nil
        }
        return changes
    }
}

extension Loader {
    /// Tells the listeners what changed in the code heap since they were last told; see the
    /// file comment. Call with the lock held and the world running.
    func publishCodeChanges() {
        guard !codeEvents.listeners.isEmpty else { return }
        let changes = codeEvents.difference(from: heap.blocks)
        guard !changes.isEmpty else { return }
        for listener in codeEvents.listeners { listener.codeChanged(changes) }
    }

    /// Adds a listener and tells it of every block there is.
    func addCodeListener(_ listener: CodeListener) {
        lock.locked {
            codeEvents.listeners.append(listener)
            if codeEvents.listeners.count == 1 {
                publishCodeChanges()
            } else {
                // The others already know the blocks: tell only the new one.
                var changes = CodeChanges()
                changes.placed = heap.blocks
                for block in heap.blocks { if let version = block.version { changes.versions.insert(ObjectIdentifier(version)) } }
                if !changes.isEmpty { listener.codeChanged(changes) }
            }
        }
    }
}
