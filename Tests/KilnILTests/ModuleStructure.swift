// A structural description of a module, for comparing two modules.
//
// Every field of every type, data definition and function is written out as
// one line per entity, with names resolved to their text, values resolved to
// what they denote (a temporary's name, a constant's fields) and source
// locations left out. Two modules are equal for the round-trip test when their
// descriptions are equal; the description is built here, independently of
// Kiln's printer, so a printer or parser that drops or changes a field shows
// up as a differing line.

import KilnIL

func structure(of module: Module) -> [String] {
    var lines: [String] = []
    for definition in module.definitions {
        switch definition {
        case .type(let id): lines += describe(type: module.type(id), in: module)
        case .data(let index): lines += describe(data: module.data[index], in: module)
        case .function(let index): lines += describe(function: module.functions[index], in: module)
        case .debugFile(let index): lines.append("dbgfile \(module.debugFiles[index].debugDescription)")
        }
    }
    lines.append("counts types=\(module.types.count) data=\(module.data.count) functions=\(module.functions.count) files=\(module.debugFiles.count)")
    return lines
}

/// The first line where two descriptions differ, or nil when they are equal.
func firstDifference(_ a: [String], _ b: [String]) -> String? {
    for index in 0..<max(a.count, b.count) {
        let left = index < a.count ? a[index] : "<nothing>"
        let right = index < b.count ? b[index] : "<nothing>"
        if left != right { return "line \(index + 1):\n  first:  \(left)\n  second: \(right)" }
    }
    return nil
}

private func describe(linkage: Linkage) -> String {
    "export=\(linkage.isExport) thread=\(linkage.isThread) common=\(linkage.isCommon) "
        + "section=\(linkage.section.debugDescription) flags=\(linkage.sectionFlags.debugDescription)"
}

private func describe(type: AggregateType, in module: Module) -> [String] {
    var lines = ["type :\(module.text(type.name)) declaredAlign=\(type.declaredAlignment.map(String.init) ?? "-") "
        + "align=\(type.alignment) size=\(type.size) union=\(type.isUnion) opaque=\(type.isOpaque) variants=\(type.variants.count)"]
    for (index, variant) in type.variants.enumerated() {
        let fields = variant.map { field -> String in
            let kind = switch field.kind {
            case .scalar(let ext): ext.letter
            case .aggregate(let id): ":" + module.text(module.type(id).name)
            }
            return "\(kind)*\(field.count)"
        }
        lines.append("  variant \(index): \(fields.joined(separator: " "))")
    }
    return lines
}

private func describe(data: DataDefinition, in module: Module) -> [String] {
    var lines = ["data $\(module.text(data.name)) \(describe(linkage: data.linkage)) "
        + "declaredAlign=\(data.declaredAlignment.map(String.init) ?? "-") align=\(data.alignment) size=\(data.size) items=\(data.items.count)"]
    for item in data.items {
        let kind = switch item.kind {
        case .bits(let bits): "bits 0x\(String(bits, radix: 16))"
        case .address(let symbol, let offset): "address $\(module.text(symbol)) + \(offset)"
        case .string(let start, let count): "string \(Array(module.bytes(start: start, count: count)))"
        case .zero(let count): "zero \(count)"
        }
        let letter: String
        if case .zero = item.kind { letter = "z" } else { letter = item.type.letter }
        lines.append("  item \(letter) managed=\(item.isManaged) float=\(item.floatKind) \(kind)")
    }
    return lines
}

private func describe(abi: ABIType?, in module: Module) -> String {
    switch abi {
    case nil: "-"
    case .base(let cls)?: cls.letter
    case .subWord(let sub)?: sub.letters
    case .aggregate(let id)?: ":" + module.text(module.type(id).name)
    }
}

private func describe(constant: Constant, in module: Module) -> String {
    switch constant.kind {
    case .bits: "bits 0x\(String(constant.bits, radix: 16)) float=\(constant.floatKind)"
    case .address: "address $\(module.text(constant.symbol)) + \(Int64(bitPattern: constant.bits)) "
        + "thread=\(constant.isThreadLocal) extern=\(constant.isExtern)"
    }
}

private func describe(value: Value, _ function: Function, in module: Module) -> String {
    switch value.kind {
    case .none: "none"
    case .temp: "%" + module.text(function.temps[Int(value.index)].name)
    case .constant: "(" + describe(constant: function.constants[Int(value.index)], in: module) + ")"
    case .type: ":" + module.text(module.type(value.typeID).name)
    }
}

private func describe(function: Function, in module: Module) -> [String] {
    func value(_ v: Value) -> String { describe(value: v, function, in: module) }
    func block(_ id: BlockID) -> String {
        Int(id.index) < function.blocks.count ? "@" + module.text(function.blocks[Int(id.index)].name) : "#\(id.index)"
    }
    var lines = ["function $\(module.text(function.name)) \(describe(linkage: function.linkage)) "
        + "returns=\(describe(abi: function.returnType, in: module)) variadic=\(function.isVariadic) "
        + "temps=\(function.temps.count) constants=\(function.constants.count) blocks=\(function.blocks.count) "
        + "phis=\(function.phis.count) phiArguments=\(function.phiArguments.count) instructions=\(function.instructions.count)"]
    for temp in function.temps {
        lines.append("  temp %\(module.text(temp.name)) class=\(temp.cls?.letter ?? "-")")
    }
    for constant in function.constants {
        lines.append("  constant \(describe(constant: constant, in: module))")
    }
    for (index, b) in function.blocks.enumerated() {
        let jump = b.jump
        lines.append("  block @\(module.text(b.name)) defined=\(b.isDefined) fallsThrough=\(b.fallsThrough) "
            + "phis=\(b.phiStart)+\(b.phiCount) instructions=\(b.instructionStart)+\(b.instructionCount) "
            + "jump=\(jump.kind) arg=\(value(jump.arg)) target=\(block(jump.target)) other=\(block(jump.otherTarget))")
        for phi in function.phis(of: BlockID(index: UInt32(index))) {
            let arguments = function.arguments(of: phi).map { "\(block($0.block)) \(value($0.value))" }
            lines.append("    phi \(value(phi.to)) =\(phi.cls.letter) \(arguments.joined(separator: ", "))")
        }
        for instruction in function.instructions[b.instructionRange] {
            lines.append("    \(instruction.op.name) cls=\(instruction.cls.letter) sub=\(instruction.subWord?.letters ?? "-") "
                + "to=\(value(instruction.to)) arg0=\(value(instruction.arg0)) arg1=\(value(instruction.arg1))")
        }
    }
    return lines
}
