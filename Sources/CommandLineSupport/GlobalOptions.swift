import ArgumentParser
import Logging

/// Flags every subcommand shares.
public struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "info"

    @Flag(name: .long, help: "Log JSON lines instead of text.")
    public var logJSON = false

    public init() {}

    public func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// Bootstraps swift-log once for this process and returns the root logger.
    /// - Parameter json: Log JSON lines even without `--log-json` (a config's `monitor.format`).
    public func makeLogger(label: String = "selfimprove", json forceJSON: Bool = false) -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logJSON || forceJSON
        LoggingBootstrap.once {
            LoggingSystem.bootstrap { label in
                var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: label)
    }
}

/// Guards `LoggingSystem.bootstrap`, which may run only once per process.
public enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    // nonisolated(unsafe): only touched from the command's single startup path, before any
    // concurrent work begins.
    public static func once(_ body: () -> Void) {
        guard !done else { return }
        done = true
        body()
    }
}
