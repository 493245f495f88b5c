import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import Rounds

/// `selfimprove launch CONFIG`: the whole cluster on this machine, one process per node.
struct Launch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start every node of a cluster config as its own process and supervise the run.",
        discussion: """
        The coordinator's log is shown here (and a progress bar on a terminal); every node's log is in \
        OUTPUT/logs/. Ctrl-C or SIGTERM stops every node cleanly. Exit status: 0 when the run finished, \
        1 when it failed, 78 for an invalid config, 130 when stopped first.
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "The cluster config (YAML), e.g. cluster/local.yaml.")
    var config: String

    @Flag(help: "Do not draw a progress bar even on a terminal.")
    var noProgress = false

    func run() async throws {
        let cluster = try configOptions.load(config)
        let logger = global.makeLogger(label: "launch", json: cluster.monitor.format == .json)
        var childArguments = configOptions.arguments + ["--log-level", global.logLevel]
        if global.logJSON { childArguments.append("--log-json") }
        let terminal = TerminalOutput()
        if let rounds = cluster.rounds {
            // Self-improvement rounds: every phase is a cluster run of its own (RoundsRunner).
            let runner = RoundsRunner(config: cluster, rounds: rounds, configFile: config, overrides: configOptions.overrides, edits: try configOptions.edits(),
                                      loggingArguments: ["--log-level", global.logLevel] + (global.logJSON ? ["--log-json"] : []),
                                      terminal: noProgress ? TerminalOutput(drawsBar: false) : terminal, logger: logger)
            let stopper = Task {
                await StopSignal.wait(watchStandardInput: false)
                runner.requestStop()
            }
            let status = await runner.run()
            stopper.cancel()
            if status != 0 { throw ExitCode(status) }
            return
        }
        let launcher = ClusterLauncher(config: cluster, configFile: config, childArguments: childArguments,
                                       terminal: noProgress ? TerminalOutput(drawsBar: false) : terminal,
                                       echoCoordinator: true, logger: logger)
        let stopper = Task {
            await StopSignal.wait(watchStandardInput: false)
            launcher.requestStop()
        }
        let status = await launcher.run()
        stopper.cancel()
        if status == 0 {
            logger.info("Run finished", metadata: ["output": "\(cluster.output.path)"])
        }
        if status != 0 { throw ExitCode(status) }
    }
}
