// Load forwarding: a load that reads what the program just stored or loaded
// at the same place takes that value instead of going to memory.
//
// Addresses are split into a base and a constant offset by following `add`
// and `sub` of constants; a base is a stack slot (`alloc`), a symbol, or any
// other temporary. Walking each block in order, the pass keeps the values
// known to be in memory: what each store wrote and what each load read. A
// store forgets every entry it may overlap. Two places cannot overlap when
// they have the same base and disjoint byte ranges, or different slots or
// symbols, or when one is a slot whose address never escapes (it is only ever
// the address of loads and stores, directly or at a constant offset) and the
// other is not that slot. Calls, `blit`, `vastart`, `vaarg` and the managed
// operations forget everything except non-escaping slots. A block with a single
// predecessor starts from what was known at the end of that predecessor.
//
// Only exact reads are forwarded: the same width at the same place, or the
// low word of a stored long. A load of
// the stored width gives the stored value itself (a `copy` when the class
// differs), sub-word and 32-bit sign or zero extending loads become the
// matching extension of it, and a load after an identical load reuses its
// result. Floats stored are read back only as the same float class.
//
// Requires: SSA form.
// Provides: fewer loads; nothing else changes.
// Invalidates: instruction indices.

import KilnIL

/// Where an access goes: a base and a byte offset from it.
private struct Place: Hashable {
    enum Base: Hashable {
        case slot(UInt32)
        case symbol(UInt32, isThreadLocal: Bool)
        case other(Value)
    }
    var base: Base
    var offset: Int64
}

/// A value known to be in memory.
private struct Known {
    var place: Place
    var width: Int64
    /// The store or load that put it there; for loads, normalised (see `signature`).
    var op: Opcode
    var cls: Class
    var value: Value
}

/// Forwards stored and loaded values to later loads of the same place.
public func forwardLoads(_ function: inout Function) {
    var flow: ControlFlow?
    forwardLoads(&function, flow: &flow)
}

/// The same, sharing the control flow with the passes before it (computed if absent; the
/// graph does not change).
func forwardLoads(_ function: inout Function, flow: inout ControlFlow?) {
    guard !function.blocks.isEmpty, function.instructions.contains(where: { $0.op.isLoad }) else { return }
    if flow == nil { flow = ControlFlow(function, dominators: false) }
    var forwarder = LoadForwarder(function, flow!)
    forwarder.run()
    function = forwarder.function
}

private struct LoadForwarder {
    var function: Function
    let flow: ControlFlow
    var pool: ConstantPool
    var places: [Place?]
    var escapes: [Bool]
    var substitution: Substitution
    var removed: [Bool]
    /// At most this many values are remembered per block: the search is linear.
    let capacity = 64

    init(_ function: Function, _ flow: ControlFlow) {
        self.function = function
        self.flow = flow
        pool = ConstantPool(function)
        places = Array(repeating: nil, count: function.temps.count)
        escapes = Array(repeating: false, count: function.temps.count)
        substitution = Substitution(tempCount: function.temps.count)
        removed = Array(repeating: false, count: function.instructions.count)
    }

    mutating func run() {
        findPlaces()
        var endState = Array(repeating: [Known]?.none, count: function.blocks.count)
        for block in flow.reversePostorder {
            let predecessors = flow.predecessors[block]
            var state = predecessors.count == 1 ? endState[predecessors.first!] ?? [] : []
            for index in function.blocks[block].instructionRange { step(index, &state) }
            endState[block] = state
        }
        guard removed.contains(true) else { return }
        let removed = self.removed
        function.compact(keepingInstruction: { !removed[$0] })
        function.apply(substitution)
    }

    /// The place an address operand designates.
    func place(_ value: Value) -> Place {
        if value.isConstant {
            let constant = function.constants[Int(value.index)]
            if constant.kind == .address {
                return Place(base: .symbol(constant.symbol.index, isThreadLocal: constant.isThreadLocal),
                             offset: Int64(bitPattern: constant.bits))
            }
        } else if value.isTemp, let known = places[Int(value.index)] {
            return known
        }
        return Place(base: .other(value), offset: 0)
    }

    /// Bases and offsets of address temporaries, in dominator order; then which slots escape.
    mutating func findPlaces() {
        for block in flow.reversePostorder {
            for instruction in function.instructions[function.blocks[block].instructionRange]
            where instruction.to.isTemp {
                let to = instruction.to
                switch instruction.op {
                case .alloc4, .alloc8, .alloc16:
                    places[Int(to.index)] = Place(base: .slot(to.index), offset: 0)
                case .add, .sub:
                    guard instruction.cls == .l else { continue }
                    var (pointer, offset) = (instruction.arg0, instruction.arg1)
                    if instruction.op == .add, pointer.isConstant, offset.isTemp { swap(&pointer, &offset) }
                    guard pointer.isTemp, offset.isConstant,
                          function.constants[Int(offset.index)].kind == .bits else { continue }
                    var bits = Int64(bitPattern: function.constants[Int(offset.index)].bits)
                    if instruction.op == .sub { bits = 0 &- bits }
                    let base = place(pointer)
                    places[Int(to.index)] = Place(base: base.base, offset: base.offset &+ bits)
                default:
                    break
                }
            }
        }
        func escape(_ value: Value) {
            guard value.isTemp, case .slot(let slot)? = places[Int(value.index)]?.base else { return }
            escapes[Int(slot)] = true
        }
        for instruction in function.instructions {
            if instruction.op.isStore && instruction.op != .storer {
                escape(instruction.arg0)
            } else if isRawLoad(instruction.op) {
                continue
            } else if (instruction.op == .add || instruction.op == .sub), instruction.to.isTemp,
                      let derived = places[Int(instruction.to.index)], case .slot = derived.base {
                continue
            } else {
                escape(instruction.arg0)
                escape(instruction.arg1)
            }
        }
        for argument in function.phiArguments { escape(argument.value) }
        for block in function.blocks { escape(block.jump.arg) }
    }

