// libFuzzer entry point for crate files.
//
// Built by scripts/fuzz-crate.sh together with every file of Sources/KilnCode
// into one module, so there is no `import KilnCode`. The first byte of each
// input is the harness's own, not the file's: when its low bit is set, the
// rest is resealed (total length and checksum rewritten) before decoding, so
// that mutations get past the checksum to the structural checks; when it is
// clear, the rest is decoded as it is, and the checksum has to catch them.
// Any trap is a finding. On top of "does not crash" the harness checks what
// decoding promises: an error names an offset inside the file, and a decoded
// module passes `validate()` and encodes back to the same bytes.

/// Called by libFuzzer once per input; returns 0 (the input is never rejected).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCrateFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    var file = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 != 0 { CrateFile.reseal(&file) }
    checkCrateFile(file)
    return 0
}

/// Decodes one file and traps if a promise is broken.
func checkCrateFile(_ file: [UInt8]) {
    let module: CompiledModule
    do {
        module = try CrateFile.decode(file)
    } catch {
        if let offset = error.offset, offset < 0 || offset > file.count {
            fatalError("error at byte \(offset) of a \(file.count)-byte file: \(error)")
        }
        if error.message.isEmpty { fatalError("empty error message at byte \(String(describing: error.offset))") }
        return
    }
    do {
        try module.validate()
    } catch {
        fatalError("decoded a module that fails validate(): \(error)")
    }
    let encoded = CrateFile.encode(module)
    if encoded != file {
        let first = zip(encoded, file).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(encoded.count, file.count)
        fatalError("round trip: \(file.count) bytes decode and encode to \(encoded.count), first difference at byte \(first)")
    }
}
