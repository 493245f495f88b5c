@testable import ClusterNodes
import Foundation
import Testing
import TestFiles

/// The run's output files as their readers (the rounds driver, the report, the benchmarks,
/// scripts) see them: the keys of `manifest.json`, `progress.json` and `progress.jsonl`, and
/// each read back through its type.
@Suite("Run output files")
struct RunOutputFilesTests {
    private func config(_ overrides: [String] = []) throws -> ClusterConfig {
        try ClusterConfig.load(file: TestFiles.cluster.appendingPathComponent("synthetic.yaml").path, overrides: overrides)
    }

    private func object(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    @Test func theManifestKeepsItsKeysAndReadsBack() throws {
        let folder = try TestFiles.temporaryFolder("manifest")
        defer { try? FileManager.default.removeItem(at: folder) }
        var progress = RunProgress(total: 40)
        progress.pathsReceived = 320
        progress.leasesGranted = 40
        let files = RunOutputFiles(folder: folder)
        try files.writeManifest(config: try config(), progress: progress, outcome: .failed("no progress for 5m"), durableSequence: 7)
        let url = folder.appendingPathComponent("manifest.json")
        let json = try object(url)
        #expect(json["status"] as? String == "failed" && json["reason"] as? String == "no progress for 5m")
        for key in ["run", "config_hash", "config_hash_algorithm", "config", "dataset", "method", "counts", "mean_confidence", "timings",
                    "resumptions", "coordinator_peak_rss_bytes", "nodes"] {
            #expect(json[key] != nil, "manifest.json lacks \(key)")
        }
        // Unset figures are null, not absent: readers find the key.
        let method = try #require(json["method"] as? [String: Any])
        #expect(method["min_confidence"] is NSNull)
        #expect(method["name"] as? String == "lmsi" && method["paths_per_request"] as? Int == 8)
        let counts = try #require(json["counts"] as? [String: Any])
        #expect(counts["paths_received"] as? Int == 320 && counts["durable_sequence"] as? Int == 7 && counts["leases_granted"] as? Int == 40)
        #expect((json["timings"] as? [String: Any])?["steady_paths_per_s"] is Double)
        #expect(json["refine"] == nil && json["search"] == nil && json["verify_refine"] == nil && json["accuracy"] == nil)
        let manifest = try RunManifest.read(url)
        #expect(manifest.status == .failed && manifest.counts.pathsReceived == 320 && manifest.counts.byName["leases_granted"] == 40)
        #expect(manifest.nodes.map(\.name).contains("verifier-1"))
    }

    @Test func aSearchRunsManifestSaysWhatItsTreesDid() throws {
        let folder = try TestFiles.temporaryFolder("manifest")
        defer { try? FileManager.default.removeItem(at: folder) }
        let files = RunOutputFiles(folder: folder)
        try files.writeManifest(config: try config(["method.name=search", "method.m=16"]), progress: RunProgress(total: 3), outcome: .finished,
                                durableSequence: 0)
        let json = try object(folder.appendingPathComponent("manifest.json"))
        let search = try #require(json["search"] as? [String: Any])
        #expect((search["budget"] as? [String: Any])?["tokens"] is NSNull)
        #expect(search["steps_drawn"] as? Int == 0 && search["critic_calls"] as? Int == 0)
        #expect(try RunManifest.read(folder.appendingPathComponent("manifest.json")).search?.budget.tokens == nil)
    }

    @Test func progressFilesReadBackAndATornLineIsSkipped() throws {
        let folder = try TestFiles.temporaryFolder("progress")
        defer { try? FileManager.default.removeItem(at: folder) }
        var files = RunOutputFiles(folder: folder)
        var progress = RunProgress(total: 10)
        progress.startedAt = Date(timeIntervalSince1970: 1000)
        files.writeProgress(progress, finished: false, now: Date(timeIntervalSince1970: 1001))
        progress.pathsReceived = 80
        progress.completionTokens = 4000
        files.writeProgress(progress, finished: true, now: Date(timeIntervalSince1970: 1003))
        let snapshot = try #require(ProgressSnapshot.read(folder.appendingPathComponent("progress.json")))
        #expect(snapshot.paths == 80 && snapshot.total == 10 && snapshot.finished)
        let keys = Set(try object(folder.appendingPathComponent("progress.json")).keys)
        #expect(keys == ["done", "total", "paths", "paths_stored", "accepted", "voted", "elapsed_s", "finished"])
        let lines = folder.appendingPathComponent("progress.jsonl")
        let handle = try FileHandle(forWritingTo: lines)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"t_s\": 4, \"do".utf8))
        try handle.close()
        let samples = ProgressSample.readAll(lines)
        #expect(samples.map(\.tS) == [1, 3])
        #expect(samples[0].pathsPerS == nil)
        #expect(samples[1].pathsPerS == 40 && samples[1].tokensPerS == 2000)
    }
}
