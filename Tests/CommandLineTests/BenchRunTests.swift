import Backends
import Foundation
import ProcessSupervision
import Testing

/// The benchmarks' method (repetitions, alternation, medians with their range, the evidence
/// kept), checked on runs too small to measure anything: the figures themselves belong to the
/// benchmarks, not to tests.
@Suite("Benchmark method", .serialized)
struct BenchRunTests {
    /// Runs `selfimprove bench ARGUMENTS --keep FOLDER --json` and returns its `bench.json`.
    private func bench(_ arguments: [String], keep folder: URL) async throws -> [String: Any] {
        let run = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["bench"] + arguments + ["--keep", folder.path, "--json"])
        let status = await run.waitForExit()
        #expect(status == 0, "bench \(arguments.first ?? "") failed: \(run.standardErrorTail.suffix(3000))")
        let data = try Data(contentsOf: folder.appendingPathComponent("bench.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A `{"median", "min", "max", "values"}` entry: `count` values, the median and range theirs.
    private func checkSpread(_ entry: Any?, count: Int, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let spread = try #require(entry as? [String: Any], "\(name) is not a spread", sourceLocation: sourceLocation)
        let values = try #require(spread["values"] as? [Double], "\(name) has no values", sourceLocation: sourceLocation)
        #expect(values.count == count, "\(name)", sourceLocation: sourceLocation)
        let sorted = values.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        #expect(abs((spread["median"] as? Double ?? .nan) - median) <= 0.001 * max(1, abs(median)), "\(name) median", sourceLocation: sourceLocation)
        #expect(spread["min"] as? Double == sorted.first, "\(name) min", sourceLocation: sourceLocation)
        #expect(spread["max"] as? Double == sorted.last, "\(name) max", sourceLocation: sourceLocation)
    }

    @Test(.timeLimit(.minutes(3)))
    func pipelineRepeatsAndKeepsEveryRunsManifest() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await bench(["pipeline", "--questions", "60", "--m", "4", "--samplers", "1", "--capacity", "2", "--reps", "2"], keep: folder)
        let environment = try #require(result["environment"] as? [String: Any])
        #expect(["debug", "release"].contains(environment["build"] as? String ?? ""))
        try checkSpread(result["paths_per_s"], count: 2, "paths_per_s")
        try checkSpread(result["coordinator_peak_rss_bytes"], count: 2, "coordinator_peak_rss_bytes")
        let runs = try #require(result["runs"] as? [[String: Any]])
        #expect(runs.map { $0["rep"] as? Int } == [1, 2])
        for run in runs {
            #expect(run["questions"] as? Int == 60)
            #expect(run["paths"] as? Int == 240)
            // Every figure can be checked against the run's own manifest.
            let evidence = try #require(run["evidence"] as? String)
            let manifestData = try Data(contentsOf: folder.appendingPathComponent(evidence).appendingPathComponent("out/manifest.json"))
            let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
            let timings = try #require(manifest["timings"] as? [String: Any])
            #expect(((timings["working_paths_per_s"] as? Double) ?? 0).rounded() == run["paths_per_s"] as? Double)
            // The run's phases add up: start-up, steady state and tail within the whole.
            let seconds = try #require(timings["seconds"] as? Double), startup = try #require(timings["startup_seconds"] as? Double)
            let steady = try #require(timings["steady_seconds"] as? Double), tail = try #require(timings["tail_seconds"] as? Double)
            #expect(steady > 0 && startup >= 0 && tail >= 0)
            #expect(abs(startup + steady + tail - seconds) < 0.01, "start-up \(startup) + steady \(steady) + tail \(tail) != \(seconds)")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func backendAlternatesTheSidesOnOneServerAndKeepsItsEvidence() async throws {
        try #require(FileManager.default.fileExists(atPath: PackagedModel.modelPath),
                     "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await bench(["backend", "--questions", "2", "--m", "2", "--slots", "2", "--capacity", "1", "--max-tokens", "24", "--reps", "2"],
                                     keep: folder)
        let runs = try #require(result["runs"] as? [[String: Any]])
        // Direct first in the first repetition, cluster first in the second.
        #expect(runs.map { "\($0["rep"] ?? "-") \($0["side"] ?? "-")" } == ["1 direct", "1 cluster", "2 cluster", "2 direct"])
        #expect(runs.map { $0["position"] as? Int } == [1, 2, 1, 2])
        var rates: [String: Double] = [:]
        for run in runs {
            let side = try #require(run["side"] as? String), rep = try #require(run["rep"] as? Int)
            #expect(run["paths"] as? Int == 4, "\(side) \(rep)")
            let tokens = try #require(run["tokens"] as? Int), steady = try #require(run["steady_seconds"] as? Double)
            let rate = try #require(run["tokens_per_s"] as? Double)
            #expect(tokens > 0 && steady > 0)
            #expect(abs(rate - Double(tokens) / steady) <= 0.05 + 0.01 * rate, "\(side) \(rep): \(rate) tokens/s from \(tokens) tokens in \(steady) s")
            #expect((run["wall_seconds"] as? Double ?? 0) >= steady)
            let cpu = try #require(run["cpu_seconds"] as? [String: Double])
            #expect((cpu["server"] ?? 0) > 0, "the server's CPU is attributed")
            rates["\(side) \(rep)"] = Double(tokens) / steady
            // The evidence: each direct request's timing, each cluster run's folder.
            let evidence = folder.appendingPathComponent(try #require(run["evidence"] as? String))
            if side == "direct" {
                let lines = try RunOutputChecks.lines(evidence)
                #expect(lines.count == 2)
                for line in lines {
                    #expect((line["sent_s"] as? Double ?? -1) <= (line["answered_s"] as? Double ?? -2))
                }
            } else {
                #expect(FileManager.default.fileExists(atPath: evidence.appendingPathComponent("out/manifest.json").path))
            }
        }
        try checkSpread(result["direct_tokens_per_s"], count: 2, "direct_tokens_per_s")
        try checkSpread(result["cluster_tokens_per_s"], count: 2, "cluster_tokens_per_s")
        try checkSpread(result["ratio"], count: 2, "ratio")
        // Each repetition's ratio is its own cluster side over its own direct side.
        let ratios = try #require((result["ratio"] as? [String: Any])?["values"] as? [Double])
        for (index, ratio) in ratios.enumerated() {
            let expected = try #require(rates["cluster \(index + 1)"]) / #require(rates["direct \(index + 1)"])
            #expect(abs(ratio - expected) < 0.01, "repetition \(index + 1): \(ratio) vs \(expected)")
        }
        let log = try String(contentsOf: folder.appendingPathComponent("llama-server.log"), encoding: .utf8)
        #expect(!log.isEmpty, "llama-server's log is kept")
    }
}
