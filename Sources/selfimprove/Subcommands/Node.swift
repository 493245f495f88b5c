import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import Rounds

/// `selfimprove node`: one node of a cluster, for running roles on other machines (and for
/// `launch`, which starts every node this way).
struct Node: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one node (coordinator, sampler, verifier or trainer) of a cluster config.",
        discussion: """
        Other roles join the coordinator at the address the config gives (coordinator.host/port or \
        coordinator.advertise), or at --coordinator. Exit status: 0 when the run finished, 1 when it \
        failed, 69 when the node cannot work on this machine and a restart would fail the same way \
        (then one JSON line {"unrecoverable": REASON, "role", "name"} on standard output says why), 78 for \
        an invalid config, 130 when stopped by a signal first.
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions

    @Option(help: "The cluster config (YAML).")
    var config: String

    @Option(help: "coordinator, sampler, verifier or trainer.")
    var role: String

    @Option(help: "The node's name in the config (e.g. sampler-2).")
    var name: String

    @Option(help: "The coordinator's endpoint, when the config does not fix it (e.g. tcp://10.0.0.5:7400).")
    var coordinator: String?

    @Option(help: "Listen on this port instead of the config's (launch restarts a coordinator on its old port).")
    var port: Int?

    @Option(help: "Run the entry --name under this name (a Kubernetes pod's or a Slurm task's): replicas of one entry need unique names.")
    var instance: String?

    @Option(help: "The endpoint other nodes dial, instead of the config's (e.g. tcp://$(POD_IP):7401).")
    var advertise: String?

    @Option(help: "Serve metrics on this port instead of monitor.metrics' port + node index (a pod has its own address).")
    var metricsPort: Int?

    @Flag(help: "Print {\"endpoint\",\"pid\",\"role\",\"name\"} as one JSON line on standard output once listening.")
    var readyLine = false

    @Flag(help: "Stop when standard input closes (set by launch, so nodes never outlive it).")
    var stopOnStdinEOF = false

    func validate() throws {
        guard ClusterConfig.Role(rawValue: role) != nil else {
            throw ValidationError("--role '\(role)' is not one of coordinator, sampler, verifier, trainer")
        }
    }

    func run() async throws {
        MallocArenas.limit()
        let cluster = try configOptions.load(config)
        let logger = global.makeLogger(label: name, json: cluster.monitor.format == .json)
        let role = ClusterConfig.Role(rawValue: role)!
        let readyLine = readyLine, name = name
        let watchStdin = stopOnStdinEOF
        do {
            if role == .verifier, let settings = cluster.verifiers.first(where: { $0.address.name == name }), settings.command != nil {
                let status = try await CommandNode.run(
                    config: cluster, settings: settings, name: instance ?? name,
                    coordinatorEndpoint: try coordinator ?? NodeRunner.coordinatorEndpoint(cluster), port: port, advertise: advertise,
                    logger: logger, stopRequested: { await StopSignal.wait(watchStandardInput: watchStdin) })
                if status != 0 { throw ExitCode(status) }
                return
            }
            let status = try await NodeRunner.run(
                config: cluster, role: role, name: name, coordinatorEndpoint: coordinator, port: port,
                overrides: NodeRunner.Overrides(instance: instance, advertise: advertise, metricsPort: metricsPort), logger: logger,
                onReady: { endpoint in
                    if readyLine {
                        printJSONLine(["endpoint": endpoint, "pid": Int(getpid()), "role": role.rawValue, "name": name])
                    }
                },
                stopRequested: { await StopSignal.wait(watchStandardInput: watchStdin) })
            if status != 0 { throw ExitCode(status) }
        } catch let error as NodeRunner.StartError {
            logger.error("\(error.description)")
            throw ExitCode(ConfigExit.status)
        } catch let error as NodeRunner.Unrecoverable {
            // Supervisors (launch) read this line: restarting the node cannot help.
            logger.critical("The node cannot work on this machine; a restart would fail the same way", metadata: ["reason": "\(error.description)"])
            printJSONLine(["unrecoverable": error.description, "role": role.rawValue, "name": instance ?? name])
            throw ExitCode(NodeRunner.ExitStatus.unrecoverable)
        }
    }
}
