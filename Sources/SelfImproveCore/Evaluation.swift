/// Accuracy figures of a run where gold answers exist (LMSI's evaluation and its calibration
/// figure), as plain data.
public struct EvaluationReport: Sendable, Hashable, Codable {
    /// One confidence bucket: questions whose vote confidence fell in `[lower, upper)`.
    public struct CalibrationBucket: Sendable, Hashable, Codable {
        public var lower: Double
        public var upper: Double
        public var questions: Int
        public var majorityCorrect: Int
        public var accuracy: Double? { questions > 0 ? Double(majorityCorrect) / Double(questions) : nil }
    }

    public var questions = 0
    /// Questions with a gold answer (the denominators below).
    public var labelled = 0
    /// The first path's answer was right (greedy-like accuracy).
    public var firstPathCorrect = 0
    /// The majority answer was right (maj@m).
    public var majorityCorrect = 0
    /// Some path's answer was right (pass@m).
    public var anyPathCorrect = 0
    public var calibration: [CalibrationBucket]

    public var firstPathAccuracy: Double? { labelled > 0 ? Double(firstPathCorrect) / Double(labelled) : nil }
    public var majorityAccuracy: Double? { labelled > 0 ? Double(majorityCorrect) / Double(labelled) : nil }
    public var passAtM: Double? { labelled > 0 ? Double(anyPathCorrect) / Double(labelled) : nil }

    /// An empty report with `buckets` equal-width confidence buckets over [0, 1].
    public init(buckets: Int = 10) {
        let count = max(1, buckets)
        calibration = (0 ..< count).map { index in
            CalibrationBucket(lower: Double(index) / Double(count), upper: Double(index + 1) / Double(count), questions: 0, majorityCorrect: 0)
        }
    }

    /// Adds one question's outcome.
    /// - Parameters:
    ///   - answers: Each path's answer in path order (index 0 is the first path).
    ///   - vote: The vote over `answers`.
    ///   - gold: The gold answer, if labelled.
    public mutating func add(answers: [Answer?], vote: Vote, gold: Answer?) {
        questions += 1
        guard let gold else { return }
        labelled += 1
        if answers.first.flatMap({ $0 }) == gold { firstPathCorrect += 1 }
        let majorityRight = vote.majority == gold
        if majorityRight { majorityCorrect += 1 }
        if answers.contains(gold) { anyPathCorrect += 1 }
        let index = min(calibration.count - 1, max(0, Int(vote.confidence * Double(calibration.count))))
        calibration[index].questions += 1
        if majorityRight { calibration[index].majorityCorrect += 1 }
    }
}
