// Everything that can go wrong while loading, linking and running a module.
//
// Messages name the thing the user wrote: the symbol, and the function or data
// object that refers to it, with QBE's `$` sigil, so an error reads like the
// IL. Loading reports every unresolved symbol at once, not the first.

import KilnCode

/// An external symbol that nothing defines, with every object that uses it.
public struct UnresolvedSymbol: Hashable, Sendable, CustomStringConvertible {
    /// The symbol as written in the IL (quotes kept for quoted names).
    public var symbol: String
    /// Names of the functions and data objects that refer to it, in module order.
    public var users: [String]
    /// The crate of the users (empty when unknown).
    public var crate: String

    public init(symbol: String, users: [String], crate: String = "") {
        self.symbol = symbol
        self.users = users
        self.crate = crate
    }

    public var description: String {
        (crate.isEmpty ? "" : "\(crate): ") + "undefined symbol $\(symbol), used by "
            + users.map { "$\($0)" }.joined(separator: ", ")
    }
}

/// Why a module could not be loaded or run.
public enum LoadError: Error, CustomStringConvertible, Sendable {
    /// A system call failed.
    case system(SystemError)
    /// A `--link` library could not be opened; the message is dlerror's.
    case link(library: String, message: String)
    /// Symbols that no loaded module, Kiln runtime symbol or library defines.
    case unresolvedSymbols([UnresolvedSymbol])
    /// A relocation's value does not fit its field.
    case relocationOutOfRange(object: String, offset: UInt32, relocation: Relocation, value: Int64)
    /// A 32-bit absolute field (a `w $symbol` data item) cannot hold the symbol's address (plus
    /// addend): `inRegion` when the symbol is the loader's own and its region lies above
    /// 4 GiB, otherwise it is a C library's symbol.
    case addressBeyond32Bits(object: String, offset: UInt32, symbol: String, address: UInt64, inRegion: Bool)
    /// The module breaks a rule of `CompiledModule` (an index out of range, a field past the
    /// end of its object, a bad alignment, a thread-local object used as plain data...).
    case invalidModule(module: String, message: String)
    /// The region has no room left for more code or data.
    case regionFull(kind: String, requested: Int)
    /// The process-wide thread-local layout has no room for this object.
    case threadDataFull(object: String, size: Int)
    /// A crate of this name is already loaded (or twice in one batch).
    case duplicateCrate(String)
    /// Two crates export the same symbol.
    case duplicateExport(symbol: String, first: String, second: String)
    /// An argument out of range (a function index a crate does not have, say).
    case invalidArgument(String)
    /// A reload or unload of a crate that is not loaded.
    case notLoaded(String)
    /// A callback stub was misused (freeing one that is not the host's).
    case stubMisuse(String)
    /// `runMain` on a module without an exported `main`.
    case noMain(module: String)
    /// A reload would remove exports that other crates use (each with its user and use).
    case reloadDropsExports(crate: String, [UnresolvedSymbol])
    /// An unload was refused: other crates hold addresses of the crate's exports (each
    /// export with the crates that hold it, in `users`).
    case unloadRefused(crate: String, [UnresolvedSymbol])
    /// A reload could not be committed: some thread kept running the code it would write.
    case threadsNotStopped(String)
    /// A failure a test asked for (`Loader.reloadFaultStep`).
    case injectedFault

    public var description: String {
        switch self {
        case .system(let error):
            return error.description
        case .link(let library, let message):
            return "cannot link \(library): \(message)"
        case .unresolvedSymbols(let symbols):
            return symbols.map(\.description).joined(separator: "\n")
        case .relocationOutOfRange(let object, let offset, let relocation, let value):
            return "$\(object)+0x\(String(offset, radix: 16)): relocation \(relocation.kind) to "
                + "\(relocation.target) does not fit its field (value \(value))"
        case .addressBeyond32Bits(let object, let offset, let symbol, let address, let inRegion):
            let place = "$\(object)+0x\(String(offset, radix: 16)): the 32-bit field `w $\(symbol)` needs an address below 4 GiB, "
            let reason = inRegion
                ? "but this loader's code and data lie at 0x\(String(address, radix: 16)) (no address space below 4 GiB was free when it was made)"
                : "but $\(symbol) is a C symbol at 0x\(String(address, radix: 16))"
            return place + reason + "; an l item holds any address"
        case .invalidModule(let module, let message):
            return "\(module): invalid compiled module: \(message)"
        case .regionFull(let kind, let requested):
            return "the code heap has no room for \(requested) more bytes of \(kind)"
        case .threadDataFull(let object, let size):
            return "no room for thread-local $\(object) (\(size) bytes) in the thread block"
        case .duplicateCrate(let name):
            return "a crate named \(name) is already loaded"
        case .duplicateExport(let symbol, let first, let second):
            return "$\(symbol) is exported by both \(first) and \(second)"
        case .invalidArgument(let message):
            return message
        case .notLoaded(let name):
            return "no crate named \(name) is loaded"
        case .stubMisuse(let message):
            return message
        case .noMain(let module):
            return "\(module): no exported function $main"
        case .reloadDropsExports(let crate, let symbols):
            return "\(crate): the new version no longer exports what other crates use: "
                + symbols.map { "$\($0.symbol) \($0.users.joined(separator: ", "))" }.joined(separator: "; ")
        case .unloadRefused(let crate, let held):
            return "cannot unload \(crate): other crates hold the address of its exports: "
                + held.map { "$\($0.symbol) (held by \($0.users.joined(separator: ", ")))" }.joined(separator: "; ")
        case .threadsNotStopped(let crate):
            return "\(crate): reload not applied: a thread that cannot be stopped keeps running its code"
        case .injectedFault:
            return "a failure injected by a test"
        }
    }
}
