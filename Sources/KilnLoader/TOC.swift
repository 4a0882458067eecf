// A crate's table of contents: how its code reaches everything outside it.
//
// Layout in memory (the loader's data half, 8-byte words, never moves):
//
//   call slots     one per symbol the crate calls outside itself, in the
//                  order of `CompiledModule.tocLayout`. A slot starts at its
//                  resolver stub (a 16-byte cell of fixed code that enters the
//                  runtime); the first call binds it to the symbol's current
//                  entry (lazy binding). Compaction and relinking rewrite bound
//                  slots when their target moves.
//   address slots  one per symbol whose address the crate uses as a value:
//                  the symbol's stable address (a function's callback stub,
//                  a data object, a C symbol), bound when the crate is linked.
//
// Code reads a slot with a pc-relative operand (`call [rip + slot]`,
// `mov reg, [rip + slot]`). The TOC also knows which crates use this crate
// (`CrateState.users`), so that they can be told when it is reloaded.

/// One crate's TOC; see the file comment.
public struct TOC: Sendable {
    /// The address of the first slot.
    public let address: UInt
    /// Symbols called through call slots, in slot order.
    public let callSlots: [String]
    /// Symbols whose stable addresses the address slots hold, in slot order.
    public let addressSlots: [String]
    /// The resolver stub of each call slot (fixed code).
    public internal(set) var resolverStubs: [UInt]
    /// What each call slot is bound to; nil while it still points at its resolver stub.
    public internal(set) var bindings: [Binding?]
    let callSlotIndex: [String: Int]
    let addressSlotIndex: [String: Int]

    /// What a call slot was bound to.
    public enum Binding: Sendable, Equatable {
        /// A function a crate exports, found again by name when the code moves or the
        /// crate is reloaded.
        case crate(name: String, symbol: String)
        /// A fixed address: a C function or a Kiln runtime routine.
        case address(UInt)
    }

    init(address: UInt, callSlots: [String], addressSlots: [String]) {
        self.address = address
        self.callSlots = callSlots
        self.addressSlots = addressSlots
        self.resolverStubs = []
        self.bindings = Array(repeating: nil, count: callSlots.count)
        self.callSlotIndex = Dictionary(uniqueKeysWithValues: callSlots.enumerated().map { ($1, $0) })
        self.addressSlotIndex = Dictionary(uniqueKeysWithValues: addressSlots.enumerated().map { ($1, $0) })
    }

    /// Bytes the TOC occupies.
    public var size: Int { 8 * (callSlots.count + addressSlots.count) }

    /// The address of call slot `index`.
    public func callSlotAddress(_ index: Int) -> UInt { address + UInt(8 * index) }

    /// The address of address slot `index`.
    public func addressSlotAddress(_ index: Int) -> UInt { address + UInt(8 * (callSlots.count + index)) }

    /// The current contents of a slot.
    public func value(at slotAddress: UInt) -> UInt {
        UnsafeRawPointer(bitPattern: slotAddress)!.load(as: UInt.self)
    }

    func store(_ value: UInt, at slotAddress: UInt) {
        // An aligned 8-byte store: a thread calling through the slot sees the old or the new target.
        UnsafeMutableRawPointer(bitPattern: slotAddress)!.storeBytes(of: value, as: UInt.self)
    }

    /// The call slot index of a slot address of this TOC, or nil.
    func callSlot(at slotAddress: UInt) -> Int? {
        guard slotAddress >= address, slotAddress < address + UInt(8 * callSlots.count),
              (slotAddress - address) % 8 == 0 else { return nil }
        return Int((slotAddress - address) / 8)
    }
}
