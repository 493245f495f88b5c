/// Which of a round's training examples a training job gets: the formats asked for, from
/// records voted inside the agreement band, each (prompt, completion) pair once, at most a
/// few per question; and how rounds' selections accumulate.
public struct TrainingDataSelection: Sendable, Hashable {
    /// One candidate example: a line of `sft.jsonl` joined with its record.
    public struct Example: Sendable, Hashable, Codable {
        public var id: String
        public var format: String
        public var prompt: String
        public var completion: String
        /// The record's vote confidence.
        public var confidence: Double
        /// Whether the record's majority is right (report only; nil without labels).
        public var majorityCorrect: Bool?

        public init(id: String, format: String, prompt: String, completion: String, confidence: Double, majorityCorrect: Bool?) {
            self.id = id
            self.format = format
            self.prompt = prompt
            self.completion = completion
            self.confidence = confidence
            self.majorityCorrect = majorityCorrect
        }

        enum CodingKeys: String, CodingKey {
            case id, format, prompt, completion, confidence
            case majorityCorrect = "majority_correct"
        }
    }

    /// Formats kept (`cot_fewshot`, ...); empty keeps every format.
    public var formats: Set<String>
    /// The agreement band: keep only examples of records voted at least `minConfidence` and at
    /// most `maxConfidence` confident. Unanimous questions teach the model nothing it does not
    /// already believe, near-ties are mostly noise (EMPO, SRT in iteration.md); a band lets
    /// harder questions in as the model gets better at them. Labels never enter it.
    public var minConfidence: Double
    public var maxConfidence: Double
    /// Drop repeated (prompt, completion) pairs (the same path kept by several votes, or the
    /// same example in an earlier round's data).
    public var deduplicate: Bool
    /// At most this many examples per question and format (nil: all). Distinct completions
    /// are taken before repeats of a text already taken.
    public var maxPerQuestion: Int?

    public init(formats: Set<String>, minConfidence: Double, maxConfidence: Double = 1, deduplicate: Bool, maxPerQuestion: Int? = nil) {
        self.formats = formats
        self.minConfidence = minConfidence
        self.maxConfidence = maxConfidence
        self.deduplicate = deduplicate
        self.maxPerQuestion = maxPerQuestion
    }

    /// Whether a question voted with `confidence` is inside the band.
    public func inBand(_ confidence: Double) -> Bool {
        confidence >= minConfidence && confidence <= maxConfidence
    }

    /// The selected examples in input order, and the share of them whose pseudo-label is right
    /// (nil when none is labelled).
    public func select(_ candidates: [Example]) -> (examples: [Example], pseudoLabelAccuracy: Double?) {
        var seen: Set<Pair> = []
        var banded: [Example] = []
        for example in candidates {
            guard formats.isEmpty || formats.contains(example.format), inBand(example.confidence) else { continue }
            if deduplicate, !seen.insert(Pair(prompt: example.prompt, completion: example.completion)).inserted { continue }
            banded.append(example)
        }
        let kept = maxPerQuestion.map { Self.capped(banded, perQuestion: $0) } ?? banded
        return (kept, Self.pseudoLabelAccuracy(kept))
    }

    /// The share of `examples` whose pseudo-label is right (nil when none is labelled): for
    /// reports only.
    public static func pseudoLabelAccuracy(_ examples: [Example]) -> Double? {
        let labelled = examples.compactMap(\.majorityCorrect)
        return labelled.isEmpty ? nil : Double(labelled.filter { $0 }.count) / Double(labelled.count)
    }

    /// At most `limit` examples per (question, format), distinct completions first; input order
    /// is kept among the survivors.
    static func capped(_ examples: [Example], perQuestion limit: Int) -> [Example] {
        var groups: [GroupKey: [Int]] = [:]
        for (index, example) in examples.enumerated() { groups[GroupKey(id: example.id, format: example.format), default: []].append(index) }
        var keep: Set<Int> = []
        for indices in groups.values {
            var texts: Set<String> = []
            let distinct = indices.filter { texts.insert(examples[$0].completion).inserted }
            let repeats = indices.filter { !distinct.contains($0) }
            keep.formUnion((distinct + repeats).prefix(max(0, limit)))
        }
        return examples.indices.filter { keep.contains($0) }.map { examples[$0] }
    }

    /// Accumulation across rounds (Gerstgrasser et al. in iteration.md: accumulating data keeps
    /// error bounded where replacing it lets error grow): every round's selected examples,
    /// where a question selected again in a later round has only its newest examples.
    /// - Parameter rounds: Each round's selected examples, oldest round first.
    public static func accumulate(_ rounds: [[Example]]) -> [Example] {
        var newestRound: [String: Int] = [:]
        for (round, examples) in rounds.enumerated() {
            for example in examples { newestRound[example.id] = round }
        }
        var result: [Example] = []
        for (round, examples) in rounds.enumerated() {
            result += examples.filter { newestRound[$0.id] == round }
        }
        return result
    }

    private struct Pair: Hashable {
        var prompt: String
        var completion: String
    }

    private struct GroupKey: Hashable {
        var id: String
        var format: String
    }
}
