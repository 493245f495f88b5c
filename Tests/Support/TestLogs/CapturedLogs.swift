import Logging
import Synchronization

/// Captures the log entries of one test (tests never bootstrap the global logging system), so
/// a test can check that something was refused *and logged*.
public final class CapturedLogs: Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    public func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    public var all: [Entry] { entries.withLock { $0 } }

    public func count(_ message: String) -> Int { all.filter { $0.message == message }.count }

    /// A logger writing into this capture.
    public func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "test") { _ in CapturingLogHandler(sink: self) }
        logger.logLevel = level
        return logger
    }
}

/// The handler behind ``CapturedLogs/logger(level:)``: metadata flattened to text.
struct CapturingLogHandler: LogHandler {
    let sink: CapturedLogs
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged: [String: String] = [:]
        for (key, value) in metadata { merged[key] = "\(value)" }
        for (key, value) in event.metadata ?? [:] { merged[key] = "\(value)" }
        sink.append(.init(level: event.level, message: "\(event.message)", metadata: merged))
    }
}
