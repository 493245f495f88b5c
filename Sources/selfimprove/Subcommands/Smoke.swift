import CommandLineSupport
import Rounds
import Wire
import ActorCluster
import ArgumentParser
import Foundation
import Logging
import ProcessSupervision

/// `selfimprove smoke`: the main job until the cluster lands. Starts a second node as its own
/// process, makes calls both ways between the two, and reports what happened.
struct Smoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start two nodes as separate processes and make calls between them."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Echo calls to make in each direction.")
    var calls = 1000

    func validate() throws {
        guard calls > 0 else { throw ValidationError("--calls must be at least 1") }
    }

    func run() async throws {
        let logger = global.makeLogger()
        var configuration = ClusterSystemConfiguration()
        configuration.nodeName = "smoke-a"
        let system = try await ClusterSystem.start(configuration: configuration, logger: logger)
        try await system.register(DiagnosticsActor.self)
        let local = DiagnosticsActor(actorSystem: system)
        try system.receptionist.checkIn(local, with: DiagnosticsActor.key)
        logger.info("Node A listening", metadata: ["zmq.endpoint": "\(system.identity.endpoint)"])

        let peer = try await PeerLauncher.launch(["--name", "smoke-b", "--join", system.identity.endpoint, "--probe-calls", "\(calls)", "--log-level", global.logLevel])
        logger.info("Node B started as its own process", metadata: ["pid": "\(peer.process.pid)", "zmq.endpoint": "\(peer.endpoint)"])
        var failures: [String] = []
        do {
            try await exercise(system: system, peer: peer, logger: logger)
        } catch {
            failures.append("\(error)")
        }
        if let line = await peer.process.nextLine(timeout: .seconds(60)), line.contains("\"probe\"") {
            logger.info("Node B called node A", metadata: ["result": "\(line)"])
        } else {
            failures.append("node B did not report its calls to node A")
        }
        await peer.process.stop()
        await system.shutdown()
        withExtendedLifetime(local) {}
        if !failures.isEmpty {
            for failure in failures { logger.error("Smoke run failed", metadata: ["error": "\(failure)"]) }
            throw ExitCode.failure
        }
        logger.info("Smoke run passed")
    }

    private func exercise(system: ClusterSystem, peer: PeerLauncher.Launched, logger: Logger) async throws {
        var remote: DiagnosticsActor?
        for await listing in system.receptionist.listing(DiagnosticsActor.key) {
            remote = listing.first { $0.id.node.endpoint == peer.endpoint }
            if remote != nil { break }
        }
        guard let remote else { throw ValidationError("node B's diagnostics actor never appeared in the receptionist") }
        logger.info("Found node B's diagnostics actor through the receptionist", metadata: ["actor.id": "\(remote.id)"])

        var latencies: [Duration] = []
        latencies.reserveCapacity(calls)
        let clock = ContinuousClock()
        for sequence in 0 ..< calls {
            var request = Selfimprove_V1_EchoRequest()
            request.sequence = UInt64(sequence)
            request.payload = Data(repeating: UInt8(sequence & 0xFF), count: 64)
            let start = clock.now
            let reply = try await remote.echo(request)
            latencies.append(clock.now - start)
            guard reply.sequence == request.sequence, reply.payload == request.payload else {
                throw ValidationError("echo \(sequence) came back wrong")
            }
        }
        latencies.sort()
        logger.info("Node A called node B", metadata: [
            "calls": "\(calls)",
            "p50_us": "\(microseconds(latencies[latencies.count / 2]))",
            "p99_us": "\(microseconds(latencies[min(latencies.count - 1, latencies.count * 99 / 100)]))",
        ])

        do {
            var request = Selfimprove_V1_FailRequest()
            request.message = "deliberate failure"
            try await remote.fail(request)
            throw ValidationError("fail() returned normally")
        } catch let error as RemoteCallError {
            logger.info("Remote error carried back", metadata: ["error.type": "\(error.typeName)", "error.message": "\(error.message)"])
        }
        let status = try await remote.status()
        logger.info("Node B status", metadata: ["node": "\(status.nodeName)", "calls_served": "\(status.callsServed)", "rss_bytes": "\(status.residentBytes)"])
    }
}
