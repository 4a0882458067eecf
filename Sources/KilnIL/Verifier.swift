// The verifier: every rule a parsed module must satisfy to be compiled.
//
// Requires: a module from `parseModule` (any module the parser returns, even
// one with parse errors, is safe to verify).
// Provides: `Temp.cls` filled in for every defined temporary; a diagnostic for
// every violated rule, in file order.
// The rules are QBE's (parse.c's typecheck plus the checks its later passes
// make with a crash or an assembler error) and Kiln's own for managed
// references and runtime services (docs/IL-EXTENSIONS.md).

/// Verifies a module, filling in the class of every temporary. Returns all diagnostics found.
public func verifyModule(_ module: inout Module) -> DiagnosticList {
    let verifier = Verifier(module: module)
    verifier.checkDefinitions()
    for index in module.functions.indices {
        verifier.checkFunction(&module.functions[index])
    }
    verifier.diagnostics.sortByLocation()
    return verifier.diagnostics
}

/// Parses and verifies a file: the front end in one call. Diagnostics are in file order.
public func parseAndVerify(_ source: SourceFile) -> (Module, [Diagnostic]) {
    var (module, parseDiagnostics) = parseModule(source)
    let verifyDiagnostics = verifyModule(&module)
    var all = parseDiagnostics
    for diagnostic in verifyDiagnostics.all { all.append(diagnostic) }
    all.sortByLocation()
    return (module, all.all)
}

extension DiagnosticList {
    mutating func append(_ diagnostic: Diagnostic) {
        if diagnostic.severity == .error {
            error(diagnostic.message, at: diagnostic.location)
        } else {
            warning(diagnostic.message, at: diagnostic.location)
        }
    }
}

final class Verifier {
    let module: Module
    var diagnostics: DiagnosticList
    /// Every function and data name defined in the module, and whether it is thread-local data.
    var symbols: [Name: (location: SourceLocation, isThread: Bool, isFunction: Bool)] = [:]

    init(module: Module) {
        self.module = module
        self.diagnostics = DiagnosticList(file: module.source)
    }

    func text(_ name: Name) -> String { module.text(name) }

    func position(_ location: SourceLocation) -> String {
        let (line, column) = module.source.lineAndColumn(of: location)
        return "\(line):\(column)"
    }

    // MARK: Module level

    func checkDefinitions() {
        // In file order, so that "defined twice" points at the second definition in the text.
        for definition in module.definitions {
            switch definition {
            case .function(let index):
                let function = module.functions[index]
                define(function.name, at: function.location, isThread: false, isFunction: true)
            case .data(let index):
                let data = module.data[index]
                define(data.name, at: data.location, isThread: data.linkage.isThread, isFunction: false)
            case .type, .debugFile:
                break
            }
        }
        for data in module.data { checkData(data) }
        checkTypes()
    }

    func define(_ name: Name, at location: SourceLocation, isThread: Bool, isFunction: Bool) {
        if let first = symbols[name] {
            diagnostics.error("symbol $\(text(name)) is defined twice (first at \(position(first.location)))", at: location)
            return
        }
        if text(name).hasPrefix("kiln.") {
            diagnostics.error("the names $kiln.* are reserved for runtime services", at: location)
        }
        symbols[name] = (location, isThread, isFunction)
    }

    func checkTypes() {
        for type in module.types where type.isOpaque == false && type.variants.allSatisfy(\.isEmpty) {
            diagnostics.warning("type :\(text(type.name)) has no fields", at: type.location)
        }
    }

    func checkData(_ data: DataDefinition) {
        if data.linkage.isCommon && !data.isZeroFill {
            diagnostics.error("common data $\(text(data.name)) may only hold zero fill (z N)", at: data.location)
        }
        for item in data.items {
            switch item.kind {
            case .string:
                if item.type != .b || item.isManaged {
                    diagnostics.error("strings are only allowed in b items", at: item.location)
                }
            case .bits(let bits):
                if item.isManaged {
                    if item.floatKind != .none || bits & 1 != 0 {
                        diagnostics.error("a managed (r) data item must start as an even integer, a tagged integer", at: item.location)
                    }
                } else if item.floatKind == .none && !fits(bits, bytes: item.type.size) {
                    diagnostics.warning("value \(Int64(bitPattern: bits)) does not fit in a \(item.type.letter) item and is truncated",
                                        at: item.location)
                } else if item.floatKind != .none && item.type.size < 4 {
                    diagnostics.warning("floating-point literal in a \(item.type.letter) item is truncated", at: item.location)
                }
            case .address(let symbol, _):
                if item.isManaged {
                    diagnostics.error("a managed (r) data item cannot hold a symbol address", at: item.location)
                } else if item.type.size < 4 {
                    // A `w` item holds an address below 4 GiB, where Kiln places code and data
                    // when it can (QBE's non-PIE output links it too); nothing lies low enough
                    // for `b` or `h`: no mapping starts below 64 KiB.
                    diagnostics.error("a symbol address does not fit in \(8 * item.type.size) bits (\(item.type.letter) item); "
                                      + "use l, or w for addresses below 4 GiB", at: item.location)
                }
                if let target = symbols[symbol], target.isThread {
                    diagnostics.error("thread-local $\(text(symbol)) has no fixed address to store in data", at: item.location)
                }
            case .zero:
                break
            }
        }
    }

    /// Whether `bits` is representable, signed or unsigned, in `bytes` bytes.
    func fits(_ bits: UInt64, bytes: Int) -> Bool {
        if bytes >= 8 { return true }
        let width = UInt64(bytes * 8)
        let signed = Int64(bitPattern: bits)
        return bits < 1 << width || (signed < 0 && signed >= -(1 << (width - 1)))
    }
}
