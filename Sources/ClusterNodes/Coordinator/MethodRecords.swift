import SelfImproveCore
import Wire

/// What the coordinator keeps of one finished question: the record for the trainer and what
/// the run's statistics need.
struct GroupVerdict: Sendable {
    /// The record, without its sequence number (assigned when it joins the trainer stream).
    var record: Selfimprove_V1_TrainingRecord
    var answers: [Answer?]
    var vote: Vote
    var gold: Answer?
    var completionTokens: Int
}

/// Turns a method's result into the record the journal and the trainer take (pure; runs off
/// the coordinator's actor).
enum MethodRecords {
    /// - Parameters:
    ///   - result: What the question's method yielded.
    ///   - vote: The vote rule's name, as the record states it.
    static func verdict(for result: MethodResult, vote: String) -> GroupVerdict {
        switch result {
        case let .selfConsistency(result): verdict(for: result, vote: vote)
        }
    }

    /// LMSI: every path with its answer, score and origin; the vote; the kept paths.
    static func verdict(for result: SelfConsistencyResult, vote rule: String) -> GroupVerdict {
        var record = Selfimprove_V1_TrainingRecord()
        record.questionID = result.question.id
        record.question = result.question.text
        record.vote = rule
        var tokens = 0
        record.paths = result.paths.indices.map { index in
            var path = Selfimprove_V1_RecordPath()
            path.index = UInt32(index)
            if let sampled = result.paths[index] {
                path.text = sampled.text
                path.completionTokens = UInt32(clamping: sampled.completionTokens)
                tokens += sampled.completionTokens
                if !sampled.sampler.isEmpty { path.sampler = sampled.sampler }
                if !sampled.modelVersion.isEmpty { path.modelVersion = sampled.modelVersion }
            } else {
                path.givenUp = true
            }
            if let answer = result.answers[safe: index] ?? nil { path.answer = answer.canonical }
            if let score = result.scores?[safe: index] { path.score = score }
            return path
        }
        let vote = result.vote
        if let majority = vote.majority { record.majority = majority.canonical }
        record.confidence = vote.confidence
        record.accepted = result.accepted
        record.keptPaths = record.accepted ? result.kept.map { UInt32($0) } : []
        if let gold = result.question.gold {
            record.gold = gold.canonical
            record.majorityCorrect = vote.majority == gold
        }
        return GroupVerdict(record: record, answers: result.answers, vote: vote, gold: result.question.gold, completionTokens: tokens)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
