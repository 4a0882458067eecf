// Labels: positions in a CodeBuffer that branches may name before they exist.
//
// Lifecycle: `makeLabel()` creates an unbound label; any number of branches
// (`jmp(to:)`, `jcc(_:to:)`, `call(to:)`) and RIP-relative operands
// (`Memory.rip(label)`) may refer to it; `bind(_:)` fixes it at the current
// offset, exactly once. A reference to a label that is already bound is
// resolved on the spot, and a branch then takes the 2-byte rel8 form when the
// target is within reach. A reference to an unbound label always writes a
// 32-bit field and queues a fixup; `bind` patches every queued fixup of that
// label. `finish()` reports a label that was referenced but never bound.
//
// Mistakes a code generator can make at run time (binding twice, forgetting
// to bind) are thrown as `LabelError`. Using a label that this buffer did not
// make is a programming error and traps.
//
// Storage: per label, its offset (-1 while unbound) and the head of a singly
// linked list of pending fixups; the fixups themselves sit in one flat array,
// so making and binding labels allocates nothing per label beyond two slots.

/// A position in a `CodeBuffer`, made by `makeLabel()` and fixed by `bind(_:)`.
///
/// A label belongs to the buffer that made it and is valid until that buffer's
/// `removeAll()`.
public struct Label: Hashable, Sendable, CustomStringConvertible {
    /// The label's number within its buffer, counting from 0.
    public let id: Int32

    @inlinable init(id: Int32) { self.id = id }

    /// `L<id>`.
    public var description: String { "L\(id)" }
}

/// A misuse of labels that the code generator can hit at run time.
public enum LabelError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `bind` was called on a label that was already bound at `offset`.
    case boundTwice(Label, offset: Int)
    /// A label was referenced but never bound.
    case unbound(Label)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case .boundTwice(let label, let offset):
            return "label \(label) bound twice (first bound at offset \(offset))"
        case .unbound(let label):
            return "label \(label) is referenced but never bound"
        }
    }
}

/// Offsets of labels and the fixups that wait for them.
@usableFromInline struct LabelTable {
    /// A 32-bit PC-relative field waiting for its label: it will hold
    /// `label + addend - instructionEnd`.
    struct Fixup {
        var field: Int32
        var instructionEnd: Int32
        var addend: Int32
        var next: Int32
    }

    var offsets: [Int32] = []
    var firstFixup: [Int32] = []
    var fixups: [Fixup] = []

    @usableFromInline init() {}
}

extension CodeBuffer {
    /// Makes room for `count` more labels, so making them one by one does not grow the table
    /// again and again.
    public mutating func reserveLabels(_ count: Int) {
        labels.offsets.reserveCapacity(labels.offsets.count + count)
        labels.firstFixup.reserveCapacity(labels.firstFixup.count + count)
    }

    /// Makes a new, unbound label.
    public mutating func makeLabel() -> Label {
        let id = Int32(labels.offsets.count)
        labels.offsets.append(-1)
        labels.firstFixup.append(-1)
        return Label(id: id)
    }

    /// Binds `label` to the current offset and patches every branch and
    /// RIP-relative operand already waiting for it.
    ///
    /// Throws `LabelError.boundTwice` (and changes nothing) if it was bound before.
    public mutating func bind(_ label: Label) throws(LabelError) {
        let id = checked(label)
        let previous = labels.offsets[id]
        if previous >= 0 { throw .boundTwice(label, offset: Int(previous)) }
        let target = Int32(used)
        labels.offsets[id] = target
        var next = labels.firstFixup[id]
        labels.firstFixup[id] = -1
        while next >= 0 {
            let fixup = labels.fixups[Int(next)]
            let relative = target &+ fixup.addend &- fixup.instructionEnd
            patch32(at: Int(fixup.field), UInt32(bitPattern: relative))
            next = fixup.next
        }
    }

    /// The offset `label` was bound to, or nil while it is unbound.
    public func offset(of label: Label) -> Int? {
        let offset = labels.offsets[checked(label)]
        return offset >= 0 ? Int(offset) : nil
    }

    /// Checks that every referenced label was bound, so that every branch and
    /// RIP-relative operand in the buffer holds its final displacement.
    ///
    /// Throws `LabelError.unbound` for the first label still waiting.
    public func finish() throws(LabelError) {
        for (id, head) in labels.firstFixup.enumerated() where head >= 0 {
            throw .unbound(Label(id: Int32(id)))
        }
    }

    /// The labels referenced but not yet bound, in order of creation.
    public var unboundReferencedLabels: [Label] {
        labels.firstFixup.indices.filter { labels.firstFixup[$0] >= 0 }.map { Label(id: Int32($0)) }
    }

    private func checked(_ label: Label) -> Int {
        let id = Int(label.id)
        precondition(id < labels.offsets.count, "label \(label) was not made by this CodeBuffer")
        return id
    }

    /// Appends a 32-bit PC-relative field that will hold
    /// `label + addend - instructionEnd`, where the instruction ends
    /// `trailingBytes` after the field. Patched now if the label is bound,
    /// otherwise when it is.
    mutating func emitRelative32(to label: Label, addend: Int32 = 0, trailingBytes: Int = 0) {
        let id = checked(label)
        let field = Int32(used)
        let end = field + 4 + Int32(trailingBytes)
        let target = labels.offsets[id]
        if target >= 0 {
            emit32(UInt32(bitPattern: target &+ addend &- end))
            return
        }
        emit32(0)
        let index = Int32(labels.fixups.count)
        labels.fixups.append(
            .init(field: field, instructionEnd: end, addend: addend, next: labels.firstFixup[id]))
        labels.firstFixup[id] = index
    }
}
