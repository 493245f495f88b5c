import CommandLineSupport
import Wire
import ActorCluster
import ArgumentParser
import Foundation
import Logging

/// `selfimprove peer`: one node hosting a Diagnostics actor, for smoke runs, benchmarks and
/// multi-process tests. Prints one JSON line `{"endpoint", "bound", "incarnation", "pid"}` when ready,
/// then serves until SIGINT, SIGTERM or the end of standard input.
struct Peer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a diagnostics node (echo, fail, sleep, status) until stopped.",
        discussion: "Prints {\"endpoint\",\"bound\",\"incarnation\",\"pid\"} as one JSON line on standard output once it listens."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "ZeroMQ endpoint to bind; '*' as the port picks a free one.")
    var bind = "tcp://127.0.0.1:*"

    @Option(help: "Endpoint peers should dial, if not the bound one (NAT, proxies, 0.0.0.0 binds).")
    var advertise: String?

    @Option(help: "Node name for logs.")
    var name = "peer"

    @Option(help: "Endpoint of a node to join at start (repeatable).")
    var join: [String] = []

    @Option(help: "After joining, call echo on every other node's diagnostics actor this many times and print a JSON result line.")
    var probeCalls = 0

    @Option(help: "Application heartbeat interval in milliseconds.")
    var heartbeatMs = 250

    @Option(help: "Silence in milliseconds after which a peer is declared down.")
    var failureTimeoutMs = 2000

    @Option(help: "Largest message in bytes this node sends or accepts.")
    var maxMessageSize = 64 << 20

    @Flag(help: "Serve a bare ZeroMQ ROUTER echo instead of an actor node (benchmark baseline).")
    var rawEcho = false

    @Flag(inversion: .prefixedNo, help: "Stop when standard input closes.")
    var stopOnStdinEOF = true

    func run() async throws {
        let logger = global.makeLogger()
        if rawEcho {
            let (server, endpoint) = try RawEchoServer.start(bind: bind)
            printJSONLine(["endpoint": endpoint, "incarnation": "0", "pid": Int(getpid())])
            await StopSignal.wait(watchStandardInput: stopOnStdinEOF)
            server.stop()
            return
        }
        var configuration = ClusterSystemConfiguration()
        configuration.nodeName = name
        configuration.bindEndpoint = bind
        configuration.advertisedEndpoint = advertise
        configuration.heartbeatInterval = .milliseconds(heartbeatMs)
        configuration.failureTimeout = .milliseconds(failureTimeoutMs)
        configuration.tick = min(.milliseconds(50), .milliseconds(heartbeatMs))
        configuration.maxMessageSize = maxMessageSize
        let system = try await ClusterSystem.start(configuration: configuration, logger: logger)
        try await system.register(DiagnosticsActor.self)
        let diagnostics = DiagnosticsActor(actorSystem: system)
        try system.receptionist.checkIn(diagnostics, with: DiagnosticsActor.key)
        for endpoint in join {
            try await system.join(endpoint)
        }
        printJSONLine([
            "endpoint": system.identity.endpoint, "bound": system.boundEndpoint,
            "incarnation": String(system.identity.incarnation), "pid": Int(getpid()),
        ])
        if probeCalls > 0 {
            let result = try await probe(system: system, calls: probeCalls, logger: logger)
            printJSONLine(["probe": result])
        }
        await StopSignal.wait(watchStandardInput: stopOnStdinEOF)
        await system.shutdown()
        withExtendedLifetime(diagnostics) {}
    }

    /// Calls echo on every other node's diagnostics actor, waiting up to 10 s for one to be listed.
    private func probe(system: ClusterSystem, calls: Int, logger: Logger) async throws -> [String: Any] {
        var others: [DiagnosticsActor] = []
        for await listing in system.receptionist.listing(DiagnosticsActor.key) {
            others = listing.filter { $0.id.node != system.identity }
            if !others.isEmpty { break }
        }
        var served = 0
        for target in others {
            for sequence in 0 ..< calls {
                var request = Selfimprove_V1_EchoRequest()
                request.sequence = UInt64(sequence)
                let reply = try await target.echo(request)
                guard reply.sequence == UInt64(sequence) else {
                    throw ValidationError("echo \(sequence) came back as \(reply.sequence)")
                }
                served += 1
            }
        }
        return ["calls": served, "targets": others.map { $0.id.description }]
    }
}
