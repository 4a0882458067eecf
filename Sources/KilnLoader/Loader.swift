// The loader: places compiled modules in an executable region, resolves their
// symbols and applies their relocation records.
//
// Loading a module, in order (nothing is allocated until every check passes):
//   1. check the module (indices, field bounds, alignments, thread-data use);
//   2. resolve every external symbol (see `resolve(_:)` for the order) and
//      report all unresolved ones together, each with its users;
//   3. place code objects (16-byte aligned) in the code half, data objects
//      (at their alignment) and one 8-byte slot per `.slot(name)` symbol in the
//      data half; register thread-local data with the thread-block layout;
//   4. write the bytes (code through the region's writable alias) and apply
//      every relocation through `Relocation.fieldBytes`.
//
// Names: `CodeObject.name` keeps the quotes of a quoted IL name (`"foo.bar"`);
// lookups accept either form, and dlsym gets the name without quotes.
//
// Lifetime: a `Loader` owns its region and its dlopen handles; every
// `LoadedModule` holds its loader, so the memory stays mapped while any module
// is alive. A failed load may leave unused bytes in the region and the
// thread-block layout; they are not reused yet.

import KilnCode

/// Loads `CompiledModule`s into one executable region and links them.
///
/// Not thread-safe: load from one thread. Loaded code may run on any thread.
public final class Loader {
    var region: ExecutableRegion
    /// dlopen handles of libm and the `--link` libraries, searched in this order.
    private var libraries: [(path: String, handle: UnsafeMutableRawPointer)] = []
    /// Exported symbols of the modules loaded so far (names without quotes).
    private var exports: [String: UInt] = [:]

    /// Reserves a region of `regionSize` bytes, opens libm, then each of `linkLibraries`.
    public init(regionSize: Int = 1 << 30, linkLibraries: [String] = []) throws(LoadError) {
        do {
            region = try ExecutableRegion(size: regionSize)
        } catch {
            throw .system(error)
        }
        try link(library: "libm.so.6")
        for library in linkLibraries { try link(library: library) }
    }

    deinit {
        for library in libraries.reversed() { System.closeLibrary(library.handle) }
    }

    /// Opens a shared object (RTLD_NOW | RTLD_GLOBAL) whose symbols later loads may use.
    /// It stays open for the life of the loader.
    public func link(library path: String) throws(LoadError) {
        do {
            libraries.append((path, try System.openLibrary(path)))
        } catch {
            throw .link(library: path, message: error.message)
        }
    }

    /// The region's reservation: `base` and `size`, for tools and tests.
    public var regionRange: Range<UInt> { region.base..<(region.base + UInt(region.size)) }

    /// The address range of the writable alias of the region's code half.
    public var writableAliasRange: Range<UInt> { region.writableAliasRange }

    /// Bytes allocated so far in the region's code and data halves.
    public var regionUsage: (code: Int, data: Int) { region.usage }

    /// Symbols Kiln itself provides to generated code, resolved before any library.
    public static var runtimeSymbols: [String: UInt] {
        [ThreadLocalData.addressSymbol: ThreadLocalData.entryAddress]
    }

    /// The address `name` resolves to outside a module: a Kiln runtime symbol, an export
    /// of a module loaded earlier, a symbol of a linked library (in link order), or of
    /// the process's global scope (dlsym RTLD_DEFAULT). Quotes around `name` are ignored.
    public func resolve(_ name: String) -> UInt? {
        let bare = unquoted(name)
        if let address = Self.runtimeSymbols[bare] ?? exports[bare] { return address }
        for library in libraries {
            if let address = System.lookUp(bare, in: library.handle) { return UInt(bitPattern: address) }
        }
        return System.lookUp(bare, in: nil).map { UInt(bitPattern: $0) }
    }

