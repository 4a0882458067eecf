// Compiling IL in-process, through the libraries, with each phase timed:
// text -> parseAndVerify -> compileModule (passes, selection, allocation,
// emission, data) -> Loader().load into executable memory. Both the `programs`
// and the `compile` benchmarks use it.

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader

/// Seconds spent in each phase of one in-process compile.
struct KilnTimes {
    /// parseAndVerify.
    var frontEnd = 0.0
    /// compileModule as a whole, measured around the call.
    var compile = 0.0
    /// compileModule's own phase times.
    var passes = 0.0
    var selection = 0.0
    var allocation = 0.0
    var emission = 0.0
    var data = 0.0
    /// `Loader()` plus `load(_)`; nil when loading was skipped.
    var load: Double?

    /// Text to code: front end, compileModule and (when it ran) the load.
    var total: Double { frontEnd + compile + (load ?? 0) }

    /// The median of each field over several runs.
    static func median(_ runs: [KilnTimes]) -> KilnTimes {
        func middle(_ field: (KilnTimes) -> Double) -> Double { kiln_bench.median(runs.map(field)) }
        var result = KilnTimes()
        result.frontEnd = middle(\.frontEnd)
        result.compile = middle(\.compile)
        result.passes = middle(\.passes)
        result.selection = middle(\.selection)
        result.allocation = middle(\.allocation)
        result.emission = middle(\.emission)
        result.data = middle(\.data)
        let loads = runs.compactMap(\.load)
        result.load = loads.isEmpty ? nil : kiln_bench.median(loads)
        return result
    }
}

/// Why an in-process compile stopped.
enum KilnFailure: Error, CustomStringConvertible {
    case frontEnd(String)
    case compile(String)
    case load(String)

    var description: String {
        switch self {
        case .frontEnd(let message): "parse/verify error: \(message)"
        case .compile(let message): "compile error: \(message)"
        case .load(let message): "load error: \(message)"
        }
    }
}

/// One compile of `bytes`. With `load`, the module is also loaded into a fresh
/// `Loader` (and released afterwards, outside the timing); if some symbols do not
/// resolve, `load` is nil in the result and `unresolved` lists them.
func compileInProcess(name: String, bytes: [UInt8], load: Bool) throws(KilnFailure)
    -> (times: KilnTimes, unresolved: [String]) {
    var times = KilnTimes()
    var parsed: (Module, [Diagnostic])?
    times.frontEnd = seconds { parsed = parseAndVerify(SourceFile(name: name, bytes: bytes)) }
    let (module, diagnostics) = parsed!
    parsed = nil
    if let error = diagnostics.first(where: { $0.severity == .error }) {
        throw .frontEnd(error.rendered)
    }

    var phases = PhaseTimes()
    var compiled: CompiledModule?
    var compileError: (any Error)?
    times.compile = seconds {
        do { compiled = try compileModule(module, times: &phases) } catch { compileError = error }
    }
    if let compileError { throw .compile("\(compileError)") }
    times.passes = phases.passes.seconds
    times.selection = phases.selection.seconds
    times.allocation = phases.allocation.seconds
    times.emission = phases.emission.seconds
    times.data = phases.data.seconds
    guard load else { return (times, []) }

    var loaded: Crate?
    var loadError: LoadError?
    let loadTime = seconds {
        do throws(LoadError) {
            loaded = try Loader().load(compiled!)
        } catch {
            loadError = error
        }
    }
    loaded = nil
    _ = loaded
    switch loadError {
    case nil:
        times.load = loadTime
        return (times, [])
    case .unresolvedSymbols(let symbols):
        return (times, symbols.map(\.symbol))
    case let error?:
        throw .load("\(error)")
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
