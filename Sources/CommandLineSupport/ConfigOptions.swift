import ArgumentParser
import ClusterNodes
import Foundation
import ProcessSupervision

/// The options that pick and adjust a cluster configuration (`launch`, `node`, `bench pipeline`).
public struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set method.m=16 (repeatable).", valueName: "key.path=value"))
    public var overrides: [String] = []

    @Option(help: "Output folder (overrides the config's 'output'; relative to the working directory).")
    public var output: String?

    @Option(name: .customLong("edits"), help: ArgumentHelp("Typed config changes as JSON, applied after --set (written by the rounds driver for its phases).",
                                                          valueName: "file", visibility: .hidden))
    public var editsFile: String?

    public init() {}

    /// Loads the config, or prints the error and exits with ``ConfigExit/status``.
    public func load(_ file: String) throws -> ClusterConfig {
        try Self.load(file, overrides: overrides, edits: try edits(), output: output)
    }

    /// The typed edits of `--edits`, or prints why they cannot be read and exits with
    /// ``ConfigExit/status``.
    public func edits() throws -> [ConfigEdit] {
        do {
            return try editsFile.map { try ConfigEdit.read(URL(fileURLWithPath: $0)) } ?? []
        } catch {
            SafeFileWriter.standardError.write(Data("error: cannot read the config edits in \(editsFile ?? "-"): \(error)\n".utf8))
            throw ExitCode(ConfigExit.status)
        }
    }

    /// Loads a config, or prints the error and exits with ``ConfigExit/status``.
    public static func load(_ file: String, overrides: [String] = [], edits: [ConfigEdit] = [], output: String? = nil) throws -> ClusterConfig {
        do {
            return try ClusterConfig.load(file: file, overrides: overrides, edits: edits, output: output)
        } catch {
            SafeFileWriter.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(ConfigExit.status)
        }
    }

    /// Loads a config whose nodes a deployment (`k8s`, `slurm`) binds on every interface:
    /// refused without CURVE unless `security.plaintext_network` accepts it, then warned.
    public func loadForAllInterfaces(_ file: String) throws -> ClusterConfig {
        let config = try load(file)
        if let refusal = config.security.plaintextRefusal { throw ValidationError(refusal) }
        if let warning = config.security.plaintextWarning { SafeFileWriter.standardError.write(Data((warning + "\n").utf8)) }
        return config
    }

    /// The same options as arguments, for child processes.
    public var arguments: [String] {
        overrides.flatMap { ["--set", $0] } + (output.map { ["--output", $0] } ?? []) + (editsFile.map { ["--edits", $0] } ?? [])
    }
}

/// The exit status of a command whose configuration is invalid (`EX_CONFIG` of sysexits.h).
public enum ConfigExit {
    public static let status: Int32 = 78
}
