/// What a round's imagination phase did, stage by stage (LMSI §5.2's generated questions;
/// AlphaLLM's "imagination"): prompts sent, continuations written, questions parsed from them,
/// duplicates dropped (of questions seen so far, of held-out questions, within the batch),
/// questions added to the round's sampling, and how many of those were answered, accepted by
/// the vote and kept in the training data.
public struct ImaginationReport: Sendable, Hashable, Codable {
    public var prompts: Int = 0
    /// Continuations the model wrote.
    public var written: Int = 0
    /// Questions parsed from them.
    public var parsed: Int = 0
    /// Exact or near duplicates of a held-out (evaluation) question.
    public var heldOutDuplicates: Int = 0
    /// Exact or near duplicates of a question seen before (the pool, earlier rounds' imagined
    /// questions, this batch).
    public var duplicates: Int = 0
    /// New questions added to the round's sampling.
    public var added: Int = 0
    /// Of those: answered with m paths, accepted by the vote, kept in the training data.
    public var answered: Int = 0
    public var accepted: Int = 0
    public var kept: Int = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case prompts, written, parsed, duplicates, added, answered, accepted, kept
        case heldOutDuplicates = "held_out_duplicates"
    }
}

/// How a round's training data was chosen: the vote confidence of the questions sampled (ten
/// bins over [0, 1]), how many fell inside the agreement band, and what was trained on after
/// accumulation and the per-question cap. Gold labels never enter it.
public struct SelectionReport: Sendable, Hashable, Codable {
    /// Questions sampled this round per confidence bin (0-0.1, ..., 0.9-1.0).
    public var confidenceHistogram: [Int]
    /// The band (min, max confidence).
    public var band: [Double]
    /// Questions sampled this round inside the band (with an accepted vote).
    public var questionsInBand: Int
    /// Examples selected from this round's sampling.
    public var examplesThisRound: Int
    /// Questions and examples trained on (this round's and, with accumulation, earlier ones').
    public var questionsTrained: Int
    public var examplesTrained: Int

    public init(confidenceHistogram: [Int], band: [Double], questionsInBand: Int, examplesThisRound: Int, questionsTrained: Int, examplesTrained: Int) {
        self.confidenceHistogram = confidenceHistogram
        self.band = band
        self.questionsInBand = questionsInBand
        self.examplesThisRound = examplesThisRound
        self.questionsTrained = questionsTrained
        self.examplesTrained = examplesTrained
    }

    enum CodingKeys: String, CodingKey {
        case band
        case confidenceHistogram = "confidence_histogram"
        case questionsInBand = "questions_in_band"
        case examplesThisRound = "examples_this_round"
        case questionsTrained = "questions_trained"
        case examplesTrained = "examples_trained"
    }
}
