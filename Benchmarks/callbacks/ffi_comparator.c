/* A comparator made the way a dynamic language hands a callback to C: a
 * libffi closure. Calling its code address enters libffi's trampoline, which
 * spills the arguments into an array, and calls a generic handler with the
 * call's description (cif), a return slot, the argument array and user data;
 * the handler here unpacks the two pointers and runs c_compare's logic
 * (compare_ints, inlined into both).
 *
 * make_ffi_comparator makes one closure and returns its code address; the
 * closure lives until the process ends (kiln-bench makes exactly one). */

#include <ffi.h>
#include <stddef.h>

#include "compare.h"

static ffi_cif cif;
static ffi_type *argument_types[2];

static void handle_compare(ffi_cif *call, void *result, void **arguments, void *user)
{
	(void)call;
	(void)user;
	const void *a = *(const void **)arguments[0];
	const void *b = *(const void **)arguments[1];
	/* Integral results narrower than a register are returned widened to ffi_arg. */
	*(ffi_arg *)result = (ffi_arg)(ffi_sarg)compare_ints(a, b);
}

/* The closure's code address, or NULL when libffi cannot make one. */
void *make_ffi_comparator(void)
{
	void *code = NULL;
	ffi_closure *closure = ffi_closure_alloc(sizeof(ffi_closure), &code);
	if (closure == NULL)
		return NULL;
	argument_types[0] = &ffi_type_pointer;
	argument_types[1] = &ffi_type_pointer;
	if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, argument_types) != FFI_OK
	    || ffi_prep_closure_loc(closure, &cif, handle_compare, NULL, code) != FFI_OK) {
		ffi_closure_free(closure);
		return NULL;
	}
	return code;
}
