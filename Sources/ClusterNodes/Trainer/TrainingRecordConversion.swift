import SelfImproveCore
import Wire

extension SinkRecord {
    /// The trainer's view of a streamed record: the stored record plus the LMSI training
    /// examples of its kept paths, in the chosen formats.
    /// - Parameters:
    ///   - wire: The record as the coordinator sent it.
    ///   - prompts: The exemplars the paths were sampled with.
    ///   - formats: Which of the four mixed formats to write.
    init(wire: Selfimprove_V1_TrainingRecord, prompts: PromptBuilder, formats: [TrainingExample.Format]) {
        let paths = wire.paths.map { path in
            VoteRecord.Path(
                index: Int(path.index), text: path.text, answer: path.hasAnswer ? path.answer : nil,
                sampler: path.sampler.isEmpty ? nil : path.sampler,
                modelVersion: path.modelVersion.isEmpty ? nil : path.modelVersion,
                score: path.hasScore ? path.score : nil,
                completionTokens: path.givenUp ? nil : Int(path.completionTokens),
                givenUp: path.givenUp ? true : nil)
        }
        let record = VoteRecord(
            id: wire.questionID, question: wire.question, paths: paths,
            majority: wire.hasMajority ? wire.majority : nil, confidence: wire.confidence, accepted: wire.accepted,
            keptPaths: wire.keptPaths.map { Int($0) }, gold: wire.hasGold ? wire.gold : nil,
            majorityCorrect: wire.hasMajorityCorrect ? wire.majorityCorrect : nil, vote: wire.vote.isEmpty ? nil : wire.vote)
        var examples: [TrainingExample] = []
        if wire.accepted, wire.hasMajority, !formats.isEmpty {
            for index in record.keptPaths where paths.indices.contains(index) {
                examples += MixedFormats.examples(question: wire.question, path: paths[index].text, answer: wire.majority, prompts: prompts)
                    .filter { formats.contains($0.format) }
            }
        }
        self.init(sequence: wire.sequence, record: record, examples: examples)
    }
}
