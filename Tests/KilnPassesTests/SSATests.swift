// SSA construction: the result must be in SSA form (one definition per
// temporary, every use dominated by its definition), must still verify, and
// must place exactly the phis that liveness requires.

import KilnIL
@testable import KilnPasses
import Testing

/// Parses, verifies, runs the pipeline through `pass`; fails the test on any front-end error.
func compile(_ text: String, through pass: Pass = .ssa) throws -> Module {
    let (parsed, diagnostics) = parseAndVerify(SourceFile(name: "test.ssa", text: text))
    let errors = diagnostics.filter { $0.severity == .error }
    try #require(errors.isEmpty, "front end: \(errors.map(\.description))")
    var module = parsed
    runPipeline(&module, until: pass)
    return module
}

/// Every way a function can fail to be in SSA form, as readable strings.
func ssaViolations(_ function: Function) -> [String] {
    var problems: [String] = []
    let flow = ControlFlow(function)
    var definitionBlock = [Int](repeating: -1, count: function.temps.count)
    var definitionIndex = [Int](repeating: -1, count: function.temps.count)
    func name(_ value: Value) -> String { "temp \(value.index)" }
    for (blockIndex, block) in function.blocks.enumerated() {
        for phi in function.phis[block.phiRange] {
            if definitionBlock[Int(phi.to.index)] >= 0 { problems.append("\(name(phi.to)) defined twice") }
            definitionBlock[Int(phi.to.index)] = blockIndex
            definitionIndex[Int(phi.to.index)] = -1
        }
        for index in block.instructionRange where function.instructions[index].to.isTemp {
            let to = function.instructions[index].to
            if definitionBlock[Int(to.index)] >= 0 { problems.append("\(name(to)) defined twice") }
            definitionBlock[Int(to.index)] = blockIndex
            definitionIndex[Int(to.index)] = index
        }
    }
    func check(_ value: Value, block: Int, position: Int) {
        guard value.isTemp else { return }
        let home = definitionBlock[Int(value.index)]
        if home < 0 { problems.append("\(name(value)) used but not defined"); return }
        if home == block {
            if definitionIndex[Int(value.index)] >= position { problems.append("\(name(value)) used before its definition") }
        } else if !flow.dominates(home, block) {
            problems.append("\(name(value)) used in block \(block), not dominated by block \(home)")
        }
    }
    for (blockIndex, block) in function.blocks.enumerated() {
        for phi in function.phis[block.phiRange] {
            for argument in function.arguments(of: phi) {
                check(argument.value, block: Int(argument.block.index), position: Int.max)
            }
        }
        for index in block.instructionRange {
            check(function.instructions[index].arg0, block: blockIndex, position: index)
            check(function.instructions[index].arg1, block: blockIndex, position: index)
        }
        check(block.jump.arg, block: blockIndex, position: Int.max)
    }
    return problems
}

/// Builds SSA, checks the SSA properties, and checks that the printed result verifies again.
func checkSSA(_ text: String) throws -> Module {
    let module = try compile(text)
    for function in module.functions {
        #expect(ssaViolations(function) == [], "\(module.printed(function: 0))")
    }
    let (_, again) = parseAndVerify(SourceFile(name: "printed.ssa", text: module.printed()))
    #expect(again.filter { $0.severity == .error }.isEmpty, "\(again.map(\.description))\n\(module.printed())")
    return module
}

func phiCount(_ module: Module) -> Int { module.functions.reduce(0) { $0 + $1.phis.count } }

@Suite struct SSATests {
    @Test func loopCountersGetPhisInTheHeader() throws {
        let module = try checkSSA("""
            function w $f(w %n) {
            @start
            	%i =w copy 0
            	%s =w copy 0
            @loop
            	%s =w add %s, %i
            	%i =w add %i, 1
            	%c =w csltw %i, %n
            	jnz %c, @loop, @end
            @end
            	ret %s
            }
            """)
        let loop = module.functions[0].blocks[1]
        #expect(loop.phiCount == 2)
        #expect(phiCount(module) == 2)
    }

    @Test func diamondJoinsWithOnePhi() throws {
        let module = try checkSSA("""
            function w $f(w %c) {
            @start
            	jnz %c, @a, @b
            @a
            	%x =w copy 1
            	jmp @join
            @b
            	%x =w copy 2
            @join
            	ret %x
            }
            """)
        #expect(module.functions[0].blocks[3].phiCount == 1)
        #expect(module.functions[0].phiArguments.count == 2)
    }

