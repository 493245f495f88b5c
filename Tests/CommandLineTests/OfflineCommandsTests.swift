import Foundation
import ProcessSupervision
import TestFiles
import Testing

/// `selfimprove dataset generate` and `selfimprove vote`, run as the built executable.
@Suite("Offline commands")
struct OfflineCommandsTests {
    struct Run {
        var status: Int32
        var stdout: [String]
        var stderr: String
    }

    private func selfimprove(_ arguments: [String]) async throws -> Run {
        let executable = try #require(ChildProcess.siblingExecutable(named: "selfimprove"), "run `swift build` first")
        let child = try ChildProcess(executable: executable, arguments: arguments)
        var lines: [String] = []
        while let line = await child.nextLine(timeout: .seconds(60)) { lines.append(line) }
        let status = await child.stop(grace: .seconds(30))
        return Run(status: status, stdout: lines, stderr: child.standardErrorTail)
    }

    private func temporaryFolder() throws -> URL { try TestFiles.temporaryFolder() }

    private func jsonObject(_ text: some StringProtocol) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw CocoaError(.coderReadCorrupt)
        }
        return object
    }

    private func jsonLines(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { try jsonObject($0) }
    }

    @Test(.timeLimit(.minutes(2)))
    func generateIsSeededAndWritesGSM8K() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = folder.appendingPathComponent("a.jsonl"), second = folder.appendingPathComponent("b.jsonl")
        #expect(try await selfimprove(["dataset", "generate", "--count", "25", "--seed", "9", "--out", first.path]).status == 0)
        #expect(try await selfimprove(["dataset", "generate", "--count", "25", "--seed", "9", "--out", second.path]).status == 0)
        #expect(try Data(contentsOf: first) == Data(contentsOf: second))
        let lines = try jsonLines(first)
        #expect(lines.count == 25)
        for line in lines {
            let answer = line["answer"] as? String ?? ""
            #expect(answer.contains("\n#### "))
            #expect(line["question"] is String)
        }
        let refused = try await selfimprove(["dataset", "generate", "--count", "0", "--out", first.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--count"))
    }

    @Test(.timeLimit(.minutes(2)))
    func voteWritesRecordsAndFourFormatsPerKeptPath() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("paths.jsonl")
        try """
        {"id": "a", "question": "2 + 2?", "paths": ["2 + 2 = 4. The answer is 4.", "The answer is 4.", "The answer is 5.", "no idea"], "gold": 4}
        {"id": "b", "question": "3 * 3?", "paths": ["The answer is 6.", "The answer is 9.", "The answer is 9."], "gold": "9"}
        {"id": "c", "question": "Unlabelled?", "paths": ["The answer is 1."]}

        """.write(to: input, atomically: true, encoding: .utf8)
        let out = folder.appendingPathComponent("out")
        let run = try await selfimprove(["vote", input.path, "--out", out.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = try jsonObject(try #require(run.stdout.last))
        #expect(summary["questions"] as? Int == 3)
        #expect(summary["paths"] as? Int == 8)
        #expect(summary["labelled"] as? Int == 2)
        #expect(summary["majority_accuracy"] as? Double == 1)
        #expect(summary["first_path_accuracy"] as? Double == 0.5)
        #expect(summary["pass_at_m"] as? Double == 1)

        let records = try jsonLines(out.appendingPathComponent("records.jsonl"))
        #expect(records.map { $0["id"] as? String } == ["a", "b", "c"])
        #expect(records[0]["majority"] as? String == "4")
        #expect(records[0]["kept_paths"] as? [Int] == [0, 1])
        #expect(records[0]["confidence"] as? Double == 0.5)
        let sft = try jsonLines(out.appendingPathComponent("sft.jsonl"))
        let expectedCount = 4 * (2 + 2 + 1)
        #expect(sft.count == expectedCount)
        let formats: Set<String> = Set(sft.compactMap { $0["format"] as? String })
        let expected: Set<String> = ["cot_fewshot", "direct_fewshot", "cot_zeroshot", "direct_zeroshot"]
        #expect(formats == expected)
        for line in sft {
            let messages = line["messages"] as? [[String: String]] ?? []
            #expect(messages.count == 2)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func badLinesAreReportedWithTheirLineNumber() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("paths.jsonl")
        try """
        {"question": "ok?", "paths": ["The answer is 1."]}
        {"question": "broken", "paths": "not a list"}
        {"question": "ok too?", "paths": ["The answer is 2."]}
        """.write(to: input, atomically: true, encoding: .utf8)
        let out = folder.appendingPathComponent("out")
        let strict = try await selfimprove(["vote", input.path, "--out", out.path])
        #expect(strict.status != 0)
        #expect(strict.stderr.contains("paths.jsonl:2:"))
        let lenient = try await selfimprove(["vote", input.path, "--out", out.path, "--skip-bad-lines", "--json"])
        #expect(lenient.status == 0)
        let summary = try jsonObject(try #require(lenient.stdout.last))
        #expect(summary["questions"] as? Int == 2)
        #expect(summary["skipped_lines"] as? Int == 1)
        #expect((summary["bad_lines"] as? [String])?.first?.contains("paths.jsonl:2:") == true)
    }
}
