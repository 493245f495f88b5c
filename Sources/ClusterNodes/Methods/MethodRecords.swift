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
    /// refine: how its paths went through the stages.
    var refine: RefineCounts?
    /// verify_refine: how its answer went.
    var verifyRefine: VerifyRefineCounts?
    /// The verifier node that labelled its paths (refine, verify_refine).
    var labelledBy: String?
    /// search: what its tree did.
    var search: SearchCounts?
    /// Whether the record names the verifier that labelled its paths (where the verifier's
    /// labels, not a vote, decide what is kept).
    var namesLabeller = true
    /// The vote refused the question (LMSI; the coordinator logs it).
    var rejectedByVote = false
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
        case let .refine(result): verdict(for: result)
        case let .verifyRefine(result): verdict(for: result)
        case let .search(result): verdict(for: result)
        }
    }
}

extension MethodRecords {
    /// The record's paths (each with its answer, score and origin, or marked given up) and
    /// their completion tokens.
    static func recordPaths(_ paths: [SampledPath?], answers: [Answer?], scores: [Double]?) -> ([Selfimprove_V1_RecordPath], Int) {
        var tokens = 0
        let records = paths.indices.map { index in
            var path = Selfimprove_V1_RecordPath()
            path.index = UInt32(index)
            if let sampled = paths[index] {
                path.text = sampled.text
                path.completionTokens = UInt32(clamping: sampled.completionTokens)
                tokens += sampled.completionTokens
                if !sampled.sampler.isEmpty { path.sampler = sampled.sampler }
                if !sampled.modelVersion.isEmpty { path.modelVersion = sampled.modelVersion }
            } else {
                path.givenUp = true
            }
            if let answer = answers[safe: index] ?? nil { path.answer = answer.canonical }
            if let score = scores?[safe: index] { path.score = score }
            return path
        }
        return (records, tokens)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
