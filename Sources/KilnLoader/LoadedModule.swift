// A module after loading: where each of its objects was placed, its slots,
// lookups by index and by name, and a way to run its `main`.
//
// A `LoadedModule` keeps its `Loader` (and so the region) alive. Its code and
// data never move yet; when the code heap learns to move and free objects,
// the placements recorded here are what it will update and release.

import CKilnShim
import KilnCode
#if canImport(Glibc)
import Glibc
#endif

/// A module placed in a loader's region, linked and ready to run.
public final class LoadedModule {
    /// Where one function or data object lives.
    public struct Placement: Sendable, CustomStringConvertible {
        /// The object's name as in the IL (quotes kept).
        public var name: String
        /// Its address; for thread-local data, its offset in the thread block.
        public var address: UInt
        public var size: Int
        public var isThreadLocal: Bool

        public var description: String {
            let hex = String(address, radix: 16)
            return isThreadLocal ? "thread+0x\(hex) \(size) $\(name)" : "0x\(hex) \(size) $\(name)"
        }
    }

    /// One slot: an 8-byte cell in the data half holding an external symbol's address.
    public struct Slot: Sendable {
        public var symbol: String
        public var address: UInt
        public var value: UInt
    }

    /// The loader whose region holds this module; kept alive by the module.
    public let loader: Loader
    /// The module's name, for messages.
    public let name: String
    /// One placement per `CompiledModule.functions` entry, in the same order.
    public let functions: [Placement]
    /// One placement per `CompiledModule.data` entry, in the same order.
    public let data: [Placement]
    /// The slots the module's code calls or loads through.
    public let slots: [Slot]
    private let exportedFunctions: Set<String>

    init(loader: Loader, module: CompiledModule, functionAddresses: [UInt], dataAddresses: [UInt?],
         threadOffsets: [Int: Int], slots: [Slot]) {
        self.loader = loader
        self.name = module.name
        self.functions = module.functions.enumerated().map { index, function in
            Placement(name: function.name, address: functionAddresses[index], size: function.code.count,
                      isThreadLocal: false)
        }
        self.data = module.data.enumerated().map { index, object in
            Placement(name: object.name, address: dataAddresses[index] ?? UInt(threadOffsets[index]!),
                      size: object.bytes.count, isThreadLocal: object.isThreadLocal)
        }
        self.slots = slots
        self.exportedFunctions = Set(module.functions.filter(\.isExported).map { unquoted($0.name) })
    }

    /// The entry point of function `index`.
    public func address(ofFunction index: Int) -> UnsafeRawPointer {
        precondition(functions.indices.contains(index), "\(name): no function #\(index)")
        return UnsafeRawPointer(bitPattern: functions[index].address)!
    }

    /// The start of data object `index`; for thread-local data, the calling thread's copy.
    public func address(ofData index: Int) -> UnsafeMutableRawPointer {
        precondition(data.indices.contains(index), "\(name): no data #\(index)")
        let placement = data[index]
        if placement.isThreadLocal { return ThreadLocalData.address(ofOffset: Int(placement.address)) }
        return UnsafeMutableRawPointer(bitPattern: placement.address)!
    }

    /// The address of the function or data object called `symbol` (quotes optional), or nil.
    /// Thread-local data resolves to the calling thread's copy.
    public func address(ofSymbol symbol: String) -> UnsafeRawPointer? {
        let bare = unquoted(symbol)
        if let index = functions.firstIndex(where: { unquoted($0.name) == bare }) {
            return address(ofFunction: index)
        }
        if let index = data.firstIndex(where: { unquoted($0.name) == bare }) {
            return UnsafeRawPointer(address(ofData: index))
        }
        return nil
    }

    /// The C signature of `main`: `int main(int, char **, char **)`.
    public typealias MainFunction = @convention(c) (
        Int32, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> Int32

    /// Calls the exported `main` with `arguments` (argv[0] first) and `environment`
    /// (`KEY=value` strings; nil passes the process's own), then flushes C stdio.
    /// Runs on the calling thread; a crash in the program is a crash of the process.
    public func runMain(arguments: [String], environment: [String]? = nil) throws(LoadError) -> Int32 {
        guard let index = functions.firstIndex(where: { unquoted($0.name) == "main" }),
              exportedFunctions.contains("main") else {
            throw .noMain(module: name)
        }
        return Self.callMain(address(ofFunction: index), arguments: arguments, environment: environment)
    }

    /// Calls a C `main` at `entry`; see `runMain`.
    static func callMain(_ entry: UnsafeRawPointer, arguments: [String], environment: [String]?) -> Int32 {
        let main = unsafeBitCast(entry, to: MainFunction.self)
        let argv = System.makeStrings(arguments)
        let envp = System.makeStrings(environment ?? System.environment)
        defer {
            System.freeStrings(argv)
            System.freeStrings(envp)
        }
        let status = main(Int32(arguments.count), argv, envp)
        System.flushAllStreams()
        return status
    }
}
