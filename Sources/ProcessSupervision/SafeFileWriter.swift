#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Appends bytes to a log file or a standard stream with `write(2)`, and never traps.
///
/// On Linux, Foundation's `FileHandle.write(_:)` is a `try!`: a full disk (ENOSPC) or a closed
/// pipe (EPIPE) would crash a node, the launcher or the rounds driver in the middle of a run.
/// Here the first failure is kept (``failure``) and what cannot be written is dropped and
/// counted, so the caller decides: the launcher stops a run whose logs cannot be written, a
/// training job counts as failed.
public final class SafeFileWriter: Sendable {
    /// The process's standard error (never closed by ``close()``).
    public static let standardError = SafeFileWriter(descriptor: 2, path: "standard error", owned: false)
    /// The process's standard output (never closed by ``close()``).
    public static let standardOutput = SafeFileWriter(descriptor: 1, path: "standard output", owned: false)

    /// The file written (or the stream's name).
    public let path: String
    private let descriptor: Int32
    private let owned: Bool
    private struct State {
        var failure: String?
        var droppedBytes = 0
        var closed = false
    }
    private let state = Mutex(State())

    /// Opens `path` for appending, creating it (mode 0644) when missing.
    /// - Parameter truncating: Starts the file empty instead.
    /// - Throws: An error naming the file and the reason when it cannot be opened.
    public init(appendingTo path: String, truncating: Bool = false) throws {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncating ? O_TRUNC : O_APPEND)
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else {
            throw WriteFailure(description: "cannot open \(path) for writing: \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        self.path = path
        self.owned = true
    }

    private init(descriptor: Int32, path: String, owned: Bool) {
        self.descriptor = descriptor
        self.path = path
        self.owned = owned
    }

    deinit {
        if owned, !state.withLock({ $0.closed }) { Glibc.close(descriptor) }
    }

    /// Why a write failed.
    public struct WriteFailure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Writes all of `data`, retrying short writes and interruptions.
    /// - Returns: false when the bytes could not be written (now or after an earlier failure).
    @discardableResult
    public func write(_ data: Data) -> Bool {
        state.withLock { state in
            guard state.failure == nil, !state.closed else {
                state.droppedBytes += data.count
                return false
            }
            let error: Int32? = data.withUnsafeBytes { raw in
                var written = 0
                while written < raw.count {
                    let result = Glibc.write(descriptor, raw.baseAddress! + written, raw.count - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    written += result
                }
                return nil
            }
            if let error {
                state.failure = "cannot write \(path): \(String(cString: strerror(error)))"
                state.droppedBytes += data.count
                return false
            }
            return true
        }
    }

    /// The first write that failed, if one did ("cannot write PATH: No space left on device").
    public var failure: String? { state.withLock { $0.failure } }

    /// Bytes dropped since the first failure.
    public var droppedBytes: Int { state.withLock { $0.droppedBytes } }

    /// Closes the file (a standard stream stays open); later writes are dropped.
    public func close() {
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            if owned { Glibc.close(descriptor) }
        }
    }

    /// Makes a write to a closed pipe fail with EPIPE instead of killing the process with
    /// SIGPIPE (a closed standard error must not end a node). Call once at start.
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }
}
