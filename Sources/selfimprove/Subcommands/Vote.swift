import ClusterNodes
import ArgumentParser
import CommandLineSupport
import Foundation
import SelfImproveCore
import ProcessSupervision

/// `selfimprove vote`: self-consistency and LMSI training data from paths drawn by any tool.
struct Vote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Vote over sampled paths and write records.jsonl and sft.jsonl (LMSI mixed formats).",
        discussion: """
        INPUT is JSONL, one question per line: {"id", "question", "paths": ["...", ...], "gold"?}.
        Writes DIR/records.jsonl (answers, vote, confidence, kept paths) and DIR/sft.jsonl (four
        training examples per kept path, as prompt/completion and chat messages).
        """
    )

    @Argument(help: "JSONL file of sampled paths.")
    var input: String

    @Option(help: "Folder for records.jsonl and sft.jsonl.")
    var out: String

    @Option(help: "Answer kind: number, choice, label or text.")
    var kind = "number"

    @Option(help: "Keep a question's paths only if its vote confidence reaches this (0...1).")
    var threshold: Double?

    @Option(help: "Exemplar JSONL {question, reasoning, answer} for the few-shot formats (default: the built-in arithmetic ones).")
    var exemplars: String?

    @Flag(help: "Skip malformed input lines (they are counted and reported) instead of stopping.")
    var skipBadLines = false

    @Flag(help: "Print a JSON summary.")
    var json = false

    func validate() throws {
        guard AnswerKind(rawValue: kind) != nil else { throw ValidationError("--kind must be number, choice, label or text") }
        if let threshold, !(0 ... 1).contains(threshold) { throw ValidationError("--threshold must be between 0 and 1") }
    }

    func run() async throws {
        let kind = AnswerKind(rawValue: kind) ?? .number
        let prompts = PromptBuilder(exemplars: try exemplars.map { try ExemplarFile.decode(FileLines(path: $0), source: $0) } ?? ExemplarFile.arithmetic)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let records = try JSONLinesWriter(path: (out as NSString).appendingPathComponent("records.jsonl"))
        let sft = try JSONLinesWriter(path: (out as NSString).appendingPathComponent("sft.jsonl"))

        var report = EvaluationReport()
        var paths = 0, accepted = 0, examples = 0, skipped = 0
        var confidenceSum = 0.0
        var badLines: [String] = []
        for (index, line) in try FileLines(path: input).enumerated() {
            let item: VoteInput
            do {
                guard let decoded = try VoteInput.decode(line, source: input, lineNumber: index + 1) else { continue }
                item = decoded
            } catch {
                guard skipBadLines else {
                    try records.close()
                    try sft.close()
                    throw error
                }
                skipped += 1
                if badLines.count < 20 { badLines.append(error.description) }
                continue
            }
            let result = VoteRecord.make(from: item, kind: kind, threshold: threshold, prompts: prompts)
            try records.write(result.record)
            for example in result.examples {
                try sft.write(SFTLine(id: item.id, example: example))
            }
            report.add(answers: result.answers, vote: result.vote, gold: result.gold)
            paths += item.paths.count
            confidenceSum += result.vote.confidence
            if result.vote.accepted { accepted += 1 }
            examples += result.examples.count
        }
        try records.close()
        try sft.close()

        var summary: [String: Any] = [
            "questions": report.questions, "paths": paths, "accepted": accepted, "sft_examples": examples,
            "mean_confidence": report.questions > 0 ? confidenceSum / Double(report.questions) : 0,
            "skipped_lines": skipped, "labelled": report.labelled,
        ]
        if !badLines.isEmpty { summary["bad_lines"] = badLines }
        if report.labelled > 0 {
            summary["first_path_accuracy"] = report.firstPathAccuracy ?? 0
            summary["majority_accuracy"] = report.majorityAccuracy ?? 0
            summary["pass_at_m"] = report.passAtM ?? 0
            summary["calibration"] = report.calibration.map {
                ["lower": $0.lower, "upper": $0.upper, "questions": $0.questions, "majority_correct": $0.majorityCorrect]
            }
        }
        if json {
            printJSONLine(summary)
        } else {
            for badLine in badLines { SafeFileWriter.standardError.write(Data("skipped \(badLine)\n".utf8)) }
            var text = "\(report.questions) questions, \(paths) paths, \(accepted) accepted, \(examples) training examples"
            text += String(format: ", mean confidence %.3f", report.questions > 0 ? confidenceSum / Double(report.questions) : 0)
            if let first = report.firstPathAccuracy, let majority = report.majorityAccuracy, let pass = report.passAtM {
                text += String(format: "\naccuracy (%d labelled): first path %.3f, majority %.3f, pass@m %.3f", report.labelled, first, majority, pass)
            }
            print(text)
        }
    }
}

/// One line of sft.jsonl.
struct SFTLine: Encodable {
    let id: String
    let example: TrainingExample

    enum CodingKeys: String, CodingKey { case id, format, prompt, completion, messages }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(example.format, forKey: .format)
        try container.encode(example.prompt, forKey: .prompt)
        try container.encode(example.completion, forKey: .completion)
        try container.encode(example.messages, forKey: .messages)
    }
}
