/// The result of voting over one question's paths, as written to `records.jsonl`.
public struct VoteRecord: Sendable, Hashable, Codable {
    public struct Path: Sendable, Hashable, Codable {
        public var index: Int
        public var text: String
        /// The extracted, normalised answer; nil when the path states none.
        public var answer: String?
        /// The sampler that drew it (cluster runs).
        public var sampler: String?
        /// The model the path came from (file hash or server-reported id).
        public var modelVersion: String?
        /// The verifier tier's score in [0, 1], when scored.
        public var score: Double?
        public var completionTokens: Int?
        /// Every attempt at this index failed; `text` is empty.
        public var givenUp: Bool?

        public init(index: Int, text: String, answer: String?, sampler: String? = nil, modelVersion: String? = nil,
                    score: Double? = nil, completionTokens: Int? = nil, givenUp: Bool? = nil)
        {
            self.index = index
            self.text = text
            self.answer = answer
            self.sampler = sampler
            self.modelVersion = modelVersion
            self.score = score
            self.completionTokens = completionTokens
            self.givenUp = givenUp
        }

        enum CodingKeys: String, CodingKey {
            case index, text, answer, sampler, score
            case modelVersion = "model_version"
            case completionTokens = "completion_tokens"
            case givenUp = "given_up"
        }
    }

    /// SCORE: one path's critique and the refinement written from it.
    public struct Refinement: Sendable, Hashable, Codable {
        /// The critiqued path's index.
        public var path: Int
        /// From `Step 1:` to `[END]` (empty when every attempt at it failed).
        public var critique: String
        /// `refined_right`, `refined_wrong`, `filtered_<rule>`, `critique_given_up`,
        /// `refinement_given_up` or `rebalanced`.
        public var outcome: String
        public var refinement: String?
        public var refinementAnswer: String?
        public var refinementScore: Double?
        /// Training data: the critique passed the filters and the refinement was found right.
        public var kept: Bool
        public var sampler: String?
        public var modelVersion: String?
        public var completionTokens: Int?

        public init(path: Int, critique: String, outcome: String, refinement: String? = nil, refinementAnswer: String? = nil,
                    refinementScore: Double? = nil, kept: Bool, sampler: String? = nil, modelVersion: String? = nil, completionTokens: Int? = nil)
        {
            self.path = path
            self.critique = critique
            self.outcome = outcome
            self.refinement = refinement
            self.refinementAnswer = refinementAnswer
            self.refinementScore = refinementScore
            self.kept = kept
            self.sampler = sampler
            self.modelVersion = modelVersion
            self.completionTokens = completionTokens
        }

        enum CodingKeys: String, CodingKey {
            case path, critique, outcome, refinement, kept, sampler
            case refinementAnswer = "refinement_answer"
            case refinementScore = "refinement_score"
            case modelVersion = "model_version"
            case completionTokens = "completion_tokens"
        }
    }

    public var id: String
    public var question: String
    public var paths: [Path]
    public var majority: String?
    public var confidence: Double
    public var accepted: Bool
    /// Indices of the kept (majority) paths; empty when not accepted.
    public var keptPaths: [Int]
    public var gold: String?
    public var majorityCorrect: Bool?
    /// How the vote was taken (`majority` or `weighted`); nil for offline votes.
    public var vote: String?
    /// The method that made the record: `refine`, or nil for LMSI.
    public var method: String?
    /// refine: a verifier score at or above this labels a path right.
    public var rightAt: Double?
    /// refine: the right path the critiques were written beside.
    public var reference: Int?
    /// refine: the wrong paths' critiques and refinements, then the rebalanced right paths.
    public var refinements: [Refinement]?
    /// refine, verify_refine: the verifier node that labelled the paths.
    public var labelledBy: String?
    /// search: the tree.
    public var search: SearchTreeRecord?

    public init(id: String, question: String, paths: [Path], majority: String?, confidence: Double, accepted: Bool,
                keptPaths: [Int], gold: String?, majorityCorrect: Bool?, vote: String? = nil)
    {
        self.id = id
        self.question = question
        self.paths = paths
        self.majority = majority
        self.confidence = confidence
        self.accepted = accepted
        self.keptPaths = keptPaths
        self.gold = gold
        self.majorityCorrect = majorityCorrect
        self.vote = vote
    }

    enum CodingKeys: String, CodingKey {
        case id, question, paths, majority, confidence, accepted, gold, vote, method, reference, refinements, search
        case keptPaths = "kept_paths"
        case majorityCorrect = "majority_correct"
        case rightAt = "right_at"
        case labelledBy = "labelled_by"
    }

    /// Extracts answers, votes, and builds the record plus the training examples of every kept
    /// path (none when the vote is not accepted).
    public static func make(
        from input: VoteInput, kind: AnswerKind, threshold: Double?, prompts: PromptBuilder
    ) -> (record: VoteRecord, answers: [Answer?], vote: Vote, gold: Answer?, examples: [TrainingExample]) {
        let answers = input.paths.map { AnswerExtractor.extract(from: $0, as: kind) }
        let vote = SelfConsistency.vote(answers, threshold: threshold)
        let gold = input.gold.flatMap { Answer(parsing: $0, as: kind) }
        let kept = vote.accepted ? vote.majorityPaths : []
        var examples: [TrainingExample] = []
        if let majority = vote.majority {
            for index in kept {
                examples += MixedFormats.examples(question: input.question, path: input.paths[index], answer: majority.canonical, prompts: prompts)
            }
        }
        let record = VoteRecord(
            id: input.id, question: input.question,
            paths: input.paths.enumerated().map { Path(index: $0.offset, text: $0.element, answer: answers[$0.offset]?.canonical) },
            majority: vote.majority?.canonical, confidence: vote.confidence, accepted: vote.accepted, keptPaths: kept,
            gold: gold?.canonical, majorityCorrect: gold.map { $0 == vote.majority })
        return (record, answers, vote, gold, examples)
    }
}
