import Backends
import Foundation

/// The command line a verifier run as a program of its own (`command:` in its config entry,
/// e.g. the C node in `peers/c-verifier`) is started with: the entry's `command`, then the
/// options below, so that the program needs no YAML parser. Every such program must accept
/// them (`peers/c-verifier/README.md` documents the contract):
///
/// | option | meaning |
/// | --- | --- |
/// | `--name NAME` | the node's name (logs, `ScoreBatchReply.verifier`) |
/// | `--bind tcp://HOST:PORT` | the ROUTER's endpoint; port `*` picks a free one |
/// | `--advertise ENDPOINT` | the endpoint peers dial, when not the bound one |
/// | `--coordinator ENDPOINT` | the node to join |
/// | `--heartbeat-ms N`, `--failure-timeout-ms N` | `network.heartbeat_interval`, `network.failure_timeout` |
/// | `--curve-keys DIR --curve-key-name ENTRY --curve-domain D --curve-allow A,B,...` | with `security.curve` |
/// | `--stop-on-stdin-eof` | stop when standard input closes (the parent died) |
public enum CommandNodeArguments {
    /// The program and its arguments for verifier `settings`.
    /// - Parameters:
    ///   - name: The node's name at run time (an instance name, or the entry's).
    ///   - coordinatorEndpoint: Where the coordinator listens.
    ///   - port: Listen on this port instead of the config's.
    ///   - advertise: The endpoint to advertise instead of the config's.
    public static func make(config: ClusterConfig, settings: ClusterConfig.VerifierSettings, name: String, coordinatorEndpoint: String,
                            port: Int? = nil, advertise: String? = nil) -> [String]
    {
        var address = settings.address
        if let port { address.port = port }
        var arguments = settings.command ?? []
        arguments += ["--name", name, "--bind", address.bindEndpoint, "--coordinator", coordinatorEndpoint,
                      "--heartbeat-ms", "\(config.network.heartbeatInterval.milliseconds)",
                      "--failure-timeout-ms", "\(config.network.failureTimeout.milliseconds)", "--stop-on-stdin-eof"]
        if let advertised = advertise ?? address.advertise { arguments += ["--advertise", advertised] }
        if config.security.curve {
            // The same files and allow-list as ClusterKeys gives a Swift node.
            arguments += ["--curve-keys", config.security.keys.path, "--curve-key-name", settings.address.name,
                          "--curve-domain", ClusterKeys.domain(of: config),
                          "--curve-allow", config.nodes.map(\.address.name).joined(separator: ",")]
        }
        return arguments
    }
}
