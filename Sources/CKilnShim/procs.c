// The words generated code and the proc routines share with the runtime
// (see "Procs" in CKilnShim.h). Plain globals: procs run on one thread of
// the process, and the routines embed these addresses as constants.

#include "CKilnShim.h"

uintptr_t kiln_stack_limit;
struct kiln_proc_globals kiln_procs;

struct kiln_proc_globals *kiln_procs_address(void) { return &kiln_procs; }
uintptr_t *kiln_stack_limit_address(void) { return &kiln_stack_limit; }
