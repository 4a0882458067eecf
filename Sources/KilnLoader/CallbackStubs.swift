// Callback stubs: the stable addresses of functions.
//
// Whenever a function's address is used as a value (stored in data, passed to
// C, returned), code gets the function's callback stub: a 16-byte cell of
// fixed code that jumps to the function's current entry. Stubs never move
// and are never freed while the loader lives (a host may free stubs it asked
// for; see `Loader.freeStub`), so C may keep them. There is one stub per
// function identity — crate name plus function name — shared by every version
// of the function, so taking an address a million times makes one stub.
//
// A live stub is `jmp rel32` to the entry, written with one aligned 8-byte
// store so a thread running through it sees the old or the new target. When
// compaction moves the function, the stub is re-pointed. When the function's
// crate goes away, the stub becomes dead: `lea r11, [rip - 7]; jmp dead`
// (RuntimeRoutines), which reports the function by name instead of jumping
// into freed memory.

import KilnCode

/// One function identity's stub.
final class CallbackStub {
    let address: UInt
    let crateName: String
    let functionName: String
    /// The code the stub jumps to; nil when dead.
    var block: CodeBlock?
    /// Whether code or data of a crate holds the stub's address (then no host may free it).
    var isUsedByCode = false

    init(address: UInt, crateName: String, functionName: String) {
        self.address = address
        self.crateName = crateName
        self.functionName = functionName
    }
}

/// Every stub of a loader, by identity and by address.
struct CallbackStubs {
    struct Identity: Hashable {
        var crate: String
        var function: String
    }

    private(set) var byIdentity: [Identity: CallbackStub] = [:]
    private(set) var byAddress: [UInt: CallbackStub] = [:]
    /// The stubs of each crate name (so a crate's stubs are found without a scan of all).
    private(set) var byCrate: [String: [CallbackStub]] = [:]

    func stub(crate: String, function: String) -> CallbackStub? {
        byIdentity[Identity(crate: crate, function: function)]
    }

    mutating func add(_ stub: CallbackStub) {
        byIdentity[Identity(crate: stub.crateName, function: stub.functionName)] = stub
        byAddress[stub.address] = stub
        byCrate[stub.crateName, default: []].append(stub)
    }

    mutating func remove(_ stub: CallbackStub) {
        byIdentity[Identity(crate: stub.crateName, function: stub.functionName)] = nil
        byAddress[stub.address] = nil
        byCrate[stub.crateName]?.removeAll { $0 === stub }
    }

    /// Calls `body` with every stub that jumps to a function. Allocates nothing.
    func forEachLive(_ body: (CallbackStub) -> Void) {
        for stub in byAddress.values where stub.block != nil { body(stub) }
    }

    /// The stubs of the crate called `name`.
    func stubs(ofCrate name: String) -> [CallbackStub] { byCrate[name] ?? [] }


}

extension Loader {
    /// The stub of function `index` of `crate`'s current version; see `stubAddress(crate:functionName:)`.
    func stubAddress(crate: CrateState, function index: Int, forCode: Bool = true) throws(LoadError) -> UInt {
        try stubAddress(crate: crate, functionName: crate.live.module.functions[index].name, forCode: forCode)
    }

    /// The stub of the function called `functionName` in `crate`, made on first use and
    /// pointed at the current version's block of that name (dead when there is none).
    /// `forCode`: the address goes into a crate's code or data.
    /// With `repointing` false, an existing stub is left as it is (a reload being prepared
    /// must not change what live stubs do) and a new one starts dead.
    func stubAddress(crate: CrateState, functionName name: String, forCode: Bool = true,
                     repointing: Bool = true) throws(LoadError) -> UInt {
        lock.lock()
        defer { lock.unlock() }
        let block = crate.current.flatMap { version in version.functionIndex[unquoted(name)].map { version.blocks[$0] } }
        if let stub = stubs.stub(crate: crate.name, function: unquoted(name)) {
            if stub.block !== block && repointing { point(stub, at: block) }
            stub.isUsedByCode = stub.isUsedByCode || forCode
            return stub.address
        }
        let stub = CallbackStub(address: try heap.allocateFixed(16), crateName: crate.name, functionName: unquoted(name))
        stub.isUsedByCode = forCode
        point(stub, at: repointing ? block : nil)
        stubs.add(stub)
        return stub.address
    }

    /// Points every stub of `crate` at the current version's block of its name, or makes
    /// it dead when the current version has none (after a reload or unload).
    func repointStubs(of crate: CrateState) {
        for stub in stubs.stubs(ofCrate: crate.name) {
            let block = crate.current.flatMap { version in version.functionIndex[stub.functionName].map { version.blocks[$0] } }
            point(stub, at: block)
        }
    }

    /// Frees a stub the host obtained (`CrateState.stub(ofFunction:)`) and no longer needs;
    /// C code that still calls it traps. A stub that crate code or data also holds is not
    /// the host's to free: that is an error.
    public func freeStub(_ address: UnsafeRawPointer) throws(LoadError) {
        lock.lock()
        defer { lock.unlock() }
        guard let stub = stubs.byAddress[UInt(bitPattern: address)] else {
            throw .stubMisuse("0x\(String(UInt(bitPattern: address), radix: 16)) is not a callback stub")
        }
        guard !stub.isUsedByCode else {
            throw .stubMisuse("the stub of $\(stub.functionName) is used by crate code; only stubs a host alone holds can be freed")
        }
        stubs.remove(stub)
        heap.freeFixed(stub.address, count: 16)
    }

    /// The function a stub address stands for, as (crate, function name), or nil.
    public func stubIdentity(_ address: UnsafeRawPointer) -> (crate: String, function: String)? {
        lock.locked { stubs.byAddress[UInt(bitPattern: address)].map { ($0.crateName, $0.functionName) } }
    }

    /// Called by the dead-stub routine: a call through the stub of a function that is gone.
    func deadStubCalled(_ address: UInt) -> Never {
        let stub = lock.locked { stubs.byAddress[address] }
        if let stub {
            let why = registry.byName[stub.crateName] == nil ? "whose crate was unloaded" : "which a reload removed"
            fail("call through the stub of $\(stub.functionName) of crate \(stub.crateName), \(why)")
        }
        fail("call through a freed stub at 0x\(String(address, radix: 16))")
    }
}
