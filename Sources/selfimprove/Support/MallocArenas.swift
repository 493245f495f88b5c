#if canImport(Glibc)
import CMalloc
#endif
import Foundation

/// Caps glibc's malloc arenas in a node process.
///
/// glibc gives threads their own arenas (up to 8 per core); in a node, memory allocated on
/// one thread (the ZeroMQ loop decoding a message) is often freed on another (the actor that
/// consumed it), and the arenas fragment: the coordinator's resident memory crept up by about
/// 15 MB over a 100,000-question benchmark. Two arenas keep it flat, and the benchmark was no
/// slower. `MALLOC_ARENA_MAX` in the environment, if set, wins.
enum MallocArenas {
    static func limit(to count: Int32 = 2) {
        #if canImport(Glibc)
        guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil else { return }
        _ = mallopt(M_ARENA_MAX, count)
        #endif
    }
}
