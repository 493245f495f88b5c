import Foundation
import Synchronization
import ProcessSupervision

/// Writes log lines to standard error and, on a terminal, keeps a progress bar on the last
/// line: each log line clears the bar, prints, and draws the bar again.
public final class TerminalOutput: Sendable {
    private let state = Mutex<(bar: String?, partial: [UInt8])>((nil, []))
    public let isTerminal: Bool

    /// - Parameter drawsBar: Whether a progress bar may be drawn (only on a terminal anyway).
    public init(drawsBar: Bool = true) { isTerminal = drawsBar && isatty(STDERR_FILENO) == 1 }

    /// Writes bytes of a child's log; complete lines are printed, a partial one is held.
    public func write(logBytes data: Data) {
        let output = state.withLock { state -> Data? in
            state.partial.append(contentsOf: data)
            guard let lastNewline = state.partial.lastIndex(of: 0x0A) else { return nil }
            var out = Data()
            if state.bar != nil { out.append(contentsOf: Array("\r\u{1B}[K".utf8)) }
            out.append(contentsOf: state.partial[...lastNewline])
            state.partial.removeSubrange(...lastNewline)
            if let bar = state.bar { out.append(contentsOf: Array(bar.utf8)) }
            return out
        }
        if let output { SafeFileWriter.standardError.write(output) }
    }

    /// Prints one line of the launcher's own.
    public func line(_ text: String) {
        write(logBytes: Data((text + "\n").utf8))
    }

    /// Draws (or with nil, removes) the progress bar; only on a terminal.
    public func setBar(_ text: String?) {
        guard isTerminal else { return }
        state.withLock { $0.bar = text }
        SafeFileWriter.standardError.write(Data(("\r\u{1B}[K" + (text ?? "")).utf8))
    }

    /// A bar like `[#########-----------]  45%  90/200 questions  3120 paths/s  ETA 12s`.
    public static func bar(done: Int, total: Int, pathsPerSecond: Double, eta: String) -> String {
        let width = 24
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let filled = Int((fraction * Double(width)).rounded(.down))
        let percent = Int((fraction * 100).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + "\(percent)%  \(done)/\(total) questions  \(Int(pathsPerSecond)) paths/s  ETA \(eta)"
    }
}
