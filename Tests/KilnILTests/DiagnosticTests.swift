// Source positions and the text of diagnostics.

import KilnIL
import Testing

struct SourceFileTests {
    private let file = SourceFile(name: "f.ssa", text: "ab\ncd\r\n\nlast")

    @Test func lineStarts() {
        #expect(file.lineStarts == [0, 3, 7, 8])
    }

    static let positions: [(UInt32, Int, Int)] = [
        (0, 1, 1), (1, 1, 2), (2, 1, 3), (3, 2, 1), (5, 2, 3), (6, 2, 4), (7, 3, 1), (8, 4, 1), (11, 4, 4),
        (12, 4, 5), (100, 4, 5),
    ]

    @Test(arguments: positions)
    func lineAndColumn(_ offset: UInt32, _ line: Int, _ column: Int) {
        let position = file.lineAndColumn(of: SourceLocation(offset: offset))
        #expect(position.line == line && position.column == column, "offset \(offset)")
    }

    @Test func noLocationHasNoPosition() {
        #expect(file.lineAndColumn(of: .none) == (0, 0))
    }

    @Test func lineTextDropsTheTerminator() {
        #expect(file.lineText(1) == "ab")
        #expect(file.lineText(2) == "cd")
        #expect(file.lineText(3) == "")
        #expect(file.lineText(4) == "last")
        #expect(file.lineText(0) == "" && file.lineText(5) == "")
    }

    @Test func emptyFile() {
        let empty = SourceFile(name: "e", text: "")
        #expect(empty.lineStarts == [0])
        #expect(empty.lineAndColumn(of: SourceLocation(offset: 0)) == (1, 1))
        #expect(empty.lineText(1) == "")
    }

    @Test func manyLines() {
        let text = (1...5000).map { "line \($0)" }.joined(separator: "\n")
        let big = SourceFile(name: "big", text: text)
        let offset = text.utf8.count - "line 5000".utf8.count + 5
        #expect(big.lineAndColumn(of: SourceLocation(offset: UInt32(offset))) == (5000, 6))
        #expect(big.lineText(4321) == "line 4321")
    }
}

struct DiagnosticRenderingTests {
    @Test func oneLineForm() {
        let checked = check("data $d = { w \"s\" }\n", name: "dir/x.ssa")
        #expect(checked.raw.map(\.description) == ["dir/x.ssa:1:15: error: strings are only allowed in b items"])
    }

    @Test func renderedQuotesTheLineWithACaret() {
        let checked = check("function $f() {\n@start\n\t%x =w add %y, 1\n\tret\n}\n", name: "t.ssa")
        let diagnostic = checked.raw.first { $0.message.contains("%y") }
        #expect(diagnostic?.rendered == """
            t.ssa:3:12: error: temporary %y is used but never defined
            \t%x =w add %y, 1
            \t          ^
            """)
    }

    @Test func caretAtColumnOne() {
        let checked = check("!\n", name: "a")
        #expect(checked.raw.first?.rendered == "a:1:1: error: invalid character '!'\n!\n^")
    }

    @Test func warningSeverity() {
        let checked = check("data $d = { b 300 }", name: "w.ssa")
        #expect(checked.raw.map(\.description) == ["w.ssa:1:15: warning: value 300 does not fit in a b item and is truncated"])
        #expect(checked.raw.first?.severity == .warning)
    }

    @Test func locationWithoutPositionRendersOneLine() {
        let file = SourceFile(name: "n", text: "x")
        let diagnostic = Diagnostic(.error, "made up", at: .none, in: file)
        #expect(diagnostic.rendered == "n:0:0: error: made up")
    }

    @Test func listSortsByLocationKeepingOrderAtOnePlace() {
        let file = SourceFile(name: "s", text: "abcdef")
        var list = DiagnosticList(file: file)
        list.error("third", at: SourceLocation(offset: 4))
        list.warning("first", at: SourceLocation(offset: 1))
        list.error("second", at: SourceLocation(offset: 1))
        list.sortByLocation()
        #expect(list.all.map(\.message) == ["first", "second", "third"])
        #expect(list.hasErrors && list.errors.count == 2)
    }

    @Test func parseAndVerifyReturnsFileOrder() {
        let checked = check("""
            function $f() {
            @start
            \tjmp @nowhere
            }
            data $d = { w "s" }
            type :t = { q }
            """)
        let lines = checked.diagnostics.map(\.line)
        #expect(lines == lines.sorted())
        #expect(checked.errors.count == 3)
    }
}

struct NameTableTests {
    @Test func internIsIdempotentAndDense() {
        var table = NameTable()
        let a = table.intern("alpha")
        let b = table.intern("beta")
        #expect(a.index == 0 && b.index == 1)
        #expect(table.intern("alpha") == a)
        #expect(table.count == 2)
        #expect(table.text(b) == "beta")
        #expect(Array(table.utf8(a)) == Array("alpha".utf8))
        #expect(table.find("beta") == b && table.find("gamma") == nil)
    }

    @Test func emptyAndUnusualNames() {
        var table = NameTable()
        let empty = table.intern("")
        let quoted = table.intern(#""a b""#)
        let unicode = table.intern("naïve")
        #expect(table.text(empty) == "" && table.text(quoted) == #""a b""# && table.text(unicode) == "naïve")
        #expect(table.find("") == empty)
    }

    /// The table starts with 1024 slots and grows at half load; every name must survive each growth.
    @Test func growsPastItsFirstCapacity() {
        var table = NameTable()
        var names: [Name] = []
        for index in 0..<5000 { names.append(table.intern("n\(index)")) }
        #expect(table.count == 5000)
        for index in 0..<5000 {
            #expect(names[index].index == UInt32(index))
            #expect(table.find("n\(index)") == names[index])
            #expect(table.intern("n\(index)") == names[index])
            #expect(table.text(names[index]) == "n\(index)")
        }
        #expect(table.count == 5000)
    }

    @Test func keywordTableReservesKeywordsAndOpcodes() {
        let table = NameTable.withKeywords()
        for keyword in Keyword.allCases {
            #expect(table.find(keyword.text)?.index == keyword.rawValue)
            #expect(table.keyword(Name(index: keyword.rawValue)) == keyword)
        }
        for op in Opcode.allCases where op.isPublic {
            #expect(table.find(op.name).flatMap(table.opcode) == op, "\(op.name)")
        }
        #expect(table.find("par") == nil)
    }

    /// A module with thousands of distinct temporaries and labels parses (the parser's name maps grow too).
    @Test func modulesWithManyNames() {
        var text = "function w $f() {\n@start\n\t%t0 =w copy 0\n"
        for index in 1..<3000 { text += "@b\(index)\n\t%t\(index) =w add %t\(index - 1), 1\n" }
        text += "\tret %t2999\n}\n"
        let checked = check(text)
        #expect(checked.diagnostics.isEmpty)
        #expect(checked.module.functions[0].temps.count == 3000)
        #expect(checked.module.functions[0].blocks.count == 3000)
        #expect(checked.module.names.count > 6000)
    }
}
