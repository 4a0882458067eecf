// Sizes and alignments: aggregate types (QBE's natural alignment and padding)
// and data definitions (packed items, default alignment 8).

import KilnIL
import Testing

/// The type called `name` in a module made of `types`.
private func layout(_ types: String, _ name: String) -> (size: UInt64, alignment: UInt64)? {
    let checked = check(types)
    #expect(checked.errors.isEmpty, "\(checked.errors)")
    guard let type = checked.module.types.last(where: { checked.module.text($0.name) == name }) else { return nil }
    return (type.size, type.alignment)
}

struct LayoutTests {
    static let rows: [(String, UInt64, UInt64)] = [
        // Structures: fields at their natural alignment, size rounded to the alignment.
        ("type :t = { b }", 1, 1),
        ("type :t = { b 3 }", 3, 1),
        ("type :t = { h, b }", 4, 2),
        ("type :t = { b, h }", 4, 2),
        ("type :t = { b, w 100 }", 404, 4),
        ("type :t = { s, s, d, d }", 24, 8),
        ("type :t = { b, l }", 16, 8),
        ("type :t = { l, b }", 16, 8),
        ("type :t = { w, d, w }", 24, 8),
        ("type :t = { b, h, w, l, s, d }", 32, 8),
        ("type :t = { w 0 }", 0, 4),
        // Explicit alignment raises, never lowers.
        ("type :t = align 16 { w 4 }", 16, 16),
        ("type :t = align 32 { b }", 32, 32),
        ("type :t = align 2 { l }", 8, 8),
        ("type :t = align 1 { h 3 }", 6, 2),
        // Unions: the largest variant, the strictest alignment.
        ("type :t = { { b } { s } }", 4, 4),
        ("type :t = { { l, l } { d } { w 3 } }", 16, 8),
        ("type :t = { { b 5 } { h } }", 6, 2),
        ("type :t = align 16 { { b } { w } }", 16, 16),
        // Opaque: the size rounded up to the mandatory alignment.
        ("type :t = align 16 { 32 }", 32, 16),
        ("type :t = align 8 { 13 }", 16, 8),
        ("type :t = align 1 { 3 }", 3, 1),
        ("type :t = align 4 { 0 }", 0, 4),
        // Nested aggregates.
        ("type :p = { w, w }\ntype :t = { :p, :p }", 16, 4),
        ("type :p = { w, w }\ntype :t = { b, :p 8 }", 68, 4),
        ("type :v = align 16 { w 4 }\ntype :t = { b, :v }", 32, 16),
        ("type :u = { { b 3 } { h } }\ntype :t = { b, :u, b }", 8, 2),
        ("type :o = align 8 { 12 }\ntype :t = { w, :o }", 24, 8),
        ("type :a = { b 3 }\ntype :t = { { :a 2 } { w } }", 8, 4),
    ]

    @Test(arguments: rows)
    func aggregate(_ text: String, _ size: UInt64, _ alignment: UInt64) {
        let result = layout(text, "t")
        #expect(result?.size == size, "size of \(text)")
        #expect(result?.alignment == alignment, "alignment of \(text)")
    }

    @Test func emptyStructureWarns() {
        let checked = check("type :e = { }")
        #expect(checked.errors.isEmpty)
        #expect(checked.warnings.map(\.description) == ["1:6: warning: type :e has no fields"])
        #expect(checked.module.types[0].size == 0)
    }

    @Test func fieldsRecordKindAndCount() {
        let module = check("type :a = { w }\ntype :t = { b, :a 3, d 2 }").module
        let fields = module.types[1].variants[0]
        #expect(fields.count == 3)
        #expect(fields[0].kind == .scalar(.b) && fields[0].count == 1)
        #expect(fields[1].kind == .aggregate(TypeID(index: 0)) && fields[1].count == 3)
        #expect(fields[2].kind == .scalar(.d) && fields[2].count == 2)
        #expect(module.types[1].declaredAlignment == nil)
    }

    static let data: [(String, UInt64, UInt64)] = [
        ("data $d = { b 1, z 3, w 2, l $d, b \"abc\" }", 19, 8),
        ("data $d = { }", 0, 8),
        ("data $d = align 16 { w 1 2 3 }", 12, 16),
        ("data $d = align 1 { h 1, s s_1, d d_1 }", 14, 1),
        ("data $d = { z 1000 }", 1000, 8),
        ("data $d = { r 0 2, b \"\\n\\x41\" }", 18, 8),
    ]

    @Test(arguments: data)
    func dataSize(_ text: String, _ size: UInt64, _ alignment: UInt64) {
        let checked = check(text)
        #expect(checked.errors.isEmpty, "\(checked.errors)")
        #expect(checked.module.data.first?.size == size)
        #expect(checked.module.data.first?.alignment == alignment)
    }

    @Test func zeroFillIsRecognised() {
        let module = check("data $a = { z 8, z 2 }\ndata $b = { z 8, b 0 }").module
        #expect(module.data[0].isZeroFill)
        #expect(!module.data[1].isZeroFill)
    }
}
