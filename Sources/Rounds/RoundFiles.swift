import ClusterNodes
import Foundation
import SelfImproveCore

/// Reads what a phase's cluster run wrote (`records.jsonl`, `sft.jsonl`, `manifest.json`) into
/// the rounds' pure types. Every malformed line is an error naming the file and the line: a
/// round must never train or be judged on data it could not read.
public enum RoundFiles {
    public struct ReadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// A line of `records.jsonl`.
    private struct RecordLine: Decodable {
        var id: String
        var record: VoteRecord
    }

    /// Every record of a run, in file order.
    public static func records(in folder: URL) throws -> [VoteRecord] {
        try lines(of: folder.appendingPathComponent("records.jsonl")).map { (line: String, number: Int, file: String) in
            do {
                return try JSONDecoder().decode(RecordLine.self, from: Data(line.utf8)).record
            } catch {
                throw ReadError(description: "\(file):\(number): not a record line (\(error))")
            }
        }
    }

    /// Per-question outcomes of an evaluation run, with greedy correctness from a greedy run.
    public static func outcomes(records: [VoteRecord], greedy: [VoteRecord]?) -> [QuestionOutcome] {
        let greedyByID = Dictionary((greedy ?? []).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return records.map { record in
            let correct = record.gold.map { gold in record.paths.filter { $0.answer == gold }.count } ?? 0
            var greedyCorrect: Bool?
            if let gold = record.gold, let greedyRecord = greedyByID[record.id] {
                greedyCorrect = greedyRecord.paths.first?.answer == gold
            }
            return QuestionOutcome(id: record.id, paths: record.paths.count, correctPaths: correct, confidence: record.confidence,
                                   majorityCorrect: record.gold.map { _ in record.majorityCorrect == true }, greedyCorrect: greedyCorrect)
        }
    }

    /// The versions of the paths of `records` other than `expected` (given-up paths carry none):
    /// a round's data must come from the one model that was in force.
    public static func foreignVersions(in records: [VoteRecord], expected: String) -> Set<String> {
        var foreign: Set<String> = []
        for record in records {
            for path in record.paths where path.givenUp != true {
                if path.modelVersion != expected { foreign.insert(path.modelVersion ?? "none") }
            }
        }
        return foreign
    }

    /// The questions of a data set (its first `limit` unless `ignoringLimit`).
    public static func questions(_ dataset: ClusterConfig.DatasetSettings, ignoringLimit: Bool = false) throws -> [Question] {
        let lines: FileLines
        do {
            lines = try FileLines(path: dataset.path)
        } catch {
            throw ReadError(description: "cannot read the data set \(dataset.path)")
        }
        var iterator = DatasetReader(lines: lines, format: dataset.format, source: dataset.path,
                                     policy: dataset.skipBadLines ? .skip(keepErrors: 0) : .strict).makeIterator()
        var questions: [Question] = []
        while let question = try iterator.next() {
            questions.append(question)
            if !ignoringLimit, let limit = dataset.limit, questions.count >= limit { break }
        }
        return questions
    }

    /// One JSON object as a line (sorted keys, slashes as they are).
    public static func jsonLine(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    /// A line of `sft.jsonl`.
    private struct ExampleLine: Decodable {
        var id: String
        var format: String
        var prompt: String
        var completion: String
    }

    /// The training examples of a sampling run, each with its record's confidence and (for the
    /// report only) whether its majority is right.
    public static func candidateExamples(in folder: URL, records: [VoteRecord]) throws -> [TrainingDataSelection.Example] {
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return try lines(of: folder.appendingPathComponent("sft.jsonl")).map { (line: String, number: Int, file: String) in
            let example: ExampleLine
            do {
                example = try JSONDecoder().decode(ExampleLine.self, from: Data(line.utf8))
            } catch {
                throw ReadError(description: "\(file):\(number): not a training example (\(error))")
            }
            guard let record = byID[example.id] else {
                throw ReadError(description: "\(file):\(number): example of question '\(example.id)', which records.jsonl does not hold")
            }
            return TrainingDataSelection.Example(id: example.id, format: example.format, prompt: example.prompt, completion: example.completion,
                                                 confidence: record.confidence, majorityCorrect: record.majorityCorrect)
        }
    }

    /// A round's selected training data (`train.jsonl`, written by ``writeExamples(_:to:)``).
    public static func readExamples(_ file: URL) throws -> [TrainingDataSelection.Example] {
        try lines(of: file).map { (line: String, number: Int, path: String) in
            do {
                return try JSONDecoder().decode(TrainingDataSelection.Example.self, from: Data(line.utf8))
            } catch {
                throw ReadError(description: "\(path):\(number): not a training example (\(error))")
            }
        }
    }

    /// Writes examples as JSON lines (`prompt`, `completion`, `id`, `format`, `confidence`,
    /// `majority_correct`), atomically.
    public static func writeExamples(_ examples: [TrainingDataSelection.Example], to file: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for example in examples {
            data.append(try encoder.encode(example))
            data.append(0x0A)
        }
        try data.write(to: file, options: .atomic)
    }

    /// A finished run's manifest, or an error saying why the phase did not finish.
    public static func finishedManifest(in folder: URL) throws -> RunManifest {
        let file = folder.appendingPathComponent("manifest.json")
        guard FileManager.default.fileExists(atPath: file.path) else { throw ReadError(description: "\(file.path) is missing") }
        let manifest: RunManifest
        do {
            manifest = try RunManifest.read(file)
        } catch {
            throw ReadError(description: "\(file.path) is unreadable: \(error)")
        }
        guard manifest.status == .finished else {
            throw ReadError(description: "the run in \(folder.path) ended '\(manifest.status.rawValue)'\(manifest.reason.map { ": \($0)" } ?? "")")
        }
        return manifest
    }

    /// Writes a JSON value atomically (sorted keys, readable).
    public static func writeJSON<T: Encodable>(_ value: T, to file: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(value).write(to: file, options: .atomic)
    }

    /// The non-empty lines of a file with their numbers (1-based) and the file's path.
    private static func lines(of file: URL) throws -> [(String, Int, String)] {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw ReadError(description: "cannot read \(file.path)")
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .filter { !$0.element.isEmpty }
            .map { (String($0.element), $0.offset + 1, file.path) }
    }
}
