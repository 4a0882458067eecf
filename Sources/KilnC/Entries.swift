// The C entry points declared in include/kiln.h, one `@_cdecl` function each.
//
// Every entry checks its input (null pointers, handles, counts), refuses to run on a
// thread that a stop of the world left running, then does its work through the Swift
// API and sets the thread's last error. Nothing here traps on bad input: a status and a
// message are the answer to every misuse the header describes.

import Glibc
import KilnCode
import KilnLoader

/// Runs one entry's body: the `kiln_status` it returns, with the thread's last error set.
private func entry(_ body: () throws(EntryError) -> Void) -> Int32 {
    // Another thread has every other one stopped to change code, and this one runs on
    // (exempt, or blocking the signal): it must not reach code that is being changed.
    if World.isLeftRunningInAStop {
        LastError.set("called while another thread has the world stopped, on a thread the stop leaves running (exempt, or blocking the signal); call again once it resumes")
        return EntryError.Status.state.rawValue
    }
    do {
        try body()
        LastError.set(nil)
        return 0
    } catch {
        LastError.set(error.message)
        return error.status.rawValue
    }
}

/// The string C passed as `what`, or an argument error naming it.
private func string(_ pointer: UnsafePointer<CChar>?, _ what: String) throws(EntryError) -> String {
    guard let pointer else { throw EntryError(.argument, "\(what) is NULL") }
    return String(cString: pointer)
}

/// `pointer`, or an argument error naming it.
private func required<T>(_ pointer: UnsafeMutablePointer<T>?, _ what: String) throws(EntryError) -> UnsafeMutablePointer<T> {
    guard let pointer else { throw EntryError(.argument, "\(what) is NULL") }
    return pointer
}

/// Runs a loader operation, turning its error into the C API's.
private func loading<T>(_ body: () throws(LoadError) -> T) throws(EntryError) -> T {
    do {
        return try body()
    } catch {
        throw EntryError(error)
    }
}

/// The stub of function `name` (with or without `$`) of a crate.
private func stub(of crate: Crate, named name: String) throws(EntryError) -> UnsafeRawPointer {
    let bare = name.hasPrefix("$") ? String(name.dropFirst()) : name
    guard let index = crate.functionIndex(named: bare) else {
        throw EntryError(.notFound, "\(crate.name) has no function $\(bare)")
    }
    return try loading { () throws(LoadError) in try crate.stub(ofFunction: index) }
}

/// Static storage for kiln_version's answer; never written after it is made.
nonisolated(unsafe) private let versionText = UnsafePointer(strdup("kiln 0.1.0 (crate file format \(CrateFile.formatVersion))")!)

@_cdecl("kiln_version")
public func kiln_version() -> UnsafePointer<CChar> { versionText }

@_cdecl("kiln_last_error")
public func kiln_last_error() -> UnsafePointer<CChar> { LastError.current }

@_cdecl("kiln_loader_create")
public func kiln_loader_create(_ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    entry { () throws(EntryError) in
        let out = try required(out, "the loader pointer")
        let loader = try loading { () throws(LoadError) in try Loader() }
        out.pointee = Handles.add(loader)
    }
}

@_cdecl("kiln_loader_free")
public func kiln_loader_free(_ handle: UInt64) -> Int32 {
    var removed: (Loader, [Crate])?
    let status = entry { () throws(EntryError) in removed = try Handles.removeLoader(handle) }
    // The last references go here, outside the table's lock: the loader's deinit runs the
    // program's exit handlers and unmaps its code.
    if removed != nil { removed = nil }
    return status
}

@_cdecl("kiln_loader_link")
public func kiln_loader_link(_ handle: UInt64, _ library: UnsafePointer<CChar>?) -> Int32 {
    entry { () throws(EntryError) in
        let path = try string(library, "the library path")
        let loader = try Handles.loader(handle)
        try loading { () throws(LoadError) in try loader.link(library: path) }
    }
}

@_cdecl("kiln_load_il")
public func kiln_load_il(_ handle: UInt64, _ name: UnsafePointer<CChar>?, _ text: UnsafePointer<CChar>?, _ length: Int,
                         _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    entry { () throws(EntryError) in
        let name = try string(name, "the crate name")
        guard let text else { throw EntryError(.argument, "the IL text is NULL") }
        guard length >= 0 else { throw EntryError(.argument, "the IL text's length is negative") }
        let out = try required(out, "the crate pointer")
        let loader = try Handles.loader(handle)
        let bytes = [UInt8](UnsafeRawBufferPointer(start: text, count: length))
        let module = try Inputs.module(named: name, bytes: bytes)
        let crate = try loading { () throws(LoadError) in try loader.load(module) }
        out.pointee = try Handles.add(crate, of: handle)
    }
}

@_cdecl("kiln_load_file")
public func kiln_load_file(_ handle: UInt64, _ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    entry { () throws(EntryError) in
        let path = try string(path, "the path")
        let out = try required(out, "the crate pointer")
        let loader = try Handles.loader(handle)
        let module = try Inputs.module(atPath: path)
        let crate = try loading { () throws(LoadError) in try loader.load(module) }
        out.pointee = try Handles.add(crate, of: handle)
    }
}

