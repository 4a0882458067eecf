// The pass order, in one place.
//
// Each pass says in its own file what it requires, provides and invalidates;
// this list is the order that satisfies them. `kiln check --dump-after PASS`
// prints the module after any of them.

import KilnIL

/// A pass over one function.
public enum Pass: String, CaseIterable, Sendable {
    /// Drop blocks that cannot be reached (ControlFlow.swift).
    case unreachable
    /// Branch straight to where a phi of constants decides (Thread.swift).
    case thread
    /// Turn stack slots used only by whole loads and stores into temporaries (Promote.swift).
    case promote
    /// Give every temporary one definition (SSA.swift).
    case ssa
    /// Fold constants, propagate copies, drop branches never taken (Fold.swift).
    case fold
    /// Remove instructions and phis whose results are unused (DeadCode.swift).
    case dce
    /// Reuse pure computations that dominate their repeats (ValueNumbering.swift).
    case gvn
    /// Move pure computations that do not change in a loop out of it (Hoist.swift).
    case hoist
    /// Reuse values just stored or loaded at the same place (LoadForwarding.swift).
    case loads
}

/// Runs the passes in order over every function of a verified module.
///
/// `after` is called with each pass and the module as it stands once that pass
/// has run over every function.
public func runPipeline(_ module: inout Module, until last: Pass? = nil,
                        after: (Pass, Module) -> Void = { _, _ in }) {
    // Each function's control flow, kept from pass to pass while its graph does not change.
    var flows = [ControlFlow?](repeating: nil, count: module.functions.count)
    let marks = NameMarks()
    for pass in Pass.allCases {
        for index in module.functions.indices {
            switch pass {
            case .unreachable: removeUnreachableBlocks(&module.functions[index])
            case .promote: promoteStackSlots(&module.functions[index], names: &module.names, marks: marks)
            case .ssa: buildSSA(&module.functions[index], names: &module.names, flow: &flows[index], marks: marks)
            case .fold: foldConstants(&module.functions[index], flow: &flows[index])
            case .thread: threadJumps(&module.functions[index])
            case .dce: removeDeadCode(&module.functions[index])
            case .gvn: numberValues(&module.functions[index], flow: &flows[index])
            case .hoist: hoistLoopInvariants(&module.functions[index], flow: &flows[index])
            case .loads:
                forwardLoads(&module.functions[index], flow: &flows[index])
                flows[index] = nil
            }
        }
        after(pass, module)
        if pass == last { return }
    }
}