    @Test func deadAssignmentsGetNoPhi() throws {
        // %x is reassigned on both paths but never read after the join: pruned SSA places no phi.
        let module = try checkSSA("""
            function w $f(w %c) {
            @start
            	jnz %c, @a, @b
            @a
            	%x =w copy 1
            	%y =w add %x, 1
            	jmp @join
            @b
            	%x =w copy 2
            @join
            	ret 0
            }
            """)
        #expect(phiCount(module) == 0)
    }

    @Test func aPathWithoutDefinitionReadsZero() throws {
        let module = try checkSSA("""
            function w $f(w %c) {
            @start
            	jnz %c, @a, @join
            @a
            	%x =w copy 7
            	%x =w add %x, 1
            @join
            	ret %x
            }
            """)
        let function = module.functions[0]
        let join = function.blocks[2]
        #expect(join.phiCount == 1)
        let arguments = function.arguments(of: function.phis[Int(join.phiStart)])
        let fromStart = try #require(arguments.first { $0.block == BlockID(index: 0) })
        #expect(fromStart.value.isConstant)
        #expect(function.constants[Int(fromStart.value.index)].bits == 0)
    }

    @Test func alreadySSAIsUntouched() throws {
        let text = """
            function w $f(w %n) {
            @start
            	%a =w add %n, 1
            @loop
            	%i =w phi @start 0, @loop %j
            	%j =w add %i, %a
            	%c =w csltw %j, 100
            	jnz %c, @loop, @end
            @end
            	ret %j
            }

            """
        let module = try checkSSA(text)
        #expect(module.printed() == text)
    }

    @Test func useBeforeDefinitionInALoopBody() throws {
        // %x is defined once, but read at the top of the loop before that definition: the value
        // from the previous iteration (or 0 on entry) must flow in through a phi.
        let module = try checkSSA("""
            function w $f() {
            @start
            @loop
            	%y =w add %x, 1
            	%x =w copy %y
            	%c =w csltw %x, 10
            	jnz %c, @loop, @end
            @end
            	ret %x
            }
            """)
        #expect(module.functions[0].blocks[1].phiCount == 1)
    }

    @Test func nestedLoopsAndManyReassignments() throws {
        var body = ""
        for index in 0..<20 {
            body += "\t%v =w add %v, \(index)\n\tjnz %v, @b\(index), @c\(index)\n@b\(index)\n\t%v =w mul %v, 3\n@c\(index)\n"
        }
        _ = try checkSSA("""
            function w $f(w %n) {
            @start
            	%v =w copy %n
            @outer
            	%k =w copy 0
            @inner
            \(body)	%k =w add %k, 1
            	%d =w csltw %k, %n
            	jnz %d, @inner, @next
            @next
            	%e =w csltw %v, 1000
            	jnz %e, @outer, @end
            @end
            	ret %v
            }
            """)
    }

    @Test func unreachableBlocksAreRemovedFirst() throws {
        let module = try compile("""
            function w $f() {
            @start
            	jmp @end
            @dead
            	%x =w copy 1
            	jmp @end
            @end
            	%r =w phi @start 1, @dead 2
            	ret %r
            }
            """, through: .unreachable)
        let function = module.functions[0]
        #expect(function.blocks.count == 2)
        #expect(function.phiArguments.count == 1)
        #expect(ssaViolations(function) == [])
    }

    @Test func controlFlowDominators() throws {
        let module = try compile("""
            function $f(w %c) {
            @a
            	jnz %c, @b, @c
            @b
            	jmp @d
            @c
            	jmp @d
            @d
            	jnz %c, @b2, @e
            @b2
            	jmp @d
            @e
            	ret
            }
            """, through: .unreachable)
        let flow = ControlFlow(module.functions[0])
        #expect(flow.immediateDominator == [0, 0, 0, 0, 3, 3])
        #expect(flow.dominanceFrontiers()[1] == [3])
        #expect(flow.dominanceFrontiers()[4] == [3])
        #expect(flow.dominates(0, 5))
        #expect(!flow.dominates(1, 3))
    }
}
