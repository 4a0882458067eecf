// Value numbering: repeats of pure computations reuse the dominating one; loads,
// allocations and computations on sibling paths do not.

import KilnIL
@testable import KilnPasses
import Testing

@Suite struct ValueNumberingTests {
    @Test func repeatsInOneBlockAndInDominatedBlocks() throws {
        let module = try checkPass("""
            function w $f(w %a, w %b) {
            @start
            	%x =w add %a, %b
            	%y =w add %b, %a
            	%c =w csltw %a, %b
            	%d =w csgtw %b, %a
            	%s =w add %x, %y
            	%t =w add %s, %c
            	%u =w add %t, %d
            	jnz %u, @then, @end
            @then
            	%z =w add %a, %b
            	%w =w div %z, %b
            	%w2 =w div %z, %b
            	%v =w add %w, %w2
            	ret %v
            @end
            	ret %u
            }
            """, through: .gvn)
        #expect(body(module) == """
            @start
            %x =w add %a, %b
            %c =w csltw %a, %b
            %s =w add %x, %x
            %t =w add %s, %c
            %u =w add %t, %c
            jnz %u, @then, @end
            @then
            %w =w div %x, %b
            %v =w add %w, %w
            ret %v
            @end
            ret %u
            """)
    }

    @Test func siblingsLoadsAndAllocationsAreNotShared() throws {
        let module = try checkPass("""
            function l $f(w %c, l %p) {
            @start
            	%s1 =l alloc8 8
            	%s2 =l alloc8 8
            	%l1 =l loadl %p
            	storel 1, %p
            	%l2 =l loadl %p
            	%k =l add %l1, %l2
            	%k2 =l add %k, %s1
            	%k3 =l add %k2, %s2
            	jnz %c, @a, @b
            @a
            	%x =l mul %k3, 3
            	ret %x
            @b
            	%y =l mul %k3, 3
            	%z =w mul %c, 3
            	%zl =l extsw %z
            	%r =l add %y, %zl
            	ret %r
            }
            """, through: .gvn)
        let function = module.functions[0]
        #expect(function.instructions.count == 15)
    }
}
