// libFuzzer entry point for the IL front end.
//
// Built by scripts/fuzz-frontend.sh together with every file of Sources/KilnIL
// into one module, so there is no `import KilnIL`: the front end's types are
// this module's own. Each input is parsed and verified; any trap is a finding.
// On top of "does not crash" the harness checks what the front end promises:
// every diagnostic points into the file and renders, and a module without
// errors prints to text that parses and verifies without errors and prints
// back identically (the printer's round trip). A broken promise traps with
// both texts so the finding explains itself.

/// Called by libFuzzer once per input; returns 0 (the input is never rejected).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrontEnd(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    checkFrontEnd(bytes)
    return 0
}

/// Runs the front end on one input and traps if a promise is broken.
func checkFrontEnd(_ bytes: [UInt8]) {
    let source = SourceFile(name: "input.ssa", bytes: bytes)
    let (module, diagnostics) = parseAndVerify(source)
    checkDiagnostics(diagnostics, in: source)
    guard !diagnostics.contains(where: { $0.severity == .error }) else { return }

    let printed = module.printed()
    let reprintedSource = SourceFile(name: "printed.ssa", text: printed)
    let (reparsed, reparseDiagnostics) = parseAndVerify(reprintedSource)
    checkDiagnostics(reparseDiagnostics, in: reprintedSource)
    let errors = reparseDiagnostics.filter { $0.severity == .error }
    if !errors.isEmpty {
        fatalError("""
            printed module does not parse back
            --- input ---
            \(String(decoding: bytes, as: UTF8.self))
            --- printed ---
            \(printed)
            --- errors ---
            \(errors.map(\.rendered).joined(separator: "\n"))
            """)
    }
    let reprinted = reparsed.printed()
    if reprinted != printed {
        fatalError("""
            printing is not stable
            --- input ---
            \(String(decoding: bytes, as: UTF8.self))
            --- printed ---
            \(printed)
            --- printed again ---
            \(reprinted)
            """)
    }
}

/// Every diagnostic must point into its file (or be `.none`) and render.
func checkDiagnostics(_ diagnostics: [Diagnostic], in source: SourceFile) {
    for diagnostic in diagnostics {
        let offset = diagnostic.location.offset
        if diagnostic.location != .none && Int(offset) > source.bytes.count {
            fatalError("diagnostic at offset \(offset) past the end (\(source.bytes.count) bytes): \(diagnostic.message)")
        }
        if diagnostic.rendered.isEmpty { fatalError("diagnostic renders as nothing: \(diagnostic.message)") }
    }
}
