import CommandLineSupport
import SwiftProtobuf
import ProcessSupervision
import Wire
import ActorCluster
import ArgumentParser
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// `selfimprove bench actors`: remote actor calls against raw ZeroMQ round trips between two
/// processes, for each payload size.
struct BenchActors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actors",
        abstract: "Measure remote actor calls against raw ZeroMQ DEALER/ROUTER round trips.",
        discussion: """
        Starts a peer process hosting a diagnostics actor and one serving a bare ZeroMQ echo.
        For each payload size: p50/p99 latency of sequential round trips, and throughput with
        --in-flight calls outstanding. Also reports peak and end resident memory of every process.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Comma-separated payload sizes in bytes.")
    var payloads = "64,4096"

    @Option(help: "Sequential round trips for the latency figures.")
    var latencyCalls = 5000

    @Option(help: "Calls for the throughput figure (use 1000000 to check memory stays flat).")
    var throughputCalls = 200_000

    @Option(help: "Calls kept in flight during the throughput phase.")
    var inFlight = 256

    @Option(help: "Repetitions of every measurement (figures are the median and range over them).")
    var reps = 3

    @Option(help: "Write the result with every repetition's figures to bench.json in this folder.")
    var keep: String?

    func validate() throws {
        guard !payloadSizes.isEmpty, payloadSizes.allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--payloads must be a comma-separated list of sizes, e.g. 64,4096")
        }
        guard reps >= 1 else { throw ValidationError("--reps must be at least 1") }
        guard latencyCalls >= 100 else { throw ValidationError("--latency-calls must be at least 100") }
        guard throughputCalls >= inFlight, inFlight >= 1 else { throw ValidationError("--throughput-calls must be at least --in-flight (>= 1)") }
    }

    var payloadSizes: [Int] { payloads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() async throws {
        var logger = global.makeLogger()
        BenchEnvironment.warnIfDebug(logger)
        if json { logger.logLevel = .warning }
        let actorPeer = try await PeerLauncher.launch(["--name", "bench-peer", "--log-level", "warning"])
        let zmqPeer = try await PeerLauncher.launch(["--raw-echo", "--log-level", "warning"])
        var configuration = ClusterSystemConfiguration()
        configuration.nodeName = "bench"
        let system = try await ClusterSystem.start(configuration: configuration, logger: logger)
        try await system.register(DiagnosticsActor.self)
        defer { withExtendedLifetime(system) {} }

        let remote: DiagnosticsActor
        do {
            try await system.join(actorPeer.endpoint)
            var found: DiagnosticsActor?
            for await listing in system.receptionist.listing(DiagnosticsActor.key) {
                found = listing.first { $0.id.node.endpoint == actorPeer.endpoint }
                if found != nil { break }
            }
            guard let found else { throw ValidationError("peer's diagnostics actor not listed") }
            remote = found
        }

        var runs: [[String: Any]] = []
        var memory: [String: Any] = [:]
        for rep in 1 ... reps {
            for (index, size) in payloadSizes.enumerated() {
                var request = Selfimprove_V1_EchoRequest()
                request.payload = Data(repeating: 0xA5, count: size)
                let encoded: [UInt8] = try request.serializedBytes()

                // Latency: actor calls and raw round trips in alternating chunks, so that both see
                // the same machine (on a shared VM conditions drift over seconds).
                for _ in 0 ..< 200 { _ = try await remote.echo(request) }
                var actorSamples: [Duration] = [], rawSamples: [Duration] = []
                let chunk = max(50, latencyCalls / 10)
                while actorSamples.count < latencyCalls {
                    actorSamples += try await actorLatencySamples(remote, request: request, count: chunk)
                    rawSamples += try await rawLatencySamples(endpoint: zmqPeer.endpoint, frame: encoded, count: chunk)
                }
                let latency = percentiles(actorSamples)
                let rawLatency = percentiles(rawSamples)
                if rep == 1, index == 0 {
                    memory["bench_rss_before_throughput_bytes"] = ProcessMemory.residentBytes() ?? 0
                    memory["actor_peer_rss_before_throughput_bytes"] = residentBytes(pid: actorPeer.process.pid)
                }
                // Throughput: one side after the other, the order alternating between repetitions.
                var rawThroughput = 0
                if rep % 2 == 0 { rawThroughput = try await self.rawThroughput(endpoint: zmqPeer.endpoint, frame: encoded) }
                let throughput = try await actorThroughput(remote, request: request)
                if rep == 1, index == 0 {
                    memory["bench_rss_after_first_size_bytes"] = ProcessMemory.residentBytes() ?? 0
                    memory["actor_peer_rss_after_first_size_bytes"] = residentBytes(pid: actorPeer.process.pid)
                }
                if rep % 2 == 1 { rawThroughput = try await self.rawThroughput(endpoint: zmqPeer.endpoint, frame: encoded) }
                let entry: [String: Any] = [
                    "rep": rep,
                    "payload_bytes": size,
                    "actor_p50_us": latency.0,
                    "actor_p99_us": latency.1,
                    "actor_calls_per_s": throughput,
                    "zmq_p50_us": rawLatency.0,
                    "zmq_p99_us": rawLatency.1,
                    "zmq_msgs_per_s": rawThroughput,
                    "actor_p50_vs_zmq": rawLatency.0 > 0 ? Double(latency.0) / Double(rawLatency.0) : 0,
                    "peak_rss_bytes": [
                        "bench": ProcessMemory.peakResidentBytes() ?? 0,
                        "actor_peer": ProcessMemory.peakResidentBytes(pid: actorPeer.process.pid) ?? 0,
                        "zmq_peer": ProcessMemory.peakResidentBytes(pid: zmqPeer.process.pid) ?? 0,
                    ],
                ]
                runs.append(entry)
                if !json {
                    logger.info("Measured", metadata: entry.mapValues { "\($0)" })
                }
            }
        }
        // Per payload size: the median and range of every figure over the repetitions.
        let figures = ["actor_p50_us", "actor_p99_us", "actor_calls_per_s", "zmq_p50_us", "zmq_p99_us", "zmq_msgs_per_s", "actor_p50_vs_zmq"]
        let results: [[String: Any]] = payloadSizes.map { size in
            let mine = runs.filter { $0["payload_bytes"] as? Int == size }
            var summary: [String: Any] = ["payload_bytes": size]
            for figure in figures {
                summary[figure] = Spread(mine.map { ($0[figure] as? Double) ?? Double($0[figure] as? Int ?? 0) })
                    .json(digits: figure == "actor_p50_vs_zmq" ? 3 : 0)
            }
            return summary
        }
        memory["bench_rss_end_bytes"] = ProcessMemory.residentBytes() ?? 0
        memory["actor_peer_rss_end_bytes"] = residentBytes(pid: actorPeer.process.pid)
        memory["throughput_calls_per_size"] = throughputCalls

        await system.shutdown()
        await actorPeer.process.stop()
        await zmqPeer.process.stop()

        let output: [String: Any] = [
            "benchmark": "actors",
            "environment": BenchEnvironment.description,
            "settings": ["latency_calls": latencyCalls, "throughput_calls": throughputCalls, "in_flight": inFlight, "reps": reps,
                         "order": "latency: actor and raw chunks interleaved; throughput: actor first in odd repetitions, raw first in even ones"] as [String: Any],
            "results": results,
            "runs": runs,
            "memory": memory,
        ]
        if let keep {
            try BenchEnvironment.record(output, in: try BenchEnvironment.folder(keep: keep))
        }
        let data = try JSONSerialization.data(withJSONObject: output, options: json ? [.sortedKeys] : [.sortedKeys, .prettyPrinted])
        SafeFileWriter.standardOutput.write(data)
        SafeFileWriter.standardOutput.write(Data("\n".utf8))
    }

    private func residentBytes(pid: Int32) -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { UInt64($0) } ?? 0) * 1024
        }
        return 0
    }

    private func actorLatencySamples(_ remote: DiagnosticsActor, request: Selfimprove_V1_EchoRequest, count: Int) async throws -> [Duration] {
        let clock = ContinuousClock()
        var samples: [Duration] = []
        samples.reserveCapacity(count)
        for _ in 0 ..< count {
            let start = clock.now
            _ = try await remote.echo(request)
            samples.append(clock.now - start)
        }
        return samples
    }

    private func actorThroughput(_ remote: DiagnosticsActor, request: Selfimprove_V1_EchoRequest) async throws -> Int {
        let remaining = CallBudget(throughputCalls)
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0 ..< inFlight {
                group.addTask {
                    while remaining.take() {
                        _ = try await remote.echo(request)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        return Int(Double(throughputCalls) / seconds(elapsed))
    }

    /// Sequential round trips over a bare DEALER, on a thread of its own (after a short warm-up).
    private func rawLatencySamples(endpoint: String, frame: [UInt8], count: Int) async throws -> [Duration] {
        try await onRawDealer(endpoint: endpoint) { socket in
            let clock = ContinuousClock()
            func roundTrip() throws {
                try socket.send([frame])
                while true {
                    if try socket.receive() != nil { return }
                    _ = socket.waitReadable(timeoutMs: 1000)
                }
            }
            for _ in 0 ..< 20 { try roundTrip() }
            var samples: [Duration] = []
            samples.reserveCapacity(count)
            for _ in 0 ..< count {
                let start = clock.now
                try roundTrip()
                samples.append(clock.now - start)
            }
            return samples
        }
    }

    /// Messages per second over a bare DEALER with --in-flight messages outstanding.
    private func rawThroughput(endpoint: String, frame: [UInt8]) async throws -> Int {
        let total = throughputCalls, window = inFlight
        return try await onRawDealer(endpoint: endpoint) { socket in
            let clock = ContinuousClock()
            let start = clock.now
            var sent = 0, received = 0
            while sent < min(window, total) {
                try socket.send([frame])
                sent += 1
            }
            while received < total {
                if try socket.receive() != nil {
                    received += 1
                    if sent < total {
                        try socket.send([frame])
                        sent += 1
                    }
                } else {
                    _ = socket.waitReadable(timeoutMs: 1000)
                }
            }
            return Int(Double(total) / seconds(clock.now - start))
        }
    }

    /// Runs `body` with a DEALER connected to `endpoint`, on a new thread (blocking polls stay
    /// off the Swift pool).
    private func onRawDealer<Result: Sendable>(
        endpoint: String, _ body: @escaping @Sendable (ZMQSocket) throws -> Result
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do {
                    let context = try ZMQContext()
                    var options = ZMQSocketOptions()
                    options.sendHighWaterMark = 100_000
                    options.receiveHighWaterMark = 100_000
                    let socket = try ZMQSocket(context: context, type: .dealer, options: options)
                    try socket.connect(endpoint)
                    continuation.resume(returning: try body(socket))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }
}

private func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}

/// p50 and p99 in whole microseconds.
private func percentiles(_ samples: [Duration]) -> (Int, Int) {
    let sorted = samples.sorted()
    guard !sorted.isEmpty else { return (0, 0) }
    let p50 = sorted[sorted.count / 2]
    let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
    return (microseconds(p50), microseconds(p99))
}

/// Calls left to make, shared by the throughput workers.
private final class CallBudget: Sendable {
    private let remaining: Atomic<Int>
    init(_ count: Int) { remaining = Atomic(count) }
    /// Takes one call from the budget; false once it is spent.
    func take() -> Bool { remaining.subtract(1, ordering: .relaxed).newValue >= 0 }
}
