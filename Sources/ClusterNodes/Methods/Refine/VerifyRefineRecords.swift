import SelfImproveCore
import Wire

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

