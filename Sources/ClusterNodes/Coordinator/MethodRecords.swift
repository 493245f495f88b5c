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

/// SCORE at inference, counted over questions: answers refined, and with gold labels, right
/// before and after and the flips each way.
struct VerifyRefineCounts: Sendable, Hashable {
    var questions = 0
    var refined = 0
    var labelled = 0
    var rightBefore = 0
    var rightAfter = 0
    var rightToWrong = 0
    var wrongToRight = 0

    static func += (lhs: inout VerifyRefineCounts, rhs: VerifyRefineCounts) {
        lhs.questions += rhs.questions
        lhs.refined += rhs.refined
        lhs.labelled += rhs.labelled
        lhs.rightBefore += rhs.rightBefore
        lhs.rightAfter += rhs.rightAfter
        lhs.rightToWrong += rhs.rightToWrong
        lhs.wrongToRight += rhs.wrongToRight
    }
}

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

    /// LMSI: every path with its answer, score and origin; the vote; the kept paths.
    static func verdict(for result: SelfConsistencyResult, vote rule: String) -> GroupVerdict {
        var record = Selfimprove_V1_TrainingRecord()
        record.questionID = result.question.id
        record.question = result.question.text
        record.vote = rule
        let (paths, tokens) = recordPaths(result.paths, answers: result.answers, scores: result.scores)
        record.paths = paths
        let vote = result.vote
        if let majority = vote.majority { record.majority = majority.canonical }
        record.confidence = vote.confidence
        record.accepted = result.accepted
        record.keptPaths = record.accepted ? result.kept.map { UInt32($0) } : []
        if let gold = result.question.gold {
            record.gold = gold.canonical
            record.majorityCorrect = vote.majority == gold
        }
        return GroupVerdict(record: record, answers: result.answers, vote: vote, gold: result.question.gold, completionTokens: tokens,
                            namesLabeller: false, rejectedByVote: !record.accepted)
    }
}

extension MethodRecords {
    /// The record's paths (each with its answer, score and origin, or marked given up) and
    /// their completion tokens.
    static func recordPaths(_ paths: [MethodPath?], answers: [Answer?], scores: [Double]?) -> ([Selfimprove_V1_RecordPath], Int) {
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

extension MethodRecords {
    /// SCORE at inference: the answer (its score is 1 − P(incorrect)) as the only path, and
    /// its critique and refinement, when it was refined, as the only attempt (outcome `refined`;
    /// its `refinement_answer` is the final answer when it states one, else the path's is).
    /// No training data: `accepted` is false.
    static func verdict(for result: VerifyRefineResult) -> GroupVerdict {
        var record = Selfimprove_V1_TrainingRecord()
        record.method = MethodName.verifyRefine.recordName
        record.questionID = result.question.id
        record.question = result.question.text
        let before = result.answerBefore, after = result.answerAfter
        let (paths, solutionTokens) = recordPaths([result.solution], answers: [before], scores: result.score.map { [$0] })
        record.paths = paths
        var tokens = solutionTokens
        if result.critique != nil || result.refinement != nil {
            var wire = Selfimprove_V1_RefineAttempt()
            wire.pathIndex = 0
            wire.critique = result.critiqueText ?? ""
            wire.outcome = result.refined ? "refined" : "refinement_given_up"
            if let critique = result.critique {
                wire.sampler = critique.sampler
                wire.modelVersion = critique.modelVersion
            }
            let attemptTokens = (result.critique?.completionTokens ?? 0) + (result.refinement?.completionTokens ?? 0)
            wire.completionTokens = UInt32(clamping: attemptTokens)
            tokens += attemptTokens
            if let refinement = result.refinement {
                wire.refinement = refinement.text
                if let answer = AnswerExtractor.extract(from: refinement.text, as: result.question.kind) { wire.refinementAnswer = answer.canonical }
            }
            record.refinements = [wire]
        }
        if let after { record.majority = after.canonical }
        record.confidence = 1
        var counts = VerifyRefineCounts()
        counts.questions = 1
        counts.refined = result.refined ? 1 : 0
        if let gold = result.question.gold {
            record.gold = gold.canonical
            record.majorityCorrect = after == gold
            counts.labelled = 1
            let rightBefore = before == gold, rightAfter = after == gold
            counts.rightBefore = rightBefore ? 1 : 0
            counts.rightAfter = rightAfter ? 1 : 0
            counts.rightToWrong = rightBefore && !rightAfter ? 1 : 0
            counts.wrongToRight = !rightBefore && rightAfter ? 1 : 0
        }
        let vote = SelfConsistency.vote([after])
        return GroupVerdict(record: record, answers: [before], vote: vote, gold: result.question.gold, completionTokens: tokens,
                            verifyRefine: counts)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
