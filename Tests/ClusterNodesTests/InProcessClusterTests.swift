import ActorCluster
import ClusterNodes
import Foundation
import Logging
import TestFiles
import Testing
import TestLogs

/// A node run by ``NodeRunner`` in this test process, as `selfimprove node` runs it, until it
/// ends or is asked to stop.
private struct InProcessNode {
    let name: String
    let task: Task<Int32, any Error>
    private let stopper: AsyncStream<Void>.Continuation

    /// Starts the node and returns once it listens.
    static func start(_ role: ClusterConfig.Role, _ name: String, config: ClusterConfig, coordinator: String?,
                      logs: CapturedLogs) async throws -> (node: InProcessNode, endpoint: String) {
        let (stopRequests, stopper) = AsyncStream<Void>.makeStream()
        let (ready, readyContinuation) = AsyncStream<String>.makeStream()
        var logger = logs.logger(level: .info)
        logger[metadataKey: "node"] = "\(name)"
        let task = Task {
            defer { readyContinuation.finish() }
            return try await NodeRunner.run(config: config, role: role, name: name, coordinatorEndpoint: coordinator, logger: logger,
                                            onReady: { readyContinuation.yield($0) }, stopRequested: { for await _ in stopRequests {} })
        }
        var endpoints = ready.makeAsyncIterator()
        guard let endpoint = await endpoints.next() else {
            throw ClusterError(.actorNotFound, "\(name) ended before it listened: \(try await task.value)")
        }
        return (InProcessNode(name: name, task: task, stopper: stopper), endpoint)
    }

    /// Asks the node to stop; its exit status.
    func stop() async throws -> Int32 {
        stopper.finish()
        return try await task.value
    }
}

/// A whole cluster (coordinator, samplers, a verifier, a trainer) in one test process over the
/// actor system and loopback, with the synthetic backend: the delivery rules checked without
/// spawning the binary, so a failure is debugged in one process.
@Suite("A cluster in one process", .serialized)
struct InProcessClusterTests {
    static let synthetic = TestFiles.cluster.appendingPathComponent("synthetic.yaml").path
    static let dataset = TestFiles.cluster.appendingPathComponent("data/arithmetic-200.jsonl")

    private func config(_ output: URL, _ overrides: [String]) throws -> ClusterConfig {
        try ClusterConfig.load(file: Self.synthetic, overrides: ["monitor.interval=200ms"] + overrides, output: output.path)
    }

    private func temporaryFolder() throws -> URL { try TestFiles.temporaryFolder("selfimprove-in-process") }

    private func datasetIDs(limit: Int) throws -> [String] {
        try String(contentsOf: Self.dataset, encoding: .utf8).split(separator: "\n").prefix(limit).map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try #require(object["id"] as? String)
        }
    }

    /// The question ids of `records.jsonl`, in file order (a sequence that does not rise fails).
    private func storedIDs(_ folder: URL) throws -> [String] {
        let text = (try? String(contentsOf: folder.appendingPathComponent("records.jsonl"), encoding: .utf8)) ?? ""
        var last = 0
        return try text.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let sequence = try #require(object["sequence"] as? Int)
            #expect(sequence > last, "sequence \(sequence) after \(last)")
            last = sequence
            return try #require((object["record"] as? [String: Any])?["id"] as? String)
        }
    }

    /// Every question of the data set stored exactly once, and a manifest that says so.
    private func expectEveryQuestionOnce(_ folder: URL, limit: Int) throws {
        let ids = try storedIDs(folder)
        #expect(ids.count == Set(ids).count, "a question is stored twice")
        #expect(Set(ids) == Set(try datasetIDs(limit: limit)))
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("manifest.json"))) as? [String: Any])
        #expect(manifest["status"] as? String == "finished")
        #expect((manifest["counts"] as? [String: Any])?["records"] as? Int == limit)
    }

    /// How many messages start with `event` (the text log puts the metadata after it).
    private func logged(_ event: String, in logs: CapturedLogs) -> Int {
        logs.all.count { $0.message == event || $0.message.hasPrefix(event + " ") }
    }

    /// Waits (bounded: 60 s) until `records.jsonl` holds `count` records.
    private func waitForRecords(_ folder: URL, atLeast count: Int) async throws {
        for _ in 0 ..< 600 {
            if (try? storedIDs(folder).count) ?? 0 >= count { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("fewer than \(count) records after 60 s")
    }

    @Test(.timeLimit(.minutes(2)))
    func everyRoleInOneProcessStoresEveryQuestionOnce() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try config(folder, ["dataset.limit=40"])
        let logs = CapturedLogs()
        let (coordinator, endpoint) = try await InProcessNode.start(.coordinator, "coordinator", config: config, coordinator: nil, logs: logs)
        var others: [InProcessNode] = []
        for (role, name) in [(ClusterConfig.Role.trainer, "trainer"), (.verifier, "verifier-1"), (.sampler, "sampler-1"), (.sampler, "sampler-2")] {
            others.append(try await InProcessNode.start(role, name, config: config, coordinator: endpoint, logs: logs).node)
        }
        let status = try await coordinator.task.value
        // The coordinator releases the others at the end of a finished run: each ends by itself.
        for node in others {
            #expect(try await node.task.value == NodeRunner.ExitStatus.success, "\(node.name) did not end cleanly")
        }
        #expect(status == NodeRunner.ExitStatus.success, "\(logs.all.filter { $0.level >= .warning }.map(\.message).suffix(10))")
        try expectEveryQuestionOnce(folder, limit: 40)
        #expect(logged("run finished", in: logs) == 1)
    }

    /// A sampler stopped and the trainer replaced while records flow: the stopped sampler's
    /// leases go to the other, the new trainer says what it holds, and the stream resumes after
    /// it, so no question is lost or stored twice.
    @Test(.timeLimit(.minutes(3)))
    func aSamplerStoppedAndTheTrainerReplacedMidRunLoseNothing() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try config(folder, ["dataset.limit=100", "samplers.0.backend.tokens_per_second=300", "coordinator.lease_timeout=3s"])
        let logs = CapturedLogs()
        let (coordinator, endpoint) = try await InProcessNode.start(.coordinator, "coordinator", config: config, coordinator: nil, logs: logs)
        var nodes: [String: InProcessNode] = [:]
        for (role, name) in [(ClusterConfig.Role.trainer, "trainer"), (.verifier, "verifier-1"), (.sampler, "sampler-1"), (.sampler, "sampler-2")] {
            nodes[name] = try await InProcessNode.start(role, name, config: config, coordinator: endpoint, logs: logs).node
        }
        try await waitForRecords(folder, atLeast: 20)
        _ = try await nodes["sampler-1"]?.stop()
        nodes["sampler-1"] = nil
        try await waitForRecords(folder, atLeast: 40)
        _ = try await nodes["trainer"]?.stop()
        nodes["trainer"] = try await InProcessNode.start(.trainer, "trainer", config: config, coordinator: endpoint, logs: logs).node
        let status = try await coordinator.task.value
        for (_, node) in nodes { _ = try await node.stop() }
        #expect(status == NodeRunner.ExitStatus.success, "\(logs.all.filter { $0.level >= .warning }.map(\.message).suffix(10))")
        try expectEveryQuestionOnce(folder, limit: 100)
        #expect(logged("trainer in sync", in: logs) >= 2, "the replacement trainer was not asked what it holds")
        #expect(logged("run finished", in: logs) == 1)
    }
}
