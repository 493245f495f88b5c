import ArgumentParser
import Logging

/// Flags every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Flag(name: .long, help: "Log JSON lines instead of text.")
    var logJSON = false

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// Bootstraps swift-log once for this process and returns the root logger.
    /// - Parameter json: Log JSON lines even without `--log-json` (a config's `monitor.format`).
    func makeLogger(label: String = "selfimprove", json forceJSON: Bool = false) -> Logger {
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
enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    // nonisolated(unsafe): only touched from the command's single startup path, before any
    // concurrent work begins.
    static func once(_ body: () -> Void) {
        guard !done else { return }
        done = true
        body()
    }
}
