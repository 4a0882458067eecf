// The code collector: frees code that nothing can reach any more.
//
// A block is alive while one of these reaches it:
//   - it belongs to the current version of a loaded crate (its TOC, its
//     records and its callback stubs can call it);
//   - a return address on the stack points into it (a call in progress), or
//     another word of the stack does (conservatively);
//   - a live block of a retired version calls it directly (old code calling a
//     function the reload removed).
// Callback stubs always point at current blocks (or are dead), so they add no
// roots of their own. Everything else of a retired version — blocks, and once
// its last block is gone its TOC, resolver stubs and the data it still owns —
// is freed, and a crate that was unloaded disappears with its last version.
// The stacks and registers of every thread are scanned (RootScan.swift); when
// some thread could not be examined, nothing is freed.

import KilnCode

extension Loader {
    /// Frees unreachable code now, scanning the calling thread's stack conservatively.
    /// Returns the number of blocks freed.
    @discardableResult
    public func collectCode() -> Int {
        lock.lock()
        defer { lock.unlock() }
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        return collectCode(framePointer: nil, low: low)
    }

    /// Frees the blocks of retired versions that no thread and no live code reaches.
    func collectCode(framePointer: UInt?, low: UInt) -> Int {
        guard !registry.unloaded.isEmpty || registry.loaded.contains(where: { !$0.retired.isEmpty }) else { return 0 }
        return collectCode(scan: scanAllThreads(framePointer: framePointer, low: low))
    }

    /// Frees the blocks of retired versions that nothing in `scan` or in live code reaches.
    func collectCode(scan: RootScan) -> Int {
        // A thread that could not be examined may be running any retired code.
        guard scan.isComplete else { return 0 }
        let marked = reachableBlocks(scan: scan, explaining: false).ids
        var freed = 0
        for crate in registry.all {
            crate.retired.removeAll { version in
                for block in version.blocks where block.version === version && !block.isFreed && !marked.contains(block.id) {
                    freeBlock(block)
                    freed += 1
                }
                let holdsCode = version.blocks.contains { $0.version === version && !$0.isFreed }
                // A thread inside the resolver may be about to bind a slot of this version's
                // TOC (it waits for the loader's lock): the TOC stays for a later collection.
                guard !holdsCode, scan.threadsBinding == 0 else { return false }
                release(version, of: crate)
                return true
            }
        }
        registry.unloaded.removeAll { crate in
            guard crate.retired.isEmpty else { return false }
            // The crate is gone for good: its replaced data goes with it.
            freeReplacedData(of: crate)
            return true
        }
        statistics.blocksCollected += freed
        publishCodeChanges()
        return freed
    }

    /// The blocks that are alive, with the first reason found for each.
    func reachableBlocks(scan: RootScan, explaining: Bool) -> (ids: Set<UInt32>, reasons: [UInt32: String]) {
        var marked = Set<UInt32>()
        var reasons: [UInt32: String] = [:]
        var work: [CodeBlock] = []
        func mark(_ block: CodeBlock, _ reason: @autoclosure () -> String) {
            guard !block.isFreed, marked.insert(block.id).inserted else { return }
            if explaining { reasons[block.id] = reason() }
            work.append(block)
        }
        // Current code reaches only current code, so collecting (which frees retired code
        // only) need not walk it; explaining does, to name every live block's reason.
        if explaining {
            for crate in registry.loaded {
                guard let current = crate.current else { continue }
                for block in current.blocks { mark(block, "current version \(current.number) of crate \(crate.name)") }
            }
        }
        for frame in scan.frames { mark(frame.block, "a call in progress returns into it") }
        for block in scan.pinned { mark(block, "a word on the stack points into it") }
        if !explaining && registry.unloaded.isEmpty && !registry.loaded.contains(where: { !$0.retired.isEmpty }) { return (marked, reasons) }
        while let block = work.popLast() {
            // Current blocks call only current blocks (already marked) by name.
            guard let version = block.version, let crate = block.crate, version !== crate.current else { continue }
            for record in version.module.functions[block.functionIndex].relocations {
                guard case .function(let index) = record.target else { continue }
                let name = version.module.functions[index].name
                if crate.current?.functionIndex[unquoted(name)] == nil {
                    mark(version.blocks[index], "called by $\(block.name) of retired version \(version.number), which is alive")
                }
            }
        }
        return (marked, reasons)
    }

