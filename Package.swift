// swift-tools-version: 6.1
// Kiln: QBE IL compiled to x86-64 in memory, with code managed like a heap.
// Targets import one way only: KilnIL (front end) and KilnX64 (encoder) know
// nothing of each other or of anything above them.
import PackageDescription

/// In release builds the compiler's hot paths run without Swift's dynamic exclusivity
/// checks: they cost a third of the front end's time (every access to a class property is
/// checked). Debug builds, which the test suite uses, keep them, so an overlapping access
/// would still be caught there.
let fast: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

/// The runtime is optimised in every build. While it holds the other threads of a process
/// stopped it must not allocate (a stopped thread may hold malloc's lock), and unoptimised
/// generic code allocates when it first uses a conformance (the Swift runtime instantiates
/// the witness table then, under a lock of its own). The test suite, built for debugging,
/// checks that with a malloc that refuses to run there.
///
/// In release builds it also runs without dynamic exclusivity checks, like the compiler's
/// targets: compaction and relinking touch class properties in tight loops, and the checks
/// took a quarter of a compaction's time.
let runtime: [SwiftSetting] = [
    .unsafeFlags(["-O"], .when(configuration: .debug)),
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

/// The managed heap's C entry points (Sources/KilnManagedHeap/include/kiln_heap.h).
let heapEntries = [
    "kiln_heap_allocate_slow", "kiln_heap_checked_access", "kiln_heap_collect",
    "kiln_handle_scope_open", "kiln_handle_scope_close", "kiln_handle_new", "kiln_handle_get", "kiln_handle_set",
    "kiln_global_handle_new", "kiln_global_handle_get", "kiln_global_handle_set", "kiln_global_handle_free",
]

let package = Package(
    name: "Kiln",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .library(name: "KilnIL", targets: ["KilnIL"]),
        .library(name: "KilnPasses", targets: ["KilnPasses"]),
        .library(name: "KilnX64", targets: ["KilnX64"]),
        // The C embedding API (Sources/KilnC/include/kiln.h): libKilnC.so.
        .library(name: "KilnC", type: .dynamic, targets: ["KilnC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Text to checked IR: lexer, parser, IR, verifier, printer.
        .target(name: "KilnIL", swiftSettings: fast),
        // Passes over the IR: control flow, SSA construction, optimisations.
        .target(name: "KilnPasses", dependencies: ["KilnIL"], swiftSettings: fast),
        // IR to machine code: instruction selection, register allocation, emission.
        .target(name: "KilnCodegen", dependencies: ["KilnIL", "KilnPasses", "KilnX64", "KilnCode"], swiftSettings: fast),
        // x86-64 machine-code encoder: bytes and registers, no IL.
        .target(name: "KilnX64", swiftSettings: fast),
        // Code and data objects with their relocation records: the unit of linking.
        .target(name: "KilnCode"),
        // C shim for what Swift cannot reach: memfd_create, the __thread block of thread data.
        .target(name: "CKilnShim"),
        // The managed heap: objects of the IL's `r` class, allocation, the precise moving
        // collector, handles. Knows nothing of code generation or the loader.
        .target(name: "KilnManagedHeap", exclude: ["include"], swiftSettings: runtime),
        // The runtime: loads compiled modules into executable memory, links, runs, reloads them.
        .target(name: "KilnLoader", dependencies: ["KilnCode", "KilnX64", "CKilnShim", "KilnManagedHeap"], swiftSettings: runtime),
        // The C embedding API: handles, errors as strings, @_cdecl entries over the loader.
        // Its header is include/kiln.h; the product KilnC is the shared library hosts link.
        .target(name: "KilnC", dependencies: ["KilnIL", "KilnCodegen", "KilnCode", "KilnLoader"], exclude: ["include"]),
        // Tools around the runtime, for the command and the tests only (a host that embeds
        // Kiln links KilnLoader without them): the `kiln test` runner (gcc, child processes),
        // and files, processes and a watcher thread for the command.
        .target(name: "KilnTooling", dependencies: ["KilnCode", "KilnLoader"]),
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnIL",
                "KilnPasses",
                "KilnCodegen",
                "KilnCode",
                "KilnLoader",
                "KilnTooling",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Mutation fuzzer of the whole crate-file loading path (scripts/fuzz-loader.sh).
        .executableTarget(name: "kiln-fuzz", dependencies: ["KilnIL", "KilnCodegen", "KilnCode", "KilnLoader", "KilnTooling"]),
        // Generated IL: shapes of chosen sizes (growth of compile time), random programs and a
        // reference interpreter for them (kiln-bench growth and differential, tests).
        .target(name: "KilnShapes", dependencies: ["KilnIL"]),
        // Benchmark harness: prints its figures, never part of the test suite.
        .executableTarget(name: "kiln-bench", dependencies: ["KilnIL", "KilnCodegen", "KilnCode", "KilnLoader", "KilnShapes", "KilnManagedHeap"]),
        .testTarget(name: "KilnILTests", dependencies: ["KilnIL"], resources: [.copy("Inputs")]),
        .testTarget(name: "KilnPassesTests", dependencies: ["KilnIL", "KilnPasses", "KilnShapes"]),
        .testTarget(name: "KilnCodegenTests", dependencies: ["KilnIL", "KilnCodegen", "KilnCode", "KilnLoader", "KilnShapes"]),
        .testTarget(name: "KilnX64Tests", dependencies: ["KilnX64"]),
        .testTarget(name: "KilnCodeTests", dependencies: ["KilnCode", "KilnIL", "KilnCodegen"]),
        .testTarget(name: "KilnLoaderTests", dependencies: ["KilnLoader", "KilnCode", "KilnX64", "KilnIL", "KilnCodegen"]),
        // A malloc that counts calls made where none may be (the heap's tests only).
        .target(name: "CKilnMallocGuard", path: "Tests/MallocGuard"),
        // The C entries are exported from the test executable, so that a C host the tests load
        // (Tests/Programs/heap-host.c) links against them as it would against Kiln.
        .testTarget(name: "KilnManagedHeapTests", dependencies: ["KilnManagedHeap", "CKilnMallocGuard"],
                    linkerSettings: [.unsafeFlags(heapEntries.flatMap { ["-Xlinker", "--export-dynamic-symbol=\($0)"] })]),
        // The C API: its entries called from Swift, and examples/embed/host.c built with gcc
        // against libKilnC.so and run.
        .testTarget(name: "KilnCTests", dependencies: ["KilnC", "KilnLoader", "KilnCode"]),
        .testTarget(name: "KilnToolingTests", dependencies: ["KilnTooling", "KilnLoader", "KilnCode", "KilnIL", "KilnCodegen"]),
    ]
)
