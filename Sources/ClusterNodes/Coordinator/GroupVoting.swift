import Backends
import SelfImproveCore
import Wire

/// What the coordinator decides about one complete group: the record for the trainer and what
/// the run's statistics need.
struct GroupVerdict: Sendable {
    /// The record, without its sequence number (assigned when it joins the trainer stream).
    var record: Selfimprove_V1_TrainingRecord
    var answers: [Answer?]
    var vote: Vote
    var gold: Answer?
    var completionTokens: Int
}

/// Votes over a complete group and decides what is kept (pure; runs off the coordinator's actor).
enum GroupVoting {
    /// - Parameters:
    ///   - group: The question's m paths (nil where every attempt failed).
    ///   - scores: The verifier tier's combined score per path, or nil without verifiers.
    ///   - answers: Each path's answer as the verifier extracted it (same extractor), or nil to
    ///     extract them here.
    ///   - method: Vote rule, acceptance threshold and minimum path score.
    static func decide(_ group: WorkLedger.Group, scores: [Double]?, answers known: [Answer?]? = nil, method: ClusterConfig.MethodSettings) -> GroupVerdict {
        let kind = group.question.kind
        let answers = known.flatMap { $0.count == group.paths.count ? $0 : nil }
            ?? group.paths.map { path in path.flatMap { AnswerExtractor.extract(from: $0.text, as: kind) } }
        let vote: Vote
        switch method.vote {
        case .weighted:
            let weights = group.paths.indices.map { group.paths[$0] == nil ? 0 : scores?[safe: $0] ?? 0 }
            vote = SelfConsistency.weightedVote(answers, weights: weights, threshold: method.minConfidence)
        case .majority:
            vote = SelfConsistency.vote(answers, threshold: method.minConfidence)
        }
        let kept = vote.accepted
            ? vote.majorityPaths.filter { method.minPathScore <= 0 || (scores?[safe: $0] ?? 0) >= method.minPathScore }
            : []
        var record = Selfimprove_V1_TrainingRecord()
        record.questionID = group.question.id
        record.question = group.question.text
        record.vote = method.vote.rawValue
        var tokens = 0
        record.paths = group.paths.indices.map { index in
            var path = Selfimprove_V1_RecordPath()
            path.index = UInt32(index)
            if let sampled = group.paths[index] {
                path.text = sampled.text
                path.completionTokens = UInt32(clamping: sampled.completionTokens)
                tokens += sampled.completionTokens
            } else {
                path.givenUp = true
            }
            if let answer = answers[index] { path.answer = answer.canonical }
            if let sampler = group.samplers[index] { path.sampler = sampler }
            if let version = group.modelVersions[index] { path.modelVersion = version }
            if let score = scores?[safe: index] { path.score = score }
            return path
        }
        if let majority = vote.majority { record.majority = majority.canonical }
        record.confidence = vote.confidence
        record.accepted = vote.accepted && !kept.isEmpty
        record.keptPaths = record.accepted ? kept.map { UInt32($0) } : []
        if let gold = group.question.gold {
            record.gold = gold.canonical
            record.majorityCorrect = vote.majority == gold
        }
        return GroupVerdict(record: record, answers: answers, vote: vote, gold: group.question.gold, completionTokens: tokens)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
