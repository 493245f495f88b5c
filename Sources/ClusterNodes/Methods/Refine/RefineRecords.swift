import SelfImproveCore
import Wire

/// How one question's (or a run's) paths went through SCORE's stages.
struct RefineCounts: Sendable, Hashable {
    var solutions = 0
    var judgedWrong = 0
    var critiqued = 0
    var passedFilters = 0
    var refinedRight = 0
    var rebalanced = 0
    /// Critiques refused, by rule.
    var filtered: [String: Int] = [:]

    static func += (lhs: inout RefineCounts, rhs: RefineCounts) {
        lhs.solutions += rhs.solutions
        lhs.judgedWrong += rhs.judgedWrong
        lhs.critiqued += rhs.critiqued
        lhs.passedFilters += rhs.passedFilters
        lhs.refinedRight += rhs.refinedRight
        lhs.rebalanced += rhs.rebalanced
        lhs.filtered.merge(rhs.filtered, uniquingKeysWith: +)
    }
}

extension MethodRecords {
    /// SCORE: every solution with its label score, each wrong one's critique and refinement (and
    /// the rebalanced right ones); the vote over the solutions is kept for the statistics. The
    /// record is accepted when some critique and refinement are kept.
    static func verdict(for result: RefineResult) -> GroupVerdict {
        var record = Selfimprove_V1_TrainingRecord()
        record.method = MethodName.refine.recordName
        record.questionID = result.question.id
        record.question = result.question.text
        record.rightAt = result.rightAt
        let (paths, solutionTokens) = recordPaths(result.solutions, answers: result.answers, scores: result.scores)
        record.paths = paths
        var tokens = solutionTokens
        if let reference = result.reference { record.referencePath = UInt32(reference) }
        var counts = RefineCounts()
        counts.solutions = result.solutions.compactMap { $0 }.count
        counts.judgedWrong = result.solutions.indices.filter { result.solutions[$0] != nil && !result.isRight($0) }.count
        record.refinements = result.attempts.map { attempt in
            var wire = Selfimprove_V1_RefineAttempt()
            wire.pathIndex = UInt32(attempt.solution)
            wire.critique = attempt.critiqueText ?? ""
            wire.outcome = attempt.outcome.name
            wire.kept = attempt.kept
            var attemptTokens = 0
            if let critique = attempt.critique {
                wire.sampler = critique.sampler
                wire.modelVersion = critique.modelVersion
                attemptTokens += critique.completionTokens
            }
            if let refinement = attempt.refinement {
                wire.refinement = refinement.text
                attemptTokens += refinement.completionTokens
            }
            if let answer = attempt.refinementAnswer { wire.refinementAnswer = answer.canonical }
            if let score = attempt.refinementScore { wire.refinementScore = score }
            wire.completionTokens = UInt32(clamping: attemptTokens)
            tokens += attemptTokens
            switch attempt.outcome {
            case .rebalanced: counts.rebalanced += 1
            case let .filtered(failure): counts.critiqued += 1; counts.filtered[failure.rawValue, default: 0] += 1
            case .refinedRight: counts.critiqued += 1; counts.passedFilters += 1; counts.refinedRight += 1
            case .refinedWrong, .refinementGivenUp: counts.critiqued += 1; counts.passedFilters += 1
            case .critiqueGivenUp, .pending: break
            }
            return wire
        }
        let vote = SelfConsistency.vote(result.answers)
        if let majority = vote.majority { record.majority = majority.canonical }
        record.confidence = vote.confidence
        let kept = result.attempts.filter { $0.kept && $0.outcome != .rebalanced }
        record.accepted = !kept.isEmpty
        record.keptPaths = kept.map { UInt32($0.solution) }
        if let gold = result.question.gold {
            record.gold = gold.canonical
            record.majorityCorrect = vote.majority == gold
        }
        return GroupVerdict(record: record, answers: result.answers, vote: vote, gold: result.question.gold,
                            completionTokens: tokens, refine: counts)
    }
}

