// The runtime services a program calls as ordinary functions named `$kiln.*`.
//
// The IL grammar stays QBE's: a service is a `call` to a reserved symbol, and
// this table is the one place that says which services exist and what they
// take and return. The verifier checks every such call against it; the code
// generator will bind the symbols to the runtime's entry points.

/// One runtime service: its name (after `kiln.`), parameter classes and result class.
public struct RuntimeService: Sendable {
    public var name: String
    public var parameters: [Class]
    public var result: Class?
    /// One line for the documentation and for messages.
    public var summary: String
}

/// Every runtime service, by name.
public let runtimeServices: [String: RuntimeService] = {
    let all = [
        RuntimeService(name: "spawn", parameters: [.l, .r], result: .l,
                       summary: "start a proc running the function at the first argument with the second as its argument; returns its id"),
        RuntimeService(name: "self", parameters: [], result: .l, summary: "the id of the running proc"),
        RuntimeService(name: "send", parameters: [.l, .r], result: .w,
                       summary: "send a message to a proc; 0 on success, 1 if the proc no longer exists"),
        RuntimeService(name: "receive", parameters: [], result: .r,
                       summary: "wait for the next message of the running proc and return it"),
        RuntimeService(name: "yield", parameters: [], result: nil, summary: "let other procs run"),
        RuntimeService(name: "receive_within", parameters: [.l], result: .r,
                       summary: "wait at most the given nanoseconds for the next message; the integer 0 when none came (see timed_out)"),
        RuntimeService(name: "timed_out", parameters: [], result: .w,
                       summary: "1 if the running proc's last receive_within returned because its time ran out, else 0"),
        RuntimeService(name: "link", parameters: [.l], result: .w,
                       summary: "when the given proc ends, send the running proc a notice (the integer -id, or -id - 2^32 when the runtime ended it); 1 if it has ended already (the notice is sent at once), else 0"),
        RuntimeService(name: "collect", parameters: [], result: nil, summary: "run a full collection of the managed heap"),
        RuntimeService(name: "compact", parameters: [], result: nil,
                       summary: "compact the code heap now (code moves; return addresses, TOCs and stubs follow)"),
    ]
    return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}()

extension Verifier {
    func checkRuntimeService(_ function: Function, _ symbol: Name, arguments: Range<UInt32>, call: Instruction) {
        let full = text(symbol)
        let serviceName = String(full.dropFirst("kiln.".count))
        guard let service = runtimeServices[serviceName] else {
            let known = runtimeServices.keys.sorted().map { "$kiln.\($0)" }.joined(separator: ", ")
            diagnostics.error("$\(full) is not a runtime service (known: \(known))", at: call.location)
            return
        }
        let plain = arguments.map { function.instructions[Int($0)] }
        if plain.contains(where: { $0.op != .arg }) {
            diagnostics.error("$\(full) takes plain arguments (no env, '...', sub-word or aggregate arguments)", at: call.location)
            return
        }
        if plain.count != service.parameters.count {
            diagnostics.error("$\(full) takes \(service.parameters.count) argument\(service.parameters.count == 1 ? "" : "s"), found \(plain.count)", at: call.location)
            return
        }
        for (position, (argument, expected)) in zip(plain, service.parameters).enumerated() where argument.cls != expected {
            diagnostics.error("argument \(position + 1) of $\(full) must be \(expected.letter), found \(argument.cls.letter)", at: argument.location)
        }
        if !call.to.isNone {
            if let result = service.result {
                if call.cls != result || call.subWord != nil || !call.arg1.isNone {
                    diagnostics.error("$\(full) returns \(result.letter)", at: call.location)
                }
            } else {
                diagnostics.error("$\(full) returns nothing", at: call.location)
            }
        }
    }
}
