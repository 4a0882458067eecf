// Control-flow shapes that once broke the code generator, compiled and run in
// this process: long runs of empty blocks (written so, or left behind when
// folding turns constant branches into jumps) and loops made only of empty
// blocks.

import KilnCode
@testable import KilnCodegen
import KilnIL
import KilnLoader
import Testing

/// Compiles `text`, loads it and calls its function `name` with one integer argument.
func runInProcess(_ text: String, _ name: String = "main", argument: Int64 = 0) throws -> Int64 {
    let (_, module) = try compiled(text)
    let loader = try Loader(options: .init())
    let crate = try loader.load(module)
    let index = try #require(crate.functionIndex(named: name))
    let entry = try #require(UnsafeRawPointer(bitPattern: crate.entry(ofFunction: index)))
    typealias OneArgument = @convention(c) (Int64) -> Int64
    return unsafeBitCast(entry, to: OneArgument.self)(argument)
}

@Suite struct ShapeTests {
    /// A function whose start block falls through `count` empty labels before returning 7.
    static func emptyRun(_ count: Int) -> String {
        var text = "export function l $main(l %n) {\n@start\n"
        for index in 0..<count { text += "@empty\(index)\n" }
        return text + "\tret 7\n}\n"
    }

    @Test(arguments: [1, 63, 64, 65, 66, 200, 5000])
    func longRunsOfEmptyBlocksCompile(_ count: Int) throws {
        #expect(try runInProcess(ShapeTests.emptyRun(count)) == 7)
    }

    /// Constant `jnz` in a row: folding turns each into `jmp`, leaving a run of empty blocks.
    @Test func foldedBranchChainsCompile() throws {
        var text = "export function l $main(l %n) {\n@start\n"
        for index in 0..<300 {
            text += "@b\(index)\n\tjnz 1, @b\(index + 1), @dead\(index)\n@dead\(index)\n\tret \(index)\n"
        }
        text += "@b300\n\t%r =l add %n, 1\n\tret %r\n}\n"
        #expect(try runInProcess(text, argument: 41) == 42)
    }

    /// Empty blocks that jump to each other forever: the loop must survive as a jump to itself,
    /// and the code before it must still run (the branch away from it is taken here).
    @Test func loopsOfEmptyBlocksCompile() throws {
        let text = """
            export function l $main(l %n) {
            @start
            	jnz %n, @done, @spin
            @spin
            	jmp @again
            @again
            	jmp @spin
            @done
            	%r =l mul %n, 3
            	ret %r
            }
            """
        #expect(try runInProcess(text, argument: 5) == 15)
        let (_, module) = try compiled("""
            export function $forever() {
            @start
            	jmp @a
            @a
            	jmp @b
            @b
            	jmp @a
            }
            """)
        // The loop is one jump to itself: `jmp rel8` with displacement -2.
        let code = module.functions[0].code
        #expect(zip(code, code.dropFirst()).contains { $0 == 0xEB && $1 == 0xFE })
    }
}