    func isRawLoad(_ op: Opcode) -> Bool { op.isLoad && op != .loadr }

    func isPrivate(_ base: Place.Base) -> Bool {
        if case .slot(let slot) = base { return !escapes[Int(slot)] }
        return false
    }

    func mayOverlap(_ a: Place, _ aWidth: Int64, _ b: Place, _ bWidth: Int64) -> Bool {
        if a.base == b.base { return a.offset < b.offset &+ bWidth && b.offset < a.offset &+ aWidth }
        if isPrivate(a.base) || isPrivate(b.base) { return false }
        switch (a.base, b.base) {
        case (.slot, .slot), (.slot, .symbol), (.symbol, .slot), (.symbol, .symbol): return false
        default: return true
        }
    }

    mutating func step(_ index: Int, _ state: inout [Known]) {
        let instruction = function.instructions[index]
        let op = instruction.op
        if op.isStore && op != .storer {
            let place = place(instruction.arg1)
            let width = storeWidth(op)
            state.removeAll { mayOverlap($0.place, $0.width, place, width) }
            remember(Known(place: place, width: width, op: op, cls: instruction.cls,
                           value: substitution.resolve(instruction.arg0)), &state)
        } else if isRawLoad(op) {
            let place = place(instruction.arg0)
            let (loadOp, width) = signature(op, instruction.cls)
            // The low half of a stored long is a word at the same place (little-endian).
            if let known = state.last(where: {
                $0.place == place && ($0.width == width || (width == 4 && $0.op == .storel))
            }),
               forward(known, to: index, loadOp) {
                return
            }
            remember(Known(place: place, width: width, op: loadOp, cls: instruction.cls, value: instruction.to),
                     &state)
        } else if !(op.isPure || op.isParameter || op.isArgument || op == .dbgloc
                    || op == .alloc4 || op == .alloc8 || op == .alloc16) {
            state.removeAll { !isPrivate($0.place.base) }
        }
    }

    func remember(_ known: Known, _ state: inout [Known]) {
        if state.count >= capacity { state.removeFirst() }
        state.append(known)
    }

    func storeWidth(_ op: Opcode) -> Int64 {
        switch op {
        case .storeb: 1
        case .storeh: 2
        case .storew, .stores: 4
        default: 8
        }
    }

    /// A load's width, and its opcode with the sign or zero extension dropped where it changes nothing.
    func signature(_ op: Opcode, _ cls: Class) -> (Opcode, Int64) {
        switch op {
        case .loadsb, .loadub: (op, 1)
        case .loadsh, .loaduh: (op, 2)
        case .loadsw, .loaduw: cls == .w ? (.load, 4) : (op, 4)
        default: (.load, cls == .w || cls == .s ? 4 : 8)
        }
    }

    /// Replaces the load at `index` by what `known` says is in memory; false when not exact.
    mutating func forward(_ known: Known, to index: Int, _ loadOp: Opcode) -> Bool {
        let load = function.instructions[index]
        let cls = load.cls
        if !known.op.isStore {
            guard known.op == loadOp, known.cls == cls else { return false }
            return replace(index, by: known.value)
        }
        let storedClass: Class = switch known.op {
        case .stores: .s
        case .stored: .d
        case .storel: .l
        default: .w
        }
        let extend: Opcode? = switch loadOp {
        case .loadsb: .extsb
        case .loadub: .extub
        case .loadsh: .extsh
        case .loaduh: .extuh
        case .loadsw: .extsw
        case .loaduw: .extuw
        default: nil
        }
        if let extend {
            guard storedClass == .w || storedClass == .l else { return false }
            return rewrite(index, as: extend, known.value)
        }
        // A whole-width load: the stored bits, read in the load's class.
        switch (storedClass, cls) {
        case (.w, .w), (.l, .l), (.s, .s), (.d, .d), (.l, .w): break
        default: return false
        }
        return rewrite(index, as: .copy, known.value)
    }

    /// Turns the load into `op value`, folded to a constant or a same-class temporary when possible.
    mutating func rewrite(_ index: Int, as op: Opcode, _ value: Value) -> Bool {
        let load = function.instructions[index]
        if value.isConstant, let folded = evaluate(op, load.cls, function.constants[Int(value.index)], nil) {
            if folded.kind == .address && folded.isThreadLocal { return false }
            return replace(index, by: pool.value(folded, in: &function))
        }
        if op == .copy, value.isTemp, function.temps[Int(value.index)].cls == load.cls {
            return replace(index, by: value)
        }
        function.instructions[index] = Instruction(op, load.cls, to: load.to, value, at: load.location)
        return true
    }

    mutating func replace(_ index: Int, by value: Value) -> Bool {
        substitution.replacement[Int(function.instructions[index].to.index)] = value
        removed[index] = true
        return true
    }
}
