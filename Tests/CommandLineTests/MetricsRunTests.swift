import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ProcessSupervision
import Testing

/// `monitor.metrics`: every node of a running cluster serves Prometheus metrics.
@Suite("Metrics runs", .serialized)
struct MetricsRunTests {
    /// Metrics each role must show (besides the actor system's, on every node).
    static let expected: [String: [String]] = [
        "coordinator": ["selfimprove_questions_read_total", "selfimprove_paths_received_total", "selfimprove_leases_granted_total",
                        "selfimprove_lease_duration_seconds_bucket", "selfimprove_verifier_call_duration_seconds_count",
                        "selfimprove_samplers_alive", "selfimprove_trainer_lag_records", "selfimprove_journal_bytes"],
        "sampler": ["selfimprove_backend_request_duration_seconds_count", "selfimprove_backend_errors_total", "selfimprove_sampler_paths_total"],
        "verifier": ["selfimprove_verifier_texts_total", "selfimprove_verifier_scoring_duration_seconds_count"],
        "trainer": ["selfimprove_trainer_records_total", "selfimprove_trainer_examples_total", "selfimprove_trainer_durable_sequence"],
    ]

    private func scrape(_ url: String) async throws -> String {
        let (body, response) = try await URLSession.shared.data(from: try #require(URL(string: url)))
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        return String(decoding: body, as: UTF8.self)
    }

    /// The value of the first series of `name` in `text`.
    private func value(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + "{") }.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    @Test(.timeLimit(.minutes(3)))
    func everyNodeServesItsMetricsWhileTheClusterRuns() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out")
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", RunTestSupport.repository.appendingPathComponent("cluster/synthetic.yaml").path, "--output", output.path,
            "--set", "dataset.limit=200", "--set", "monitor.metrics={host: 127.0.0.1, port: 0}",
            "--set", "samplers.0.backend.time_to_first_token=150ms", "--set", "samplers.0.capacity=2",
        ])
        let nodes = ["coordinator": "coordinator", "sampler-1": "sampler", "sampler-2": "sampler", "verifier-1": "verifier", "trainer": "trainer"]
        var texts: [String: String] = [:]
        do {
            let logs = output.appendingPathComponent("logs")
            try await RunOutputChecks.waitUntil("every node wrote its metrics URL", seconds: 30) {
                nodes.keys.allSatisfy { FileManager.default.fileExists(atPath: logs.appendingPathComponent("\($0).metrics-url").path) }
            }
            func url(_ node: String) throws -> String {
                try String(contentsOf: logs.appendingPathComponent("\(node).metrics-url"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            // Scrape once every node has worked: the coordinator stored a record (its metrics
            // catch up every 100 ms), each sampler answered a request, the trainer stored.
            for _ in 0 ..< 100 {
                for node in nodes.keys { texts[node] = try await scrape(try url(node)) }
                if (value("selfimprove_questions_stored_total", in: texts["coordinator"]!) ?? 0) > 0,
                   (value("selfimprove_trainer_records_total", in: texts["trainer"]!) ?? 0) > 0,
                   ["sampler-1", "sampler-2"].allSatisfy({ (value("selfimprove_backend_request_duration_seconds_count", in: texts[$0]!) ?? 0) > 0 }) {
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        } catch {
            await launch.stop()
            throw error
        }
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")

        let ids = try RunOutputChecks.datasetIDs(RunTestSupport.repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl"), limit: 200)
        for (node, role) in nodes {
            let text = try #require(texts[node])
            let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
            #expect(!samples.isEmpty)
            for line in text.split(separator: "\n") {
                #expect(Self.isValidLine(String(line)), "\(node): \(line)")
            }
            for sample in samples {
                #expect(sample.hasPrefix("selfimprove_"), "\(node): \(sample)")
                #expect(sample.contains("role=\"\(role)\"") && sample.contains("node=\"\(node)\""), "\(node): \(sample)")
                #expect(!ids.contains { sample.contains("\"\($0)\"") }, "a question id in a label: \(sample)")
            }
            for name in Self.expected[role, default: []] + ["selfimprove_actor_calls_served_total", "selfimprove_actor_envelopes_received_total"] {
                #expect(samples.contains { $0.hasPrefix(name + "{") }, "\(node) lacks \(name)")
            }
            #expect(text.contains("# HELP "), "help lines")
        }
        #expect((value("selfimprove_paths_received_total", in: texts["coordinator"]!) ?? 0) > 0)
        #expect((value("selfimprove_samplers_alive", in: texts["coordinator"]!) ?? 0) == 2)
        #expect((value("selfimprove_backend_request_duration_seconds_count", in: texts["sampler-1"]!) ?? 0) > 0)
        #expect(texts["sampler-1"]!.contains(#"model_version="synthetic-v1""#))
    }

    /// The text exposition format's line grammar.
    static func isValidLine(_ line: String) -> Bool {
        if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { return true }
        let pattern = #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?([0-9.eE+-]+|NaN|\+Inf|-Inf)$"#
        return line.range(of: pattern, options: .regularExpression) != nil
    }
}
