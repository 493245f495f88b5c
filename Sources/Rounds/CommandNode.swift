import ClusterNodes
import Foundation
import Logging
import ProcessSupervision

/// Runs a verifier whose config entry names a `command` (a node in another language): starts
/// the program with ``CommandNodeArguments``, passes its log through to this process's standard
/// error, and stops it (SIGTERM, closed standard input, then SIGKILL after the config's
/// `stop_grace`) when this process is asked to stop. `launch` and the Slurm script start nodes
/// through `selfimprove node`, so they run and supervise it like any node.
public enum CommandNode {
    /// Runs the program to its end.
    /// - Returns: Its exit status (a program killed by a signal counts as failed, 1).
    public static func run(config: ClusterConfig, settings: ClusterConfig.VerifierSettings, name: String, coordinatorEndpoint: String,
                    port: Int?, advertise: String?, logger: Logger, stopRequested: @escaping @Sendable () async -> Void) async throws -> Int32
    {
        let words = CommandNodeArguments.make(config: config, settings: settings, name: name, coordinatorEndpoint: coordinatorEndpoint,
                                              port: port, advertise: advertise)
        let program = try resolve(words[0])
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: program, arguments: Array(words.dropFirst()), unblockingSignals: true, standardErrorHandler: { data in
                SafeFileWriter.standardError.write(data)
            })
        } catch {
            throw NodeRunner.StartError(description: "cannot start verifier '\(name)''s command \(program): \(error)")
        }
        logger.info("Started the verifier's command", metadata: ["program": "\(program)", "pid": "\(child.pid)"])
        let stopper = Task {
            await stopRequested()
            guard !Task.isCancelled else { return }
            _ = await child.stop(grace: config.supervision.stopGrace)
        }
        defer { stopper.cancel() }
        let status = await child.waitForExit()
        if status != 0 {
            logger.warning("The verifier's command exited", metadata: ["program": "\(program)", "status": "\(status)"])
        }
        return status == 0 || status == NodeRunner.ExitStatus.interrupted || status == NodeRunner.ExitStatus.failed ? status : NodeRunner.ExitStatus.failed
    }

    /// The program's path: as given when it has a slash (the config made it absolute), else
    /// the first match on `PATH`.
    private static func resolve(_ program: String) throws -> String {
        if program.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: program) else {
                throw NodeRunner.StartError(description: "the verifier's command \(program) is not an executable file (cluster/setup builds peers/c-verifier)")
            }
            return program
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw NodeRunner.StartError(description: "the verifier's command '\(program)' is not on PATH")
    }
}
