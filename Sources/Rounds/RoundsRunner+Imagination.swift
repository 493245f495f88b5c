import ClusterNodes
import Foundation
import Logging
import SelfImproveCore

/// The imagination phase: the model in force writes new questions, prompted with questions of
/// the pool, through the cluster (a run whose data set holds the prompts themselves, sent raw);
/// the questions are parsed from its continuations, exact and near duplicates of every question
/// seen so far and of every evaluation question are dropped, and the rest join the round's
/// sampling (`round-N/imagined.jsonl`), where they are voted on and selected like any other.
extension RoundsRunner {
    public func imagine(_ state: inout RoundsState) async throws {
        guard let settings = rounds.imagination else { throw Failure("round \(state.round) has an imagination phase but no imagination settings") }
        let round = state.round
        let phaseFolder = folder(round).appendingPathComponent("imagine")
        logger.notice("phase: round \(round) imagination", metadata: ["model": "\(state.current.version)", "prompts": "\(settings.prompts)"])
        let started = ContinuousClock.now
        try FileManager.default.createDirectory(at: phaseFolder, withIntermediateDirectories: true)
        let pool = try RoundFiles.questions(config.dataset)
        guard !pool.isEmpty else { throw Failure("the pool \(config.dataset.path) has no question to show the model") }
        // The prompts are a function of the pool, the seed and the round: a resumed phase
        // writes the same file, and the cluster run resumes from its journal.
        let promptsFile = phaseFolder.appendingPathComponent("prompts.jsonl")
        var lines: [String] = []
        for index in 0 ..< settings.prompts {
            let seed = config.seed &+ UInt64(round) << 32 &+ UInt64(index)
            let prompt = Imagination.questionGenerationPrompt(from: pool.map(\.text), count: settings.examples, seed: seed)
            lines.append(try RoundFiles.jsonLine(["id": "imagine-\(round)-\(index)", "prompt": prompt]))
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: promptsFile, options: .atomic)
        let prompts = ClusterConfig.DatasetSettings(path: promptsFile.path, format: .generic(questionField: "prompt", answerField: nil, kind: .number),
                                                    limit: nil, skipBadLines: false)
        try await push(state.current)
        try await runCluster(folder: phaseFolder, model: state.current, phase: .imagine(dataset: prompts, settings: settings))
        let records = try RoundFiles.records(in: phaseFolder).sorted { $0.id < $1.id }
        try checkVersions(records, model: state.current, folder: phaseFolder)

        var index = QuestionIndex(threshold: settings.nearDuplicate)
        for set in [rounds.evaluation.dataset] + rounds.evaluation.extra.map(\.dataset) {
            for question in try RoundFiles.questions(set, ignoringLimit: true) { index.insert(question.text, group: "held_out") }
        }
        for question in try RoundFiles.questions(config.dataset, ignoringLimit: true) { index.insert(question.text, group: "pool") }
        for earlier in 1 ..< round {
            for question in try imaginedQuestions(round: earlier) { index.insert(question.text, group: "imagined") }
        }
        var report = ImaginationReport()
        report.prompts = records.count
        var added: [(id: String, question: String)] = []
        for record in records {
            for path in record.paths.sorted(by: { $0.index < $1.index }) where path.givenUp != true {
                report.written += 1
                for question in Imagination.parseGeneratedQuestions(path.text) {
                    report.parsed += 1
                    if let match = index.match(question) {
                        if match.group == "held_out" { report.heldOutDuplicates += 1 } else { report.duplicates += 1 }
                        continue
                    }
                    index.insert(question, group: "imagined")
                    added.append(("imagined-\(round)-\(added.count)", question))
                }
            }
        }
        report.added = added.count
        let imaginedFile = folder(round).appendingPathComponent("imagined.jsonl")
        try Data(added.map { try RoundFiles.jsonLine(["id": $0.id, "question": $0.question]) + "\n" }.joined().utf8)
            .write(to: imaginedFile, options: .atomic)
        try RoundFiles.writeJSON(report, to: phaseFolder.appendingPathComponent("imagination.json"))
        logger.notice("round \(round): imagination", metadata: [
            "prompts": "\(report.prompts)", "written": "\(report.written)", "parsed": "\(report.parsed)",
            "duplicates": "\(report.duplicates)", "held_out_duplicates": "\(report.heldOutDuplicates)", "added": "\(report.added)",
        ])
        try state.apply(.imagined(report, seconds: (ContinuousClock.now - started).seconds))
    }

    /// The questions round `round`'s imagination added (none without one).
    public func imaginedQuestions(round: Int) throws -> [Question] {
        let file = folder(round).appendingPathComponent("imagined.jsonl")
        guard FileManager.default.fileExists(atPath: file.path) else { return [] }
        return try RoundFiles.questions(ClusterConfig.DatasetSettings(
            path: file.path, format: .generic(questionField: "question", answerField: nil, kind: config.dataset.format.kind),
            limit: nil, skipBadLines: false))
    }

    /// The data set a round samples: the config's, plus the questions its imagination added
    /// (written with the pool into `round-N/questions.jsonl`); nil: the config's as it is.
    ///
    /// The round keeps the pool's budget of sampled paths: the imagination's continuations
    /// (prompts × paths, counted in questions of m paths) and the questions it added take the
    /// place of the pool's last questions, so that rounds with and without imagination sample
    /// the same number of paths.
    public func samplingDataset(round: Int) throws -> ClusterConfig.DatasetSettings? {
        guard let settings = rounds.imagination else { return nil }
        let imagined = try imaginedQuestions(round: round)
        let full = try RoundFiles.questions(config.dataset)
        let writingCost = (settings.prompts * settings.paths + config.method.m - 1) / max(1, config.method.m)
        let pool = Array(full.prefix(max(0, full.count - writingCost - imagined.count)))
        var lines: [String] = []
        for question in pool + imagined {
            var object: [String: Any] = ["id": question.id, "question": question.text]
            if let gold = question.gold { object["answer"] = gold.canonical }   // for reports only
            lines.append(try RoundFiles.jsonLine(object))
        }
        let file = folder(round).appendingPathComponent("questions.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file, options: .atomic)
        return ClusterConfig.DatasetSettings(path: file.path, format: .generic(questionField: "question", answerField: "answer", kind: config.dataset.format.kind),
                                             limit: nil, skipBadLines: false)
    }
}
