import Foundation
import ProcessSupervision
import Testing

/// A cluster across hosts: five network namespaces on this machine (`ip netns`), each node on
/// its own address, linked to the coordinator's host by its own veth pair. The nodes run with
/// `selfimprove node`, as on separate machines. A second sampler joins mid-run and takes work
/// at once; then the first sampler's host is cut off, and the run completes with nothing lost. Needs root (CAP_NET_ADMIN) and iproute2; skipped without.
@Suite("Multi-host cluster", .serialized)
struct MultiHostTests {
    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Whether namespaces can be made here (a probe namespace is created and deleted).
    static let available: Bool = {
        guard geteuid() == 0, let ip else { return false }
        let name = "siprobe\(getpid() % 100_000)"
        return run(ip, ["netns", "add", name]) == 0 && run(ip, ["netns", "del", name]) == 0
    }()

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The namespaces and links of one test, removed by ``tearDown()``.
    struct Network {
        let tag = "si\(getpid() % 10000)"
        var coordinatorHost: String { "\(tag)c" }
        func host(_ index: Int) -> String { "\(tag)h\(index)" }
        func coordinatorLink(_ index: Int) -> String { "\(tag)c\(index)" }

        func ip(_ arguments: String...) throws {
            let status = MultiHostTests.run(MultiHostTests.ip!, arguments)
            guard status == 0 else { throw ChaosFailure("ip \(arguments.joined(separator: " ")) failed (\(status))") }
        }

        /// The coordinator's host has 10.231.0.1 on its loopback (the address it advertises)
        /// and 10.231.N.1 on the link to host N, which has 10.231.N.2 and a route to 10.231.0.1.
        func build(hosts: Int) throws {
            tearDown()
            try ip("netns", "add", coordinatorHost)
            try ip("-n", coordinatorHost, "link", "set", "lo", "up")
            try ip("-n", coordinatorHost, "addr", "add", "10.231.0.1/32", "dev", "lo")
            for index in 1 ... hosts {
                try ip("netns", "add", host(index))
                try ip("-n", host(index), "link", "set", "lo", "up")
                try ip("link", "add", coordinatorLink(index), "netns", coordinatorHost, "type", "veth", "peer", "name", "\(tag)h\(index)", "netns", host(index))
                try ip("-n", coordinatorHost, "addr", "add", "10.231.\(index).1/24", "dev", coordinatorLink(index))
                try ip("-n", coordinatorHost, "link", "set", coordinatorLink(index), "up")
                try ip("-n", host(index), "addr", "add", "10.231.\(index).2/24", "dev", "\(tag)h\(index)")
                try ip("-n", host(index), "link", "set", "\(tag)h\(index)", "up")
                try ip("-n", host(index), "route", "add", "10.231.0.1/32", "via", "10.231.\(index).1")
            }
        }

        /// Deletes the namespaces (their veth pairs go with them).
        func tearDown() {
            for name in [coordinatorHost] + (1 ... 4).map(host) {
                MultiHostTests.run(MultiHostTests.ip!, ["netns", "del", name])
            }
        }
    }

    @Test(.timeLimit(.minutes(3)), .enabled(if: MultiHostTests.available, "needs root and iproute2 for ip netns"))
    func aClusterAcrossHostsSurvivesACutLink() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let network = Network()
        try network.build(hosts: 4)
        defer { network.tearDown() }
        let repository = RunTestSupport.repository.path
        let backend = "{kind: synthetic, time_to_first_token: 20ms, tokens_per_second: 100, concurrency: 4}"
        let config = """
        name: multihost
        output: \(folder.path)/out
        dataset: {path: \(repository)/cluster/data/arithmetic-200.jsonl, format: gsm8k, limit: 100}
        prompt: {exemplars: \(repository)/cluster/exemplars/arithmetic.jsonl}
        method: {name: lmsi, m: 4, paths_per_request: 4}
        coordinator: {name: coordinator, host: 0.0.0.0, port: 7400, advertise: "tcp://10.231.0.1:7400", lease_timeout: 3s}
        trainer: {name: trainer, host: 10.231.1.2, port: 7401}
        verifiers:
          - {name: verifier-1, host: 10.231.2.2, port: 7402, chain: [answer_format, arithmetic_steps]}
        samplers:
          - {name: sampler-1, host: 10.231.3.2, port: 7403, capacity: 4, backend: \(backend)}
          - {name: sampler-2, host: 10.231.4.2, port: 7404, capacity: 4, backend: \(backend)}
        monitor: {interval: 500ms, format: text}

        """
        let configURL = folder.appendingPathComponent("multihost.yaml")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        let executable = try RunTestSupport.executable()
        func node(_ role: String, _ name: String, on host: String) throws -> ChildProcess {
            try ChildProcess(executable: MultiHostTests.ip!, arguments: [
                "netns", "exec", host, executable, "node", "--config", configURL.path, "--role", role, "--name", name, "--stop-on-stdin-eof",
            ])
        }
        let coordinator = try node("coordinator", "coordinator", on: network.coordinatorHost)
        var others = try [
            node("trainer", "trainer", on: network.host(1)), node("verifier", "verifier-1", on: network.host(2)),
            node("sampler", "sampler-1", on: network.host(3)),
        ]
        let output = folder.appendingPathComponent("out")
        // sampler-2 joins once a tenth of the questions are stored...
        try await RunOutputChecks.waitForRecords(in: output, atLeast: 10)
        others.append(try node("sampler", "sampler-2", on: network.host(4)))
        // ...and sampler-1's host is cut off once sampler-2's paths are stored.
        try await RunOutputChecks.waitUntil("paths of sampler-2 are stored", seconds: 30) {
            (try? String(contentsOf: output.appendingPathComponent("records.jsonl"), encoding: .utf8))?.contains("\"sampler-2\"") == true
        }
        try network.ip("-n", network.coordinatorHost, "link", "set", network.coordinatorLink(3), "down")
        let storedBeforeCut = (try? String(contentsOf: output.appendingPathComponent("records.jsonl"), encoding: .utf8))?.split(separator: "\n").count ?? 0
        #expect(storedBeforeCut < 100, "the run was over before the link was cut")
        let status = await coordinator.waitForExit()
        for child in others { await child.stop(grace: .seconds(5)) }
        let log = coordinator.standardErrorTail
        #expect(status == 0, "coordinator failed: \(log.suffix(2000))")
        let ids = try RunOutputChecks.datasetIDs(RunTestSupport.repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl"), limit: 100)
        let manifest = try RunOutputChecks.verifyOutput(folder.appendingPathComponent("out"), m: 4, questions: ids)
        let counts = try #require(manifest["counts"] as? [String: Any])
        #expect((counts["samplers_lost"] as? Int ?? 0) >= 1)
        #expect(log.contains("node lost"))
        // Every node spoke from its own address.
        #expect(log.contains("tcp://10.231.3.2:7403"))
        #expect(log.contains("tcp://10.231.4.2:7404"))
    }
}
