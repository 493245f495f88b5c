import ClusterNodes
import Foundation
import SelfImproveCore
import TestFiles
import Testing

@Suite("Trainer sink")
struct TrainerSinkTests {
    private func folder() throws -> URL { try TestFiles.temporaryFolder("sink") }

    private func item(_ sequence: UInt64, id: String? = nil) -> SinkRecord {
        let input = VoteInput(id: id ?? "q\(sequence)", question: "What is \(sequence) + 1?",
                              paths: ["The answer is \(sequence + 1).", "The answer is \(sequence + 1)."], gold: nil)
        let made = VoteRecord.make(from: input, kind: .number, threshold: nil, prompts: PromptBuilder(exemplars: ExemplarFile.arithmetic))
        return SinkRecord(sequence: sequence, record: made.record, examples: made.examples)
    }

    private func lines(_ url: URL) throws -> [String] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func appendsDurablyAndResumesFromTheLastSequence() throws {
        let url = try folder()
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            let sink = try TrainerSink(folder: url)
            #expect(sink.durableSequence == 0)
            #expect(try sink.append([item(1), item(2)]) == 2)
            #expect(try sink.append([item(3)]) == 3)
        }
        let reopened = try TrainerSink(folder: url)
        #expect(reopened.durableSequence == 3)
        #expect(reopened.recordCount == 3)
        #expect(reopened.exampleCount == 3 * 2 * 4)
        #expect(reopened.repairs.isEmpty)
        #expect(try lines(url.appendingPathComponent("records.jsonl")).count == 3)
    }

    @Test func resentAndDuplicateRecordsAreSkipped() throws {
        let url = try folder()
        defer { try? FileManager.default.removeItem(at: url) }
        let sink = try TrainerSink(folder: url)
        try sink.append([item(1), item(2)])
        // A resend after a lost acknowledgement, and the same question under a new sequence.
        #expect(try sink.append([item(1), item(2), item(3, id: "q1")]) == 2)
        #expect(try sink.append([item(4)]) == 4)
        let ids = try lines(url.appendingPathComponent("records.jsonl")).map { line -> String in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return object?["id"] as? String ?? ""
        }
        #expect(ids == ["q1", "q2", "q4"])
    }

    @Test func aTornTailAndOrphanedTrainingLinesAreCutOnOpen() throws {
        let url = try folder()
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            let sink = try TrainerSink(folder: url)
            try sink.append([item(1), item(2)])
        }
        // A crash mid-write: training lines of sequence 3 made it, its record only half.
        let sft = try FileHandle(forWritingTo: url.appendingPathComponent("sft.jsonl"))
        try sft.seekToEnd()
        try sft.write(contentsOf: Data(#"{"example":null,"id":"q3","sequence":3}"#.utf8 + [0x0A]))
        try sft.write(contentsOf: Data(#"{"example":null,"id":"q3","seq"#.utf8))
        try sft.close()
        let records = try FileHandle(forWritingTo: url.appendingPathComponent("records.jsonl"))
        try records.seekToEnd()
        try records.write(contentsOf: Data(#"{"id":"q3","rec"#.utf8))
        try records.close()

        let sink = try TrainerSink(folder: url)
        #expect(sink.durableSequence == 2)
        #expect(sink.repairs.count == 2)
        #expect(sink.repairs.contains { $0.hasPrefix("records.jsonl: cut a torn last line") })
        #expect(sink.repairs.contains { $0.hasPrefix("sft.jsonl: cut") && $0.contains("beyond sequence 2") })
        #expect(sink.exampleCount == 2 * 2 * 4)
        #expect(try lines(url.appendingPathComponent("records.jsonl")).count == 2)
        #expect(try lines(url.appendingPathComponent("sft.jsonl")).count == 2 * 2 * 4)
        // The resent record lands exactly once.
        #expect(try sink.append([item(3)]) == 3)
        #expect(try lines(url.appendingPathComponent("records.jsonl")).count == 3)
        #expect(try lines(url.appendingPathComponent("sft.jsonl")).count == 3 * 2 * 4)
    }

    /// A search record: its tree in the record line, its pairs and step labels in their files,
    /// each repaired like `sft.jsonl` after a crash.
    @Test func searchExportsAreWrittenBeforeTheRecordAndCutBeyondItOnOpen() throws {
        let url = try folder()
        defer { try? FileManager.default.removeItem(at: url) }
        func searchItem(_ sequence: UInt64) -> SinkRecord {
            var base = item(sequence)
            let nodes = [
                SearchTreeRecord.Node(parent: nil, text: "", depth: 0, visits: 3, value: 0.6, terminal: false, answer: nil, process: nil, outcome: nil,
                                      estimate: nil, reward: nil, completionTokens: 0, path: nil, rollouts: []),
                SearchTreeRecord.Node(parent: 0, text: " \(sequence) + 1 = \(sequence + 1). The answer is \(sequence + 1).", depth: 1, visits: 2,
                                      value: 1, terminal: true, answer: "\(sequence + 1)", process: 1, outcome: 1, estimate: nil, reward: 1,
                                      completionTokens: 9, path: 0, rollouts: []),
                SearchTreeRecord.Node(parent: 0, text: " The answer is 0.", depth: 1, visits: 1, value: 0, terminal: true, answer: "0", process: 0,
                                      outcome: 0, estimate: nil, reward: 0, completionTokens: 5, path: 1, rollouts: []),
            ]
            base.record.method = "search"
            base.record.search = SearchTreeRecord(nodes: nodes, bestPath: 0, counters: SearchCounters(), labelThreshold: 0.5, pairMargin: 0.2)
            base.preferences = base.record.search!.preferencePairs(question: base.record.question)
            base.stepLabels = base.record.search!.stepLabels(question: base.record.question)
            return base
        }
        let first = searchItem(1)
        #expect(first.preferences.count == 1 && first.stepLabels.count == 2)
        do {
            let sink = try TrainerSink(folder: url)
            try sink.append([first, searchItem(2)])
            #expect(sink.preferenceCount == 2 && sink.stepLabelCount == 4)
        }
        struct Pair: Decodable { var prompt: String; var chosen: String; var rejected: String; var id: String; var sequence: UInt64 }
        struct Labels: Decodable { var prompt: String; var completions: [String]; var labels: [Bool]; var id: String; var sequence: UInt64 }
        let pairs = try lines(url.appendingPathComponent("preferences.jsonl")).map { try JSONDecoder().decode(Pair.self, from: Data($0.utf8)) }
        #expect(pairs.map(\.sequence) == [1, 2] && pairs[0].chosen == first.preferences[0].chosen && pairs[0].rejected == " The answer is 0.")
        let labels = try lines(url.appendingPathComponent("step_labels.jsonl")).map { try JSONDecoder().decode(Labels.self, from: Data($0.utf8)) }
        #expect(labels.map(\.labels) == [[true], [false], [true], [false]])
        struct Line: Decodable { var record: VoteRecord }
        let stored = try lines(url.appendingPathComponent("records.jsonl")).map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)).record }
        #expect(stored[0].search == first.record.search)

        // A crash after the exports of sequence 3 but before its record.
        for name in ["preferences.jsonl", "step_labels.jsonl"] {
            let handle = try FileHandle(forWritingTo: url.appendingPathComponent(name))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(#"{"id":"q3","prompt":"p","sequence":3}"#.utf8 + [0x0A]))
            try handle.close()
        }
        let sink = try TrainerSink(folder: url)
        #expect(sink.durableSequence == 2 && sink.preferenceCount == 2 && sink.stepLabelCount == 4)
        #expect(sink.repairs.contains { $0.hasPrefix("preferences.jsonl: cut") } && sink.repairs.contains { $0.hasPrefix("step_labels.jsonl: cut") })
        try sink.append([searchItem(3)])
        #expect(try lines(url.appendingPathComponent("preferences.jsonl")).count == 3)
        #expect(try lines(url.appendingPathComponent("step_labels.jsonl")).count == 6)
    }

    /// The hand-written JSON lines decode to exactly what was stored, whatever the text holds.
    @Test func writtenLinesDecodeToTheSameRecord() throws {
        let url = try folder()
        defer { try? FileManager.default.removeItem(at: url) }
        let tricky = "Quote \" backslash \\ slash / tab \t newline \n return \r bell \u{07} unicode é 日本 🎉"
        let record = VoteRecord(
            id: "q-\(tricky)", question: tricky,
            paths: [
                VoteRecord.Path(index: 0, text: tricky, answer: "7", sampler: "s-1", modelVersion: "m", score: 0.125, completionTokens: 12),
                VoteRecord.Path(index: 1, text: "", answer: nil, givenUp: true),
                VoteRecord.Path(index: 2, text: "x", answer: "1/3", score: 1.0 / 3),
            ],
            majority: "7", confidence: 1.0 / 3, accepted: true, keptPaths: [0], gold: "7", majorityCorrect: true, vote: "majority")
        let example = TrainingExample(format: .zeroShotChainOfThought, prompt: "Q: \(tricky)\nA:", completion: " \(tricky)")
        let sink = try TrainerSink(folder: url)
        try sink.append([SinkRecord(sequence: 5, record: record, examples: [example])])

        struct Line: Decodable { var sequence: UInt64; var id: String; var record: VoteRecord }
        struct ExampleLine: Decodable {
            var sequence: UInt64
            var id: String
            var format: TrainingExample.Format
            var prompt: String
            var completion: String
            var messages: [TrainingExample.Message]
        }
        let recordLines = try lines(url.appendingPathComponent("records.jsonl"))
        #expect(recordLines.count == 1)
        let decoded = try JSONDecoder().decode(Line.self, from: Data(recordLines[0].utf8))
        #expect(decoded.sequence == 5)
        #expect(decoded.id == record.id)
        #expect(decoded.record == record)
        let exampleLines = try lines(url.appendingPathComponent("sft.jsonl"))
        let decodedExample = try JSONDecoder().decode(ExampleLine.self, from: Data(exampleLines[0].utf8))
        #expect(decodedExample.format == example.format)
        #expect(decodedExample.prompt == example.prompt)
        #expect(decodedExample.completion == example.completion)
        #expect(decodedExample.messages == example.messages)
        #expect(decodedExample.id == record.id)
        #expect(decodedExample.sequence == 5)
        // And the sink reads its own files back.
        let reopened = try TrainerSink(folder: url)
        #expect(reopened.durableSequence == 5)
        #expect(reopened.contains(questionID: record.id))
    }
}
