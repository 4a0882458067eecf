// String literals in data decode with the GNU assembler's escape rules.

import KilnIL
import Testing

/// The bytes of the one string item of `data $s = { b <literal> }`.
private func decoded(_ literal: String) -> [UInt8]? {
    let checked = check("data $s = { b \(literal) }")
    guard let item = checked.module.data.first?.items.first, case .string(let start, let count) = item.kind else {
        return nil
    }
    return Array(checked.module.bytes(start: start, count: count))
}

struct StringEscapeTests {
    static let rows: [(String, [UInt8])] = [
        (#""""#, []),
        (#""abc""#, [0x61, 0x62, 0x63]),
        (#""\n\t\r""#, [0x0A, 0x09, 0x0D]),
        (#""\b\f\v""#, [0x08, 0x0C, 0x0B]),
        (#""\\\"""#, [0x5C, 0x22]),
        (#""\0""#, [0]),
        (#""\7\77\101""#, [7, 0o77, 0x41]),
        (#""\1010""#, [0x41, 0x30]),
        (#""\377""#, [0xFF]),
        (#""\400""#, [0x00]),
        (#""\08""#, [0, 0x38]),
        (#""\x41B""#, [0x1B]),
        (#""\x4a\x4A""#, [0x4A, 0x4A]),
        (#""\x123""#, [0x23]),
        (#""\x0g""#, [0, 0x67]),
        (#""\X7f""#, [0x7F]),
        ("\"é\"", [0xC3, 0xA9]),
        (#""a#b""#, [0x61, 0x23, 0x62]),
    ]

    @Test(arguments: rows)
    func escape(_ literal: String, _ bytes: [UInt8]) {
        #expect(decoded(literal) == bytes, "\(literal)")
    }

    @Test func unknownEscapeIsTheCharacterWithAWarning() {
        let checked = check(#"data $s = { b "\q" }"#)
        #expect(decoded(#""\q""#) == [0x71])
        #expect(checked.warnings.map(\.description) == [#"1:16: warning: unknown escape '\q' in string; treated as the character itself"#])
    }

    @Test func hexEscapeWithoutDigitsIsAnXWithAWarning() {
        let checked = check(#"data $s = { b "a\x" }"#)
        #expect(decoded(#""a\x""#) == [0x61, 0x78])
        #expect(checked.warnings.first?.description == #"1:17: warning: \x used with no following hex digits"#)
    }

    @Test func severalStringsShareTheByteStore() {
        let module = check(#"data $a = { b "ab", b "cd" 0 "e" }"#).module
        let strings = module.data[0].items.compactMap { item -> [UInt8]? in
            guard case .string(let start, let count) = item.kind else { return nil }
            return Array(module.bytes(start: start, count: count))
        }
        #expect(strings == [[0x61, 0x62], [0x63, 0x64], [0x65]])
    }

    /// The printer escapes every byte so that decoding the printout gives the same bytes.
    @Test func everyByteSurvivesPrinting() {
        let all = (0...255).map { "\\\(String($0, radix: 8))" }.joined()
        let original = decoded("\"\(all)\"")
        #expect(original == Array(0...255).map(UInt8.init))
        let printed = check("data $s = { b \"\(all)\" }").module.printed()
        #expect(check(printed).module.stringBytes == original)
    }
}
