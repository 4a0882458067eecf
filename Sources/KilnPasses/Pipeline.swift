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
    /// Give every temporary one definition (SSA.swift).
    case ssa
}

/// Runs the passes in order over every function of a verified module.
///
/// `after` is called with each pass and the module as it stands once that pass
/// has run over every function.
public func runPipeline(_ module: inout Module, until last: Pass? = nil,
                        after: (Pass, Module) -> Void = { _, _ in }) {
    for pass in Pass.allCases {
        for index in module.functions.indices {
            switch pass {
            case .unreachable: removeUnreachableBlocks(&module.functions[index])
            case .ssa: buildSSA(&module.functions[index], names: &module.names)
            }
        }
        after(pass, module)
        if pass == last { return }
    }
}
