import Foundation
import Synchronization

/// A child OS process whose output is drained while it runs, for supervisors, benchmarks and
/// multi-process tests.
///
/// Standard output is split into lines, read with ``nextLine(timeout:)``; standard error is kept
/// (the last 64 KiB) for diagnostics. Standard input is a pipe held open for the child's life:
/// a child that exits when its standard input closes (as `selfimprove peer` does) therefore
/// never outlives its parent. The process is killed with SIGKILL when this object goes away.
///
/// Thread-safety: all methods may be called from any task.
public final class ChildProcess: Sendable {
    public let executable: String
    public let arguments: [String]

    private let process: Process
    private let stdinPipe: Pipe
    private let shared = Shared()

    /// State shared with the pipe and termination handlers.
    private final class Shared: Sendable {
        let exitStatus = Mutex<Int32?>(nil)
        /// Killed by a signal (then `exitStatus` is the signal's number).
        let signalled = Mutex(false)
        let exited = Mutex<[CheckedContinuation<Int32, Never>]>([])
        let stderrTail = Mutex<[UInt8]>([])
        /// The child's standard error reached its end (everything it wrote is in `stderrTail`).
        let stderrClosed = Mutex(false)
        let output = Mutex(LineQueue())
    }

    /// Lines read from standard output and not yet taken, and the readers waiting for one.
    struct LineQueue {
        var buffer: [UInt8] = []
        var lines: [String] = []
        var closed = false
        var waiters: [UInt64: CheckedContinuation<String?, Never>] = [:]
        var nextToken: UInt64 = 0

        /// Hands lines to waiting readers first. Returns the continuations to resume.
        mutating func deliver() -> [(CheckedContinuation<String?, Never>, String?)] {
            var resumed: [(CheckedContinuation<String?, Never>, String?)] = []
            while !waiters.isEmpty, !lines.isEmpty || closed {
                guard let token = waiters.keys.min(), let waiter = waiters.removeValue(forKey: token) else { break }
                resumed.append((waiter, lines.isEmpty ? nil : lines.removeFirst()))
            }
            return resumed
        }
    }

