// A C host of the managed heap, built by the heap's tests against kiln_heap.h
// and loaded into the test process: it keeps a list in a handle while it
// allocates and collects, and reads it back through checked access.

#include "kiln_heap.h"

#define CHECK(condition) do { if (!(condition)) return __LINE__; } while (0)

/// Builds a list of `length` cells [i, next] through the slow path, collecting every 100
/// cells, and checks it. 0, or the line of the first check that failed.
int heap_host_run(kiln_heap_record *record, int length) {
    uint64_t scope = kiln_handle_scope_open(record);
    CHECK(scope != 0);
    uint64_t head = kiln_handle_new(record, 0);
    CHECK(head != 0);
    for (int index = length - 1; index >= 0; index--) {
        uint64_t cell = kiln_heap_allocate_slow(record, 2);
        CHECK((cell & 7) == 1);
        uint64_t next;
        CHECK(kiln_handle_get(record, head, &next) == KILN_HEAP_OK);
        uint64_t *first = (uint64_t *)kiln_heap_checked_access(record, cell, 0, KILN_HEAP_ACCESS_FIELD);
        uint64_t *second = (uint64_t *)kiln_heap_checked_access(record, cell, 1, KILN_HEAP_ACCESS_FIELD);
        CHECK(first && second && *first == 0 && *second == 0);
        *first = (uint64_t)index << 1;
        *second = next;
        CHECK(kiln_handle_set(record, head, cell) == KILN_HEAP_OK);
        if (index % 100 == 0) CHECK(kiln_heap_collect(record, 1) == KILN_HEAP_OK);
    }
    uint64_t cell;
    CHECK(kiln_handle_get(record, head, &cell) == KILN_HEAP_OK);
    for (int index = 0; index < length; index++) {
        uint64_t *header = (uint64_t *)kiln_heap_checked_access(record, cell, 0, KILN_HEAP_ACCESS_LENGTH);
        CHECK(header && (*header & KILN_HEAP_SIZE_MASK) == 2 && !(*header & KILN_HEAP_RAW_BIT));
        CHECK(*(uint64_t *)kiln_heap_checked_access(record, cell, 0, KILN_HEAP_ACCESS_FIELD) == (uint64_t)index << 1);
        uint64_t next = *(uint64_t *)kiln_heap_checked_access(record, cell, 1, KILN_HEAP_ACCESS_FIELD);
        if (index == length - 1) {
            CHECK(kiln_heap_checked_access(record, cell, 2, KILN_HEAP_ACCESS_FIELD) == 0);
            CHECK(kiln_heap_checked_access(record, cell, 0, KILN_HEAP_ACCESS_BYTE) == 0);
            CHECK(next == 0);
        }
        cell = next;
    }
    uint64_t global = kiln_global_handle_new(record, 42);
    CHECK(global != 0);
    CHECK(kiln_global_handle_free(record, global) == KILN_HEAP_OK);
    CHECK(kiln_global_handle_free(record, global) == KILN_HEAP_ERROR_STALE_HANDLE);
    CHECK(kiln_handle_scope_close(record, scope) == KILN_HEAP_OK);
    CHECK(kiln_handle_get(record, head, &cell) == KILN_HEAP_ERROR_STALE_HANDLE);
    CHECK(kiln_handle_new(record, 0) == 0);
    CHECK(kiln_heap_allocate_slow(record, KILN_HEAP_FORWARDED_BIT) == 0);
    CHECK(kiln_handle_scope_close((kiln_heap_record *)0, scope) == KILN_HEAP_ERROR_INVALID_RECORD);
    return 0;
}

/// The header's numbers, for the test to compare with the Swift declarations.
void heap_host_constants(uint64_t *out) {
    const uint64_t values[] = {
        KILN_HEAP_RECORD_CURSOR_OFFSET, KILN_HEAP_RECORD_LIMIT_OFFSET, KILN_HEAP_RECORD_CLIENT_OFFSET,
        KILN_HEAP_RAW_BIT, KILN_HEAP_FORWARDED_BIT, KILN_HEAP_CODE_BIT, KILN_HEAP_MARK_BIT, KILN_HEAP_SIZE_MASK,
        KILN_HEAP_ERROR_OUT_OF_MEMORY, KILN_HEAP_ERROR_STALE_HANDLE, KILN_HEAP_ERROR_INVALID_CONFIGURATION,
        KILN_HEAP_ACCESS_FIELD, KILN_HEAP_ACCESS_BYTE, KILN_HEAP_ACCESS_LENGTH,
    };
    for (unsigned index = 0; index < sizeof values / sizeof values[0]; index++) out[index] = values[index];
}
