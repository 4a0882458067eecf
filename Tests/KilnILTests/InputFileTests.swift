// The input files: every valid file verifies and survives printing, every
// invalid case reports exactly the diagnostics it announces.

import KilnIL
import Testing

@Suite struct ValidInputTests {
    @Test func thereAreValidInputs() {
        #expect(ValidFile.all.count >= 50, "Inputs/valid is missing or nearly empty")
    }

    /// A valid file has no errors, and exactly the warnings it announces with `# warning`.
    @Test(arguments: ValidFile.all)
    func verifies(_ file: ValidFile) {
        let checked = check(file.text, name: file.name)
        expectExactly(Expected.all(in: file.text), checked.diagnostics, in: file.name)
    }

    /// parse(print(parse(f))) has the same structure as parse(f), and printing is a fixed point.
    @Test(arguments: ValidFile.all)
    func roundTrips(_ file: ValidFile) {
        expectRoundTrip(file.text, name: file.name)
    }
}

/// Prints the module of `text`, parses the printout, and compares the two modules field by field.
func expectRoundTrip(_ text: String, name: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    var (first, _) = parseOnly(text, name: name)
    let printed = first.printed()
    var (second, diagnostics) = parseOnly(printed, name: name + " (printed)")
    let errors = diagnostics.filter { $0.severity == .error }
    #expect(errors.isEmpty, "the printout does not parse:\n\(errors.map(\.description).joined(separator: "\n"))\n\(printed)",
            sourceLocation: sourceLocation)
    // Verifying fills in the class of every temporary, which the comparison includes.
    _ = verifyModule(&first)
    _ = verifyModule(&second)
    if let difference = firstDifference(structure(of: first), structure(of: second)) {
        Issue.record("\(name) changes when printed and parsed again, at \(difference)\nprinted:\n\(printed)",
                     sourceLocation: sourceLocation)
    }
    #expect(second.printed() == printed, "printing is not a fixed point", sourceLocation: sourceLocation)
}

@Suite struct InvalidInputTests {
    @Test func thereAreInvalidCases() {
        #expect(InputCase.invalid.count >= 200)
        let names = InputCase.invalid.map(\.testDescription)
        #expect(Set(names).count == names.count, "two invalid cases share a name")
    }

    @Test(arguments: InputCase.invalid)
    func reportsExactly(_ input: InputCase) {
        let expected = Expected.all(in: input.text)
        #expect(expected.contains { $0.severity == .error }, "\(input.testDescription) announces no error")
        let checked = check(input.text, name: input.name)
        expectExactly(expected, checked.diagnostics, in: input.testDescription)
    }
}