    /// Loads, links and relocates `module`; see the file comment for the steps.
    public func load(_ module: CompiledModule) throws(LoadError) -> LoadedModule {
        try check(module)
        let localNames = localSymbols(of: module)
        let resolvedSymbols = try resolveExternals(of: module, localNames: localNames)

        // Thread data first: its templates need only addresses of this module's code
        // and plain data, which are fixed below before any template is relocated.
        var functionAddresses: [UInt] = []
        for function in module.functions {
            functionAddresses.append(try region.allocateCode(function.code.count, alignment: 16))
        }
        var dataAddresses: [UInt?] = []
        for object in module.data {
            if object.isThreadLocal {
                dataAddresses.append(nil)
            } else {
                let address = try region.allocateData(object.bytes.count, alignment: max(object.alignment, 1))
                dataAddresses.append(UInt(bitPattern: address))
            }
        }
        var symbols: [String: UInt] = [:]
        for (name, found) in resolvedSymbols {
            switch found {
            case .address(let address): symbols[name] = address
            case .local(.function(let index)): symbols[name] = functionAddresses[index]
            case .local(.data(let index)): symbols[name] = dataAddresses[index]!
            case .local: preconditionFailure("local symbols are functions or plain data")
            }
        }
        let slotNames = slotSymbols(of: module)
        var slotAddresses: [String: UInt] = [:]
        var slots: [LoadedModule.Slot] = []
        if !slotNames.isEmpty {
            let table = try region.allocateData(8 * slotNames.count, alignment: 8)
            for (index, name) in slotNames.enumerated() {
                let value = symbols[name]!
                let address = table + 8 * index
                address.storeBytes(of: UInt64(value), as: UInt64.self)
                slotAddresses[name] = UInt(bitPattern: address)
                slots.append(LoadedModule.Slot(symbol: name, address: UInt(bitPattern: address), value: value))
            }
        }

        let context = RelocationContext(
            functions: functionAddresses, data: dataAddresses, symbols: symbols, slots: slotAddresses,
            threadOffsets: [:])
        var threadOffsets: [Int: Int] = [:]
        for (index, object) in module.data.enumerated() where object.isThreadLocal {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(object.bytes.count, 1), alignment: 16)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: object.bytes)
            try relocate(object.name, object.relocations, context: context,
                         objectAddress: 0, writableStart: buffer.baseAddress!, isTemplate: true)
            let template = Array(buffer.prefix(object.bytes.count))
            guard let offset = ThreadLocalData.register(template, alignment: max(object.alignment, 1)) else {
                throw .threadDataFull(object: object.name, size: object.bytes.count)
            }
            threadOffsets[index] = offset
        }
        var fullContext = context
        fullContext.threadOffsets = threadOffsets

        for (index, function) in module.functions.enumerated() {
            let address = functionAddresses[index]
            let writable = region.writableAlias(of: address)
            function.code.withUnsafeBytes { writable.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            try relocate(function.name, function.relocations, context: fullContext,
                         objectAddress: address, writableStart: writable, isTemplate: false)
        }
        for (index, object) in module.data.enumerated() {
            guard let address = dataAddresses[index] else { continue }
            let writable = UnsafeMutableRawPointer(bitPattern: address)!
            object.bytes.withUnsafeBytes { writable.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            try relocate(object.name, object.relocations, context: fullContext,
                         objectAddress: address, writableStart: writable, isTemplate: false)
        }

        let loaded = LoadedModule(
            loader: self, module: module, functionAddresses: functionAddresses,
            dataAddresses: dataAddresses, threadOffsets: threadOffsets, slots: slots)
        for (index, function) in module.functions.enumerated() where function.isExported {
            exports[unquoted(function.name)] = functionAddresses[index]
        }
        for (index, object) in module.data.enumerated() where object.isExported && !object.isThreadLocal {
            exports[unquoted(object.name)] = dataAddresses[index]!
        }
        return loaded
    }

    // MARK: Checking and resolving

    private func check(_ module: CompiledModule) throws(LoadError) {
        func fail(_ message: String) -> LoadError { .invalidModule(module: module.name, message: message) }
        for object in module.data {
            let alignment = max(object.alignment, 1)
            guard alignment & (alignment - 1) == 0, alignment <= 4096 else {
                throw fail("$\(object.name) has alignment \(object.alignment), not a power of two up to 4096")
            }
        }
        let objects = module.functions.map { ($0.name, $0.code.count, $0.relocations, false) }
            + module.data.map { ($0.name, $0.bytes.count, $0.relocations, $0.isThreadLocal) }
        for (name, size, relocations, isThreadData) in objects {
            for relocation in relocations {
                guard Int(relocation.offset) + relocation.kind.size <= size else {
                    throw fail("$\(name)+0x\(String(relocation.offset, radix: 16)): \(relocation.kind) field "
                                + "runs past the end of the object (\(size) bytes)")
                }
                switch relocation.target {
                case .function(let index):
                    guard module.functions.indices.contains(index) else { throw fail("$\(name) refers to function #\(index), which does not exist") }
                case .data(let index):
                    guard module.data.indices.contains(index) else { throw fail("$\(name) refers to data #\(index), which does not exist") }
                    guard !module.data[index].isThreadLocal else {
                        throw fail("$\(name) refers to thread-local $\(module.data[index].name) as plain data")
                    }
                case .threadLocal(let index):
                    guard module.data.indices.contains(index), module.data[index].isThreadLocal else {
                        throw fail("$\(name) refers to thread data #\(index), which is not thread-local data")
                    }
                    guard relocation.kind == .offset32, !isThreadData else {
                        throw fail("$\(name)+0x\(String(relocation.offset, radix: 16)): a thread-local offset "
                                    + "must be an off32 field in code")
                    }
                case .external, .slot:
                    break
                }
            }
        }
    }

    /// This module's own functions and plain data, by unquoted name.
    private func localSymbols(of module: CompiledModule) -> [String: RelocationTarget] {
        var names: [String: RelocationTarget] = [:]
        for (index, function) in module.functions.enumerated() { names[unquoted(function.name)] = .function(index) }
        for (index, object) in module.data.enumerated() where !object.isThreadLocal {
            names[unquoted(object.name)] = .data(index)
        }
        return names
    }

    /// Where an external name was found: outside the module, or in the module itself
    /// (known only once the module is placed).
    private enum ResolvedSymbol {
        case address(UInt)
        case local(RelocationTarget)
    }

    /// Resolves every `.external` and `.slot` name, or reports all that are undefined.
    private func resolveExternals(
        of module: CompiledModule, localNames: [String: RelocationTarget]
    ) throws(LoadError) -> [String: ResolvedSymbol] {
        var resolved: [String: ResolvedSymbol] = [:]
        var unresolved: [String: [String]] = [:]
        var unresolvedOrder: [String] = []
        let users = module.functions.map { ($0.name, $0.relocations) } + module.data.map { ($0.name, $0.relocations) }
        for (user, relocations) in users {
            for relocation in relocations {
                switch relocation.target {
                case .external(let name), .slot(let name): note(name, user)
                case .function, .data, .threadLocal: break
                }
            }
        }
        func note(_ name: String, _ user: String) {
            if resolved[name] != nil { return }
            if unresolved[name] != nil {
                if unresolved[name]!.last != user { unresolved[name]!.append(user) }
                return
            }
            if let local = localNames[unquoted(name)] {
                resolved[name] = .local(local)
            } else if let address = resolve(name) {
                resolved[name] = .address(address)
            } else {
                unresolved[name] = [user]
                unresolvedOrder.append(name)
            }
        }
        guard unresolvedOrder.isEmpty else {
            throw .unresolvedSymbols(unresolvedOrder.map { UnresolvedSymbol(symbol: $0, users: unresolved[$0]!) })
        }
        return resolved
    }

    private func slotSymbols(of module: CompiledModule) -> [String] {
        var seen = Set<String>()
        var names: [String] = []
        for relocation in module.functions.flatMap(\.relocations) + module.data.flatMap(\.relocations) {
            if case .slot(let name) = relocation.target, seen.insert(name).inserted { names.append(name) }
        }
        return names
    }
}

/// Strips the quotes of a quoted IL name: `"foo.bar"` → `foo.bar`.
func unquoted(_ name: String) -> String {
    if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { return String(name.dropFirst().dropLast()) }
    return name
}
