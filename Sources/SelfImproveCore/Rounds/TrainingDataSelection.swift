/// Which of a round's training examples a training job gets: the formats asked for, from
/// records voted with enough confidence, each (prompt, completion) pair once.
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
    /// Keep only examples of records voted at least this confident.
    public var minConfidence: Double
    /// Drop repeated (prompt, completion) pairs (the same path kept by several votes, or the
    /// same example in an earlier round's data).
    public var deduplicate: Bool

    public init(formats: Set<String>, minConfidence: Double, deduplicate: Bool) {
        self.formats = formats
        self.minConfidence = minConfidence
        self.deduplicate = deduplicate
    }

    /// The selected examples in input order, and the share of them whose pseudo-label is right
    /// (nil when none is labelled).
    public func select(_ candidates: [Example]) -> (examples: [Example], pseudoLabelAccuracy: Double?) {
        var seen: Set<Pair> = []
        var kept: [Example] = []
        for example in candidates {
            guard formats.isEmpty || formats.contains(example.format), example.confidence >= minConfidence else { continue }
            if deduplicate, !seen.insert(Pair(prompt: example.prompt, completion: example.completion)).inserted { continue }
            kept.append(example)
        }
        let labelled = kept.compactMap(\.majorityCorrect)
        let accuracy = labelled.isEmpty ? nil : Double(labelled.filter { $0 }.count) / Double(labelled.count)
        return (kept, accuracy)
    }

    private struct Pair: Hashable {
        var prompt: String
        var completion: String
    }
}