    /// Starts the child.
    /// - Parameters:
    ///   - standardErrorHandler: Also receives every chunk the child writes to
    ///     standard error (a supervisor writing it to a log file, say), on a background thread.
    ///   - unblockingSignals: Start the child with no signal blocked. A child inherits the
    ///     signal mask of the thread that spawns it, and libdispatch's threads block nearly
    ///     every signal. A Swift child wants that (libdispatch receives signals through a
    ///     `signalfd`, which needs them blocked in every thread), but a shell does not: it never
    ///     sees SIGCHLD, hangs in `wait` over zombie children, and ignores SIGTERM.
    /// - Throws: If the executable cannot be started.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil, workingDirectory: URL? = nil,
                unblockingSignals: Bool = false, standardErrorHandler: (@Sendable (Data) -> Void)? = nil) throws
    {
        self.executable = executable
        self.arguments = arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        let stdinPipe = Pipe(), stdoutPipe = Pipe(), stderrPipe = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        self.process = process
        self.stdinPipe = stdinPipe
        let shared = self.shared
        Self.drain(stdoutPipe.fileHandleForReading, name: "stdout") { data in
            let resumed = shared.output.withLock { queue in
                if data.isEmpty {
                    if !queue.buffer.isEmpty { queue.lines.append(String(decoding: queue.buffer, as: UTF8.self)) }
                    queue.buffer.removeAll()
                    queue.closed = true
                } else {
                    queue.buffer.append(contentsOf: data)
                    while let newline = queue.buffer.firstIndex(of: 0x0A) {
                        queue.lines.append(String(decoding: queue.buffer[..<newline], as: UTF8.self))
                        queue.buffer.removeSubrange(...newline)
                    }
                }
                return queue.deliver()
            }
            for (waiter, line) in resumed { waiter.resume(returning: line) }
        }
        Self.drain(stderrPipe.fileHandleForReading, name: "stderr") { data in
            guard !data.isEmpty else {
                shared.stderrClosed.withLock { $0 = true }
                return
            }
            standardErrorHandler?(data)
            shared.stderrTail.withLock { tail in
                tail.append(contentsOf: data)
                if tail.count > 64 << 10 { tail.removeFirst(tail.count - (64 << 10)) }
            }
        }
        process.terminationHandler = { process in
            let status = process.terminationStatus
            shared.signalled.withLock { $0 = process.terminationReason == .uncaughtSignal }
            shared.exitStatus.withLock { $0 = status }
            let waiters = shared.exited.withLock { waiters in
                defer { waiters.removeAll() }
                return waiters
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
        if unblockingSignals {
            try Self.withNoSignalsBlocked { try process.run() }
        } else {
            try process.run()
        }
    }

    /// Runs `body` (which spawns the child) with this thread's signal mask emptied.
    private static func withNoSignalsBlocked<T>(_ body: () throws -> T) rethrows -> T {
        var empty = sigset_t()
        var saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        return try body()
    }

    /// Reads a pipe on a thread of its own until end of file (or an error), handing each chunk
    /// to `onData` and finally an empty chunk. Blocking reads on a dedicated thread instead of
    /// `FileHandle.readabilityHandler`: with several children, the dispatch sources behind
    /// those handlers crashed libdispatch's event loop when a pipe closed (seen in the tests).
    private static func drain(_ handle: FileHandle, name: String, _ onData: @escaping @Sendable (Data) -> Void) {
        let thread = Thread {
            let descriptor = handle.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    onData(Data(buffer[0 ..< count]))
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    break   // end of file, or an error: either way nothing more comes
                }
            }
            onData(Data())
            try? handle.close()
        }
        thread.name = "child-\(name)"
        thread.start()
    }

    /// An executable built next to the running program (the `selfimprove` binary beside a test
    /// bundle, say), or `$SELFIMPROVE_BIN` when set; nil if there is none.
    public static func siblingExecutable(named name: String) -> String? {
        if let path = ProcessInfo.processInfo.environment["SELFIMPROVE_BIN"] { return path }
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            here.appendingPathComponent(name).path,
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/\(name)").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The child's process id.
    public var pid: Int32 { process.processIdentifier }

    /// Whether the child is still running.
    public var isRunning: Bool { shared.exitStatus.withLock { $0 } == nil }

    /// The last 64 KiB the child wrote to standard error.
    public var standardErrorTail: String {
        String(decoding: shared.stderrTail.withLock { $0 }, as: UTF8.self)
    }

    /// Sends a signal (SIGKILL, SIGSTOP, SIGCONT, SIGTERM, ...).
    public func send(signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Closes the child's standard input.
    public func closeStandardInput() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    /// Waits for the child to exit and returns its status. Its standard error is read to the end
    /// first (``standardErrorTail`` then holds its last words), unless a process it started
    /// keeps the pipe open: that is waited for at most 2 s.
    public func waitForExit() async -> Int32 {
        let status = await withCheckedContinuation { continuation in
            let status = shared.exitStatus.withLock { status -> Int32? in
                if let status { return status }
                shared.exited.withLock { $0.append(continuation) }
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
        for _ in 0 ..< 200 where !shared.stderrClosed.withLock({ $0 }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return status
    }

    /// Waits for the child to exit (as ``waitForExit()``) and says how it ended.
    /// - Parameter throughWrapper: The child is a wrapper (a shell, an entry point) that passes
    ///   the signal that killed its own child on as an exit status.
    public func waitForTermination(throughWrapper: Bool = false) async -> ProcessTermination {
        let status = await waitForExit()
        if shared.signalled.withLock({ $0 }) { return ProcessTermination(status: status, uncaughtSignal: true) }
        return throughWrapper ? ProcessTermination(wrapperStatus: status) : ProcessTermination(status: status, uncaughtSignal: false)
    }

    /// Asks the child to stop (SIGTERM and closed standard input); after `grace`, kills it.
    /// - Returns: The exit status.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) async -> Int32 {
        guard isRunning else { return await waitForExit() }
        send(signal: SIGCONT)
        send(signal: SIGTERM)
        closeStandardInput()
        let killer = Task {
            try? await Task.sleep(for: grace)
            if !Task.isCancelled { self.send(signal: SIGKILL) }
        }
        let status = await waitForExit()
        killer.cancel()
        return status
    }

    /// The next line of standard output, or nil if the child closed it or `timeout` passed.
    public func nextLine(timeout: Duration) async -> String? {
        let output = shared
        let token = output.output.withLock { queue in
            defer { queue.nextToken += 1 }
            return queue.nextToken
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            let waiter = output.output.withLock { $0.waiters.removeValue(forKey: token) }
            waiter?.resume(returning: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let resumed = output.output.withLock { queue in
                queue.waiters[token] = continuation
                return queue.deliver()
            }
            for (waiter, line) in resumed { waiter.resume(returning: line) }
        }
    }
}
