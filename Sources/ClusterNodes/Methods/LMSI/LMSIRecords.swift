import SelfImproveCore
import Wire

extension MethodRecords {
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

