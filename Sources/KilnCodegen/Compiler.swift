// The whole compiler, from a verified module to code and data objects.
//
// The order of everything, in one place:
//
//     passes (KilnPasses.runPipeline)   unreachable blocks, SSA
//     selection  (Selection*.swift)     IL -> machine IR, SysV ABI
//     allocation (Allocation.swift)     linear scan
//     emission   (Emission*.swift)      machine IR -> bytes + relocations
//     data       (DataLayout.swift)     data definitions -> bytes + relocations

import KilnCode
import KilnIL
import KilnPasses

/// Time spent in each phase of compiling a module.
public struct PhaseTimes: Sendable {
    public var passes: Duration = .zero
    public var selection: Duration = .zero
    public var allocation: Duration = .zero
    public var emission: Duration = .zero
    public var data: Duration = .zero

    public init() {}
}

/// Choices that change the code generated, beyond the IL itself.
public struct CodegenOptions: Sendable {
    /// Managed field, byte and length accesses go through the runtime, which checks the
    /// reference, the object's kind and the index, and ends the program with a clear error
    /// naming the function when one is wrong (`kiln run --checked`). Off, a wrong access is
    /// undefined, as IL-EXTENSIONS.md says.
    public var checksReferences = false

    public init(checksReferences: Bool = false) {
        self.checksReferences = checksReferences
    }
}

/// Compiles a verified module. Errors name the function and the IL position.
public func compileModule(_ module: Module, times: inout PhaseTimes) throws -> CompiledModule {
    try compileModule(module, options: CodegenOptions(), times: &times)
}

/// Compiles a verified module with `options`.
public func compileModule(_ module: Module, options: CodegenOptions) throws -> CompiledModule {
    var times = PhaseTimes()
    return try compileModule(module, options: options, times: &times)
}

/// Compiles a verified module with `options`, timing each phase.
public func compileModule(_ module: Module, options: CodegenOptions, times: inout PhaseTimes) throws -> CompiledModule {
    let clock = ContinuousClock()
    var module = module
    var start = clock.now
    runPipeline(&module)
    times.passes += clock.now - start
    let symbols = SymbolTable(module)
    var functions: [CodeObject] = []
    functions.reserveCapacity(module.functions.count)
    for function in module.functions {
        start = clock.now
        var selector = Selector(module: module, function: function, symbols: symbols)
        selector.checksReferences = options.checksReferences
        let machine: MachineFunction
        do {
            machine = try selector.run()
        } catch let error as CodegenError {
            throw CompileError(module: module, function: function, message: error.message, location: error.location)
        }
        times.selection += clock.now - start
        start = clock.now
        var scan = LinearScan(machine)
        let allocation = scan.run()
        times.allocation += clock.now - start
        start = clock.now
        var emitter = Emitter(machine: machine, allocation: allocation)
        do {
            functions.append(try emitter.run())
        } catch let error as Emitter.EmissionError {
            throw CompileError(module: module, function: function, message: error.message, location: function.location)
        }
        times.emission += clock.now - start
    }
    start = clock.now
    let data = module.data.map { layOut($0, in: module, symbols: symbols) }
    times.data += clock.now - start
    // The line starts turn the line tables' source offsets into line numbers for crash
    // reports, debuggers and profilers, which see the module without its source.
    return CompiledModule(name: module.source.name, functions: functions, data: data,
                          sourceLineStarts: module.source.lineStarts)
}

/// Compiles a verified module.
public func compileModule(_ module: Module) throws -> CompiledModule {
    var times = PhaseTimes()
    return try compileModule(module, times: &times)
}

/// A failure to compile, as `file:line:col: error: message (in $function)`.
public struct CompileError: Error, CustomStringConvertible {
    public var diagnostic: Diagnostic

    init(module: Module, function: Function, message: String, location: SourceLocation) {
        let place = location == .none ? function.location : location
        diagnostic = Diagnostic(.error, "\(message) (in $\(module.text(function.name)))", at: place, in: module.source)
    }

    public var description: String { diagnostic.description }
}
