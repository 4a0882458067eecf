// Links between code blocks, kept both ways, so that moving a block costs
// what moves and reloading costs what changed (seed 001's relink section,
// read by pointee *and* by pointer).
//
// For every placed block the loader keeps:
//   - by pointer: `callees`, the block each of its direct calls reaches
//     (a `.function` record: same crate, pc-relative, resolved by name to the
//     current version for code of a retired version), and `movingRecords`,
//     the records whose field changes when the block itself moves;
//   - by pointee: `callers` (the direct calls into it), `boundSlots` (TOC
//     call slots of any crate bound to its entry) and `stub` (the callback
//     stub that jumps to it).
// When a block moves, exactly these are rewritten: its moving records, its
// callers' records, its bound slots and its stub, plus return addresses on
// the stack. Nothing else in the heap refers to a block's entry: data and
// other crates reach functions only through stubs and TOC slots.
//
// The lists change only while the loader's lock is held, and never while the
// world is stopped (compaction reads them, allocating nothing). A block's
// links are cut before it is freed.

import KilnCode

/// Names for the link records (the lists live on `CodeBlock`).
enum CodeLinks {
    /// A direct call into a block: record `record` of `block`.
    struct Caller {
        let block: CodeBlock
        let record: Int32
    }
}

extension Loader {
    /// The block that a direct call of function `index` of `version` reaches: the current
    /// version's function of the same name when `version` is retired and that exists (old
    /// code running after a reload calls the new code), else the version's own block.
    func callee(_ index: Int, of version: CrateVersion, in crate: CrateState) -> CodeBlock {
        if let current = crate.current, current !== version,
           let newest = current.functionIndex[version.bareFunctionNames[index]] {
            return current.blocks[newest]
        }
        return version.blocks[index]
    }

    /// Records, for a block whose records were all just applied, what it points at and
    /// which of its fields move with it; forgets what it pointed at before.
    func noteLinks(of block: CodeBlock, function: CodeObject, of version: CrateVersion, in crate: CrateState) {
        cutOutgoingLinks(of: block)
        var moving: [Int32] = []
        var callees = [CodeBlock?](repeating: nil, count: function.relocations.count)
        for (index, record) in function.relocations.enumerated() {
            if record.kind == .pcRelative32 { moving.append(Int32(index)) }
            guard case .function(let target) = record.target else { continue }
            let reached = callee(target, of: version, in: crate)
            callees[index] = reached
            reached.callers.append(CodeLinks.Caller(block: block, record: Int32(index)))
        }
        block.movingRecords = moving
        block.callees = callees
    }

    /// Points record `record` of `block` (a direct call) at `target`, keeping both lists.
    func retarget(_ block: CodeBlock, record: Int, to target: CodeBlock) {
        if let old = block.callees[record] {
            if old === target { return }
            old.callers.removeAll { $0.block === block && $0.record == Int32(record) }
        }
        block.callees[record] = target
        target.callers.append(CodeLinks.Caller(block: block, record: Int32(record)))
    }

    /// Removes `block` from the callers of everything it calls.
    func cutOutgoingLinks(of block: CodeBlock) {
        for (index, callee) in block.callees.enumerated() {
            guard let callee else { continue }
            callee.callers.removeAll { $0.block === block && $0.record == Int32(index) }
        }
        block.callees = []
    }

    /// Cuts every link of a block about to be freed.
    func cutLinks(of block: CodeBlock) {
        cutOutgoingLinks(of: block)
        for caller in block.callers where !caller.block.isFreed {
            caller.block.callees[Int(caller.record)] = nil
        }
        block.callers = []
        block.boundSlots = []
        // Stubs leave a block before it is freed; one that has not must not jump into freed code.
        if let stub = block.stub, stub.block === block { point(stub, at: nil) }
        block.stub = nil
    }

    /// Frees a block and its links.
    func freeBlock(_ block: CodeBlock) {
        cutLinks(of: block)
        heap.free(block)
    }

    // MARK: Slots and stubs

    /// Notes that call slot `index` of `version` is bound to `block` (nil: unbound).
    func noteBinding(of version: CrateVersion, slot index: Int, to block: CodeBlock?) {
        let slot = version.toc.callSlotAddress(index)
        if let old = version.slotBlocks[index] {
            if old === block { return }
            if let position = old.boundSlots.firstIndex(of: slot) { old.boundSlots.remove(at: position) }
        }
        version.slotBlocks[index] = block
        block?.boundSlots.append(slot)
    }

    /// Forgets every binding of `version`'s call slots (its TOC is going away).
    func forgetBindings(of version: CrateVersion) {
        for index in version.slotBlocks.indices { noteBinding(of: version, slot: index, to: nil) }
    }

    /// Makes `stub` jump to `block` (nil: dead), keeping `block.stub`, and writes it unless
    /// `writing` is false (it was written already).
    func point(_ stub: CallbackStub, at block: CodeBlock?, writing: Bool = true) {
        if let old = stub.block, old !== block, old.stub === stub { old.stub = nil }
        stub.block = block
        block?.stub = stub
        if writing { routines.writeStub(at: stub.address, target: block?.entry, in: heap) }
    }
}
