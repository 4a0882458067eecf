// Dead code elimination: instructions and phis whose results nobody needs.
//
// Mark and sweep over SSA. The roots are what must happen whatever the
// values: stores, calls and their arguments, parameters, `vastart`, `vaarg`,
// `blit`, the managed-reference operations (they reach the collector), and
// integer division whose divisor may be zero or -1 (it may trap). Jump
// arguments are used. Everything a live instruction or phi reads is live;
// the rest goes, including phis that only feed each other around a loop.
// Dead loads are removed: reading memory has no effect a program may rely on.
//
// Requires: SSA form.
// Provides: every remaining phi and pure instruction has a live result.
// Invalidates: instruction and phi indices.

import KilnIL

/// Removes instructions and phis whose results are unused and that have no effect.
public func removeDeadCode(_ function: inout Function) {
    var live = [Bool](repeating: false, count: function.temps.count)
    var work: [Int] = []
    func use(_ value: Value) {
        if value.isTemp, !live[Int(value.index)] {
            live[Int(value.index)] = true
            work.append(Int(value.index))
        }
    }
    // Where each temporary is defined: an instruction index, or -1 - phi index.
    var definition = [Int](repeating: Int.min, count: function.temps.count)
    for (index, phi) in function.phis.enumerated() { definition[Int(phi.to.index)] = -1 - index }
    for (index, instruction) in function.instructions.enumerated() {
        if instruction.to.isTemp { definition[Int(instruction.to.index)] = index }
        if mustStay(instruction, function) {
            use(instruction.arg0)
            use(instruction.arg1)
        }
    }
    for block in function.blocks { use(block.jump.arg) }
    while let temp = work.popLast() {
        let site = definition[temp]
        if site == Int.min { continue }
        if site >= 0 {
            use(function.instructions[site].arg0)
            use(function.instructions[site].arg1)
        } else {
            for argument in function.arguments(of: function.phis[-1 - site]) { use(argument.value) }
        }
    }
    let keep = function.instructions.map { !$0.to.isTemp || live[Int($0.to.index)] || mustStay($0, function) }
    let phis = function.phis
    guard keep.contains(false) || phis.contains(where: { !live[Int($0.to.index)] }) else { return }
    function.compact(keepingInstruction: { keep[$0] }, keepingPhi: { live[Int(phis[$0].to.index)] })
}

/// Whether an instruction must run even if its result is unused.
func mustStay(_ instruction: Instruction, _ function: Function) -> Bool {
    switch instruction.op {
    case .div, .rem, .udiv, .urem:
        guard instruction.cls.isInteger else { return false }
        guard instruction.arg1.isConstant else { return true }
        let divisor = function.constants[Int(instruction.arg1.index)]
        guard divisor.kind == .bits else { return true }
        let bits = instruction.cls == .w ? divisor.bits & 0xFFFF_FFFF : divisor.bits
        let minusOne: UInt64 = instruction.cls == .w ? 0xFFFF_FFFF : .max
        return bits == 0 || ((instruction.op == .div || instruction.op == .rem) && bits == minusOne)
    case .loadsb, .loadub, .loadsh, .loaduh, .loadsw, .loaduw, .load, .alloc4, .alloc8, .alloc16:
        return false
    default:
        return !instruction.op.isPure
    }
}