    /// Frees what a retired version owns besides its blocks.
    private func release(_ version: CrateVersion, of crate: CrateState) {
        // Data stays: C code may hold a pointer to it anywhere (Reload.swift).
        for (index, object) in version.module.data.enumerated() where version.ownsData[index] {
            if let address = version.dataAddresses[index] { crate.replacedData.append((address, object.size)) }
            version.ownsData[index] = false
        }
        for range in version.ownedThreadData { ThreadLocalData.unregister(offset: range.offset, size: range.size) }
        version.ownedThreadData = []
        guard version.ownsTOC else { return }
        version.ownsTOC = false
        forgetBindings(of: version)
        heap.freeData(version.toc.address, count: version.toc.size)
        for (index, stub) in version.toc.resolverStubs.enumerated() {
            let slot = version.toc.callSlotAddress(index)
            if registry.callSlotOwners[slot]?.version === version { registry.callSlotOwners[slot] = nil }
            heap.freeFixed(stub, count: 16)
        }
    }

    /// Frees the storage of data objects that reloads replaced in `crate` (see "Which data
    /// old and new code see" in Reload.swift). The host says no pointer to them is left:
    /// C code still holding one reads whatever is allocated there next.
    public func releaseReplacedData(of crate: Crate) {
        lock.locked { freeReplacedData(of: crate.state) }
    }

    /// Bytes of data that reloads replaced and that stay until released or unloaded.
    public var replacedDataBytes: Int {
        lock.locked { registry.all.reduce(0) { $0 + $1.replacedData.reduce(0) { $0 + $1.size } } }
    }

    func freeReplacedData(of crate: CrateState) {
        for (address, size) in crate.replacedData { heap.freeData(address, count: size) }
        crate.replacedData = []
    }

    /// Why each live block is alive, for `kiln run --stats` and tools: one line per block.
    public func liveBlockReasons() -> [(block: CodeBlock, reason: String)] {
        lock.lock()
        defer { lock.unlock() }
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        let (_, reasons) = reachableBlocks(scan: scanAllThreads(framePointer: nil, low: low), explaining: true)
        return heap.blocks.map { ($0, reasons[$0.id] ?? "unreachable: freed at the next collection") }
    }

    /// Unloads `crate`: its exports disappear, calls into it from other crates fail with a
    /// clear error, its stubs report that it is gone, and its code is freed when no call
    /// in progress runs in it. Refused while another crate holds an address of its exports.
    public func unload(_ crate: Crate) throws(LoadError) {
        try unload(crate.state)
    }

    func unload(_ crate: CrateState) throws(LoadError) {
        lock.lock()
        defer { lock.unlock() }
        defer { publishCodeChanges() }
        guard let current = crate.current, registry.byName[crate.name] === crate else { throw .notLoaded(crate.name) }
        var holders: [String: [String]] = [:]
        for user in registry.userStates(of: crate) where user !== crate {
            for version in user.versions {
                for name in version.externalValues.keys where registry.exports[unquoted(name)]?.crate === crate {
                    if holders[name]?.contains(user.name) != true { holders[name, default: []].append(user.name) }
                }
            }
        }
        guard holders.isEmpty else {
            throw .unloadRefused(crate: crate.name, holders.sorted { $0.key < $1.key }.map {
                UnresolvedSymbol(symbol: $0.key, users: $0.value, crate: crate.name)
            })
        }
        let users = registry.userStates(of: crate)
        registry.forgetUses(of: crate)
        registry.unregisterExports(of: crate)
        registry.byName[crate.name] = nil
        registry.loaded.removeAll { $0 === crate }
        crate.retired.insert(current, at: 0)
        crate.current = nil
        registry.unloaded.append(crate)
        rebindCallSlots(in: users) { $0 == crate.name }
        repointStubs(of: crate)
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        _ = collectCode(framePointer: nil, low: low)
    }
}