@_cdecl("kiln_function")
public func kiln_function(_ handle: UInt64, _ name: UnsafePointer<CChar>?,
                          _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    entry { () throws(EntryError) in
        let name = try string(name, "the function name")
        let out = try required(out, "the address pointer")
        let crate = try Handles.crate(handle).crate
        out.pointee = UnsafeMutableRawPointer(mutating: try stub(of: crate, named: name))
    }
}

/// What kiln_call calls: six integer registers in, rax out (extra arguments are ignored
/// by a callee that takes fewer, under the SysV ABI).
private typealias SixIntegers = @convention(c) (Int64, Int64, Int64, Int64, Int64, Int64) -> Int64

@_cdecl("kiln_call")
public func kiln_call(_ handle: UInt64, _ name: UnsafePointer<CChar>?, _ arguments: UnsafePointer<Int64>?, _ count: Int,
                      _ result: UnsafeMutablePointer<Int64>?) -> Int32 {
    var address: UnsafeRawPointer?
    var values = [Int64](repeating: 0, count: 6)
    let status = entry { () throws(EntryError) in
        let name = try string(name, "the function name")
        guard (0...6).contains(count) else { throw EntryError(.argument, "kiln_call passes 0 to 6 arguments, not \(count)") }
        if count > 0 {
            guard let arguments else { throw EntryError(.argument, "the arguments are NULL") }
            for index in 0..<count { values[index] = arguments[index] }
        }
        address = try stub(of: try Handles.crate(handle).crate, named: name)
    }
    guard status == 0, let address else { return status }
    // The call happens outside `entry`: the function may itself call into this API.
    let function = unsafeBitCast(address, to: SixIntegers.self)
    let value = function(values[0], values[1], values[2], values[3], values[4], values[5])
    result?.pointee = value
    return 0
}

@_cdecl("kiln_run_main")
public func kiln_run_main(_ handle: UInt64, _ argc: Int32, _ argv: UnsafePointer<UnsafePointer<CChar>?>?,
                          _ status: UnsafeMutablePointer<Int32>?) -> Int32 {
    var crate: Crate?
    var arguments: [String] = []
    let result = entry { () throws(EntryError) in
        guard argc >= 0 else { throw EntryError(.argument, "argc is negative") }
        if argc > 0 {
            guard let argv else { throw EntryError(.argument, "argv is NULL") }
            for index in 0..<Int(argc) { arguments.append(try string(argv[index], "argv[\(index)]")) }
        }
        crate = try Handles.crate(handle).crate
        guard crate!.functionIndex(named: "main").map({ crate!.module.functions[$0].isExported }) == true else {
            throw EntryError(.notFound, "\(crate!.name) exports no $main")
        }
    }
    guard result == 0, let crate else { return result }
    do {
        let code = try crate.runMain(arguments: arguments)
        status?.pointee = code
    } catch {
        LastError.set(error.description)
        return EntryError(error).status.rawValue
    }
    return 0
}

@_cdecl("kiln_reload_il")
public func kiln_reload_il(_ handle: UInt64, _ text: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
    entry { () throws(EntryError) in
        guard let text else { throw EntryError(.argument, "the IL text is NULL") }
        guard length >= 0 else { throw EntryError(.argument, "the IL text's length is negative") }
        let crate = try Handles.crate(handle).crate
        let module = try Inputs.module(named: crate.name, bytes: [UInt8](UnsafeRawBufferPointer(start: text, count: length)))
        _ = try loading { () throws(LoadError) in try crate.loader.reload(crate, with: module) }
    }
}

@_cdecl("kiln_reload_file")
public func kiln_reload_file(_ handle: UInt64, _ path: UnsafePointer<CChar>?) -> Int32 {
    entry { () throws(EntryError) in
        let path = try string(path, "the path")
        let crate = try Handles.crate(handle).crate
        var module = try Inputs.module(atPath: path)
        module.name = crate.name
        _ = try loading { () throws(LoadError) in try crate.loader.reload(crate, with: module) }
    }
}

@_cdecl("kiln_unload")
public func kiln_unload(_ handle: UInt64) -> Int32 {
    entry { () throws(EntryError) in
        let crate = try Handles.crate(handle).crate
        try loading { () throws(LoadError) in try crate.loader.unload(crate) }
        Handles.removeCrate(handle)
    }
}

@_cdecl("kiln_stub_free")
public func kiln_stub_free(_ handle: UInt64, _ stub: UnsafeMutableRawPointer?) -> Int32 {
    entry { () throws(EntryError) in
        guard let stub else { throw EntryError(.argument, "the stub is NULL") }
        let loader = try Handles.loader(handle)
        try loading { () throws(LoadError) in try loader.freeStub(stub) }
    }
}

@_cdecl("kiln_export_symbols")
public func kiln_export_symbols(_ handle: UInt64) -> Int32 {
    entry { () throws(EntryError) in
        let crate = try Handles.crate(handle).crate
        try loading { () throws(LoadError) in try crate.loader.exportSymbols(of: crate) }
    }
}

@_cdecl("kiln_thread_accept_stops")
public func kiln_thread_accept_stops() { World.acceptStops() }

@_cdecl("kiln_thread_exempt")
public func kiln_thread_exempt() { World.exemptCurrentThread() }
