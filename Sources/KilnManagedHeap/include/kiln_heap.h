// The managed heap's C interface: for code generators that inline allocation
// and for C hosts that hold references in handles.
//
// Values are tagged 64-bit words: low bit 0 an integer (the value shifted
// left by one), low bit 1 a reference (the object's header address plus one).
// An object is a header word (KILN_HEAP_* bits below) followed by its fields
// or bytes. A reference read from the heap is valid only until the next
// allocation or collection: keep it in a handle across those.
//
// Every function takes the calling thread's allocation record. Functions that
// return a value return 0 on failure; functions that return int32_t return 0
// on success and a KILN_HEAP_ERROR_* code otherwise. After a failure the
// record holds the full error (the Swift side's `AllocationRecord.error`).
// A pointer that is not an attached record is refused with
// KILN_HEAP_ERROR_INVALID_RECORD, never read as one past its first words.
//
// The Swift declarations in Sources/KilnManagedHeap are the source of truth;
// a test checks these numbers against them.

#ifndef KILN_HEAP_H
#define KILN_HEAP_H

#include <stdint.h>

/// A thread's allocation record (AllocationRecord.swift). Generated code reads two fields:
/// the cursor (the next object's header address) and the limit (end of the buffer).
typedef struct kiln_heap_record kiln_heap_record;
#define KILN_HEAP_RECORD_CURSOR_OFFSET 0
#define KILN_HEAP_RECORD_LIMIT_OFFSET 8
#define KILN_HEAP_RECORD_CLIENT_OFFSET 16

/// Header word bits (ObjectHeader.swift).
#define KILN_HEAP_RAW_BIT ((uint64_t)1 << 63)
#define KILN_HEAP_FORWARDED_BIT ((uint64_t)1 << 62)
#define KILN_HEAP_CODE_BIT ((uint64_t)1 << 61)
#define KILN_HEAP_MARK_BIT ((uint64_t)1 << 60)
#define KILN_HEAP_SIZE_MASK (((uint64_t)1 << 48) - 1)

/// Error codes (HeapError.Kind).
enum {
    KILN_HEAP_OK = 0,
    KILN_HEAP_ERROR_OUT_OF_MEMORY = 1,
    KILN_HEAP_ERROR_OBJECT_TOO_LARGE = 2,
    KILN_HEAP_ERROR_INVALID_HEADER = 3,
    KILN_HEAP_ERROR_THREADS_NOT_STOPPED = 4,
    KILN_HEAP_ERROR_NOT_A_REFERENCE = 5,
    KILN_HEAP_ERROR_INVALID_REFERENCE = 6,
    KILN_HEAP_ERROR_INDEX_OUT_OF_BOUNDS = 7,
    KILN_HEAP_ERROR_WRONG_KIND = 8,
    KILN_HEAP_ERROR_CODE_FIELD = 9,
    KILN_HEAP_ERROR_HEAP_CORRUPTED = 10,
    KILN_HEAP_ERROR_STALE_HANDLE = 11,
    KILN_HEAP_ERROR_TOO_MANY_HANDLES = 12,
    KILN_HEAP_ERROR_INVALID_RECORD = 13,
    KILN_HEAP_ERROR_SYSTEM_REFUSED = 14,
    KILN_HEAP_ERROR_INVALID_CONFIGURATION = 15,
};

/// What kiln_heap_checked_access reads or writes (ObjectAccess).
enum { KILN_HEAP_ACCESS_FIELD = 0, KILN_HEAP_ACCESS_BYTE = 1, KILN_HEAP_ACCESS_LENGTH = 2 };

/// The allocation slow path: a new object with `header` (its fields 0, its bytes 0), as a
/// reference; 0 on failure. May collect: every reference not in a root is stale afterwards.
uint64_t kiln_heap_allocate_slow(kiln_heap_record *record, uint64_t header);

/// The address of field (or byte) `index` of `object`, or of its header for
/// KILN_HEAP_ACCESS_LENGTH, after checking the reference, the kind and the bounds; 0 on failure.
uintptr_t kiln_heap_checked_access(kiln_heap_record *record, uint64_t object, int64_t index, uint32_t access);

/// Collects now: fully, or only the nursery when `full` is 0.
int32_t kiln_heap_collect(kiln_heap_record *record, int32_t full);

/// Opens a handle scope on the record's thread: a token for kiln_handle_scope_close, or 0.
uint64_t kiln_handle_scope_open(kiln_heap_record *record);
/// Closes the innermost open scope (which `scope` must be); its handles become stale.
int32_t kiln_handle_scope_close(kiln_heap_record *record, uint64_t scope);
/// A handle in the innermost scope holding `value`, or 0. The handle is a root: the collector
/// updates it when the object moves.
uint64_t kiln_handle_new(kiln_heap_record *record, uint64_t value);
/// The current value of a handle.
int32_t kiln_handle_get(kiln_heap_record *record, uint64_t handle, uint64_t *value);
/// Stores `value` in a handle.
int32_t kiln_handle_set(kiln_heap_record *record, uint64_t handle, uint64_t value);

/// A global handle of the record's heap: a root until freed, usable from any thread. 0 on failure.
uint64_t kiln_global_handle_new(kiln_heap_record *record, uint64_t value);
int32_t kiln_global_handle_get(kiln_heap_record *record, uint64_t handle, uint64_t *value);
int32_t kiln_global_handle_set(kiln_heap_record *record, uint64_t handle, uint64_t value);
int32_t kiln_global_handle_free(kiln_heap_record *record, uint64_t handle);

#endif
