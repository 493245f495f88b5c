import Foundation
import ProcessSupervision
import SelfImproveCore
import Testing

/// Rounds that keep improving, as users run them, on the simulator (which writes questions
/// when asked to, deterministically): the imagination phase writes, deduplicates and keeps
/// questions and resumes after kill -9 without duplicates; the band, accumulation and
/// `train_from` pick the right data and the right starting model; large-k pass@k, flips,
/// calibration and extra sets reach `rounds.json`.
@Suite("Rounds that keep improving, run", .serialized)
struct IterationRunTests {
    static let config = RunTestSupport.repository.appendingPathComponent("cluster/rounds-synthetic.yaml").path
    static let small = ["--set", "dataset.limit=60", "--set", "rounds.evaluation.dataset.limit=60", "--set", "monitor.interval=500ms"]

    private func launch(_ folder: URL, _ extra: [String]) throws -> ChildProcess {
        try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", Self.config, "--output", folder.path] + Self.small + extra)
    }

    private func rounds(_ folder: URL) throws -> [[String: Any]] {
        let data = try Data(contentsOf: folder.appendingPathComponent("rounds.json"))
        let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(summary["rounds"] as? [[String: Any]])
    }

    private func questions(_ file: URL) throws -> [(id: String, question: String)] {
        try RunOutputChecks.lines(file).map { (try #require($0["id"] as? String), try #require($0["question"] as? String)) }
    }

    private func examples(_ file: URL) throws -> [[String: Any]] {
        try RunOutputChecks.lines(file)
    }

    /// The simulator copies a prompt's question verbatim 15% of the time; with the pool as the
    /// held-out set too, those copies are held-out duplicates.
    static let imagination = ["--set", "rounds.max=1", "--set", "rounds.imagination={prompts: 30, paths: 2}",
                              "--set", "rounds.evaluation.dataset.path=data/arithmetic-200.jsonl"]

    @Test(.timeLimit(.minutes(5)))
    func imaginationWritesDeduplicatesAndKeepsQuestions() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, Self.imagination)
        #expect(await run.waitForExit() == 0, "\(run.standardErrorTail.suffix(3000))")
        #expect(run.standardErrorTail.contains("phase: round 1 imagination"))
        let round = try #require(try rounds(folder).first)
        let report = try #require(round["imagination"] as? [String: Int])
        #expect(report["prompts"] == 30)
        #expect(report["written"] == 60)
        let parsed = try #require(report["parsed"]), added = try #require(report["added"])
        let heldOut = try #require(report["held_out_duplicates"]), duplicates = try #require(report["duplicates"])
        #expect(parsed <= 60 && parsed > 40, "\(report)")   // 5% of continuations hold no question
        #expect(parsed == added + duplicates + heldOut)
        #expect(heldOut > 0, "no copy of a held-out question was caught: \(report)")
        #expect(report["answered"] == added)
        #expect((report["accepted"] ?? 0) <= added && (report["kept"] ?? 0) <= (report["accepted"] ?? 0) && (report["kept"] ?? 0) > 0)

        // The imagine phase's own run: one record per prompt, each with its two continuations.
        let imagineRecords = try RunOutputChecks.lines(folder.appendingPathComponent("round-1/imagine/records.jsonl"))
        #expect(imagineRecords.count == 30)
        #expect(imagineRecords.allSatisfy { (($0["record"] as? [String: Any])?["paths"] as? [Any])?.count == 2 })

        // No added question is an exact or near duplicate of a held-out one or of another.
        let imagined = try questions(folder.appendingPathComponent("round-1/imagined.jsonl"))
        #expect(imagined.count == added)
        var index = QuestionIndex(threshold: 0.7)
        for line in try RunOutputChecks.lines(RunTestSupport.repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl")) {
            index.insert(try #require(line["question"] as? String), group: "held_out")
        }
        for (_, question) in imagined {
            #expect(index.match(question) == nil, "'\(question)' duplicates '\(index.match(question)?.question ?? "")'")
            index.insert(question, group: "imagined")
        }
        // Each was answered once in the round's sampling, in place of pool questions: the 60
        // questions' budget of paths holds the 60 continuations (8 questions of m = 8) too.
        let sampled = try RunOutputChecks.lines(folder.appendingPathComponent("round-1/sample/records.jsonl")).compactMap { $0["id"] as? String }
        #expect(sampled.count == 60 - 8)
        #expect(Set(sampled).isSuperset(of: imagined.map(\.id)))
        #expect(Set(sampled).count == sampled.count)
        // Kept ones reached the training data.
        let trained = Set(try examples(folder.appendingPathComponent("round-1/train.jsonl")).compactMap { $0["id"] as? String })
        #expect(trained.intersection(imagined.map(\.id)).count == report["kept"])
    }

    @Test(.timeLimit(.minutes(5)))
    func killedDuringImaginationItResumesWithoutDuplicates() async throws {
        // A slow simulator, so that the kill lands inside the imagination phase.
        let slow = Self.imagination + ["--set", "samplers.0.backend.time_to_first_token=150ms"]
        let clean = try RunTestSupport.temporaryFolder()
        let killed = try RunTestSupport.temporaryFolder()
        defer {
            try? FileManager.default.removeItem(at: clean)
            try? FileManager.default.removeItem(at: killed)
        }
        let reference = try launch(clean, slow)
        #expect(await reference.waitForExit() == 0, "\(reference.standardErrorTail.suffix(3000))")

        let first = try launch(killed, slow)
        let imagineRecords = killed.appendingPathComponent("round-1/imagine/records.jsonl")
        try await RunOutputChecks.waitUntil("the imagination phase stored some records", seconds: 60) {
            ((try? String(contentsOf: imagineRecords, encoding: .utf8)) ?? "").split(separator: "\n").count >= 5
        }
        first.send(signal: SIGKILL)
        _ = await first.waitForExit()
        try await RunOutputChecks.waitUntil("no process of the killed run is left", seconds: 20) {
            try RunOutputChecks.processes(withArguments: [killed.path]).isEmpty
        }
        #expect(!FileManager.default.fileExists(atPath: killed.appendingPathComponent("round-1/imagined.jsonl").path))
        let second = try launch(killed, slow)
        #expect(await second.waitForExit() == 0, "\(second.standardErrorTail.suffix(3000))")
        #expect(second.standardErrorTail.contains("Resuming rounds"))
        // Every prompt answered once, and the same questions as the uninterrupted run.
        let ids = try RunOutputChecks.lines(imagineRecords).compactMap { $0["id"] as? String }
        #expect(ids.count == 30 && Set(ids).count == 30)
        let resumed = try questions(killed.appendingPathComponent("round-1/imagined.jsonl"))
        #expect(Set(resumed.map(\.question)).count == resumed.count)
        #expect(resumed.map(\.question) == (try questions(clean.appendingPathComponent("round-1/imagined.jsonl"))).map(\.question))
        let sampled = try RunOutputChecks.lines(killed.appendingPathComponent("round-1/sample/records.jsonl")).compactMap { $0["id"] as? String }
        #expect(Set(sampled).count == sampled.count)
    }

    /// Two rounds from the starting model on accumulated, banded data: the second round trains
    /// on both rounds' selections (a question's newest paths only), from the starting model.
    @Test(.timeLimit(.minutes(5)))
    func theBandAccumulationAndTrainFromPickTheRightDataAndModel() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let band = (0.3, 0.95)
        let run = try launch(folder, [
            "--set", "rounds.max=2", "--set", "rounds.train_from=base", "--set", "rounds.data.accumulate=true",
            "--set", "rounds.data.min_confidence=\(band.0)", "--set", "rounds.data.max_confidence=\(band.1)",
            "--set", "rounds.data.max_per_question=3", "--set", "rounds.promotion.min_gain=-1",
            "--set", "rounds.evaluation.pass_at_k={k: 8, n: 16, questions: 20}",
            "--set", "rounds.evaluation.extra=[{name: two-step, dataset: {path: data/arithmetic-2step-eval-100.jsonl, format: gsm8k, limit: 30}}]",
        ])
        #expect(await run.waitForExit() == 0, "\(run.standardErrorTail.suffix(3000))")
        let summary = try rounds(folder)
        try #require(summary.count == 2)
        let base = try #require(summary[0]["sampled_with"] as? String)
        #expect(summary[0]["trained_from"] as? String == base)
        #expect(summary[1]["trained_from"] as? String == base, "round 2 did not start from the starting model")
        #expect(summary[1]["sampled_with"] as? String == summary[0]["candidate"] as? String)

        for round in 1 ... 2 {
            let roundFolder = folder.appendingPathComponent("round-\(round)")
            let records = try RunOutputChecks.lines(roundFolder.appendingPathComponent("sample/records.jsonl"))
                .map { try #require($0["record"] as? [String: Any]) }
            let selection = try #require(summary[round - 1]["selection"] as? [String: Any])
            let histogram = try #require(selection["confidence_histogram"] as? [Int])
            #expect(histogram.count == 10 && histogram.reduce(0, +) == records.count)
            let inBand = records.filter { ($0["accepted"] as? Bool) == true && ($0["confidence"] as? Double).map { $0 >= band.0 && $0 <= band.1 } == true }
            #expect(selection["questions_in_band"] as? Int == inBand.count)
            // This round's selection: in the band, at most 3 per question.
            let selected = try examples(roundFolder.appendingPathComponent("selected.jsonl"))
            #expect(!selected.isEmpty)
            #expect(selected.allSatisfy { ($0["confidence"] as? Double).map { $0 >= band.0 && $0 <= band.1 } == true })
            let perQuestion = Dictionary(grouping: selected, by: { $0["id"] as? String ?? "" })
            #expect(perQuestion.values.allSatisfy { $0.count <= 3 })
            #expect(Set(perQuestion.keys).isSubset(of: Set(inBand.compactMap { $0["id"] as? String })))
        }
        // Round 2 trains on both selections, a question selected twice with its round-2 paths.
        let first = try examples(folder.appendingPathComponent("round-1/selected.jsonl"))
        let second = try examples(folder.appendingPathComponent("round-2/selected.jsonl"))
        let trained = try examples(folder.appendingPathComponent("round-2/train.jsonl"))
        let secondIDs = Set(second.compactMap { $0["id"] as? String })
        let expected = first.filter { !secondIDs.contains($0["id"] as? String ?? "") } + second
        #expect(trained.map { "\($0["id"] ?? "")|\($0["completion"] ?? "")" } == expected.map { "\($0["id"] ?? "")|\($0["completion"] ?? "")" })
        #expect(Set(first.compactMap { $0["id"] as? String }).subtracting(secondIDs).count > 0, "the rounds' selections do not differ")
        #expect((summary[1]["selection"] as? [String: Any])?["examples_trained"] as? Int == trained.count)

        // The engine started from the starting model: the simulated model's step-error rate is
        // the starting rate moved by round 2's data, not round 1's model's.
        let model = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("round-2/model/model.json"))) as? [String: Any])
        let start = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("round-0/base-model.json"))) as? [String: Any])
        let share = try #require(model["right_share"] as? Double), rate = try #require(start["step_error_rate"] as? Double)
        #expect(abs((model["step_error_rate"] as? Double ?? 0) - min(0.95, max(0.001, rate * (1 - 0.6 * (2 * share - 1))))) < 1e-9)

        // pass@k, the extra set, calibration and flips reach rounds.json.
        let after = try #require(summary[0]["after"] as? [String: Any])
        #expect((after["pass_at_k"] as? [String: Any])?["k"] as? Int == 8)
        #expect((after["pass_at_k"] as? [String: Any])?["questions"] as? Int == 20)
        #expect(((after["extra"] as? [String: Any])?["two-step"] as? [String: Any])?["questions"] as? Int == 30)
        #expect(after["calibration_error"] is Double)
        #expect((summary[0]["decision"] as? [String: Any])?["flips"] is [String: Any])
        #expect(run.standardErrorTail.contains("extra two-step"))
    }

    @Test(.timeLimit(.minutes(5)))
    func trainFromBestStartsFromTheModelInForce() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "rounds.max=2", "--set", "rounds.train_from=best", "--set", "rounds.promotion.min_gain=-1"])
        #expect(await run.waitForExit() == 0, "\(run.standardErrorTail.suffix(3000))")
        let summary = try rounds(folder)
        try #require(summary.count == 2)
        #expect(summary[1]["trained_from"] as? String == summary[0]["candidate"] as? String)
    }
}
