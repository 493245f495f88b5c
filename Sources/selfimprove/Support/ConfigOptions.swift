import ArgumentParser
import ClusterNodes
import Foundation
import ProcessSupervision

/// The options that pick and adjust a cluster configuration (`launch`, `node`, `bench pipeline`).
struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set method.m=16 (repeatable).", valueName: "key.path=value"))
    var overrides: [String] = []

    @Option(help: "Output folder (overrides the config's 'output'; relative to the working directory).")
    var output: String?

    /// Loads the config, or prints the error and exits with ``ConfigExit/status``.
    func load(_ file: String) throws -> ClusterConfig {
        try Self.load(file, overrides: overrides, output: output)
    }

    /// Loads a config, or prints the error and exits with ``ConfigExit/status``.
    static func load(_ file: String, overrides: [String] = [], output: String? = nil) throws -> ClusterConfig {
        do {
            return try ClusterConfig.load(file: file, overrides: overrides, output: output)
        } catch {
            SafeFileWriter.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(ConfigExit.status)
        }
    }

    /// The same options as arguments, for child processes.
    var arguments: [String] {
        overrides.flatMap { ["--set", $0] } + (output.map { ["--output", $0] } ?? [])
    }
}

/// The exit status of a command whose configuration is invalid (`EX_CONFIG` of sysexits.h).
enum ConfigExit {
    static let status: Int32 = 78
}
