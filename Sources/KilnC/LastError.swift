// The message `kiln_last_error` returns: one per thread, owned by Kiln.
//
// Each entry sets it: to the failure's text, or back to "" after a success. A message
// lives in malloc'd memory held in a pthread key, freed when the next message replaces it
// or when the thread exits, so it stays valid until the thread's next call into the API.

import Glibc

enum LastError {
    /// The key that holds the calling thread's message (a strdup'd C string, or nil).
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { free($0) }
        precondition(status == 0, "pthread_key_create failed: the process is out of thread keys")
        return key
    }()

    /// Replaces the calling thread's message; nil clears it.
    static func set(_ message: String?) {
        let old = pthread_getspecific(key)
        if message == nil && old == nil { return }
        pthread_setspecific(key, message.map { UnsafeMutableRawPointer(strdup($0)) })
        free(old)
    }

    /// The calling thread's message; "" (static) when there is none.
    static var current: UnsafePointer<CChar> {
        if let message = pthread_getspecific(key) { return UnsafePointer(message.assumingMemoryBound(to: CChar.self)) }
        return empty
    }

    /// Static storage for "", which callers may keep; never written after it is made.
    nonisolated(unsafe) private static let empty: UnsafePointer<CChar> = UnsafePointer(strdup(""))
}
