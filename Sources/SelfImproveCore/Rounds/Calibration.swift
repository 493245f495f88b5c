/// How well vote confidence predicts whether the majority is right, and how confidence is
/// spread over a set of questions. Label-free self-training sharpens confidence faster than it
/// improves accuracy (iteration.md): a rising calibration error is that gap, measured.
public enum Calibration {
    /// The expected calibration error over equal-width confidence bins:
    /// Σ_b (|b| / N) · |accuracy(b) − mean confidence(b)|. Nil for no pairs.
    /// - Parameters:
    ///   - pairs: (confidence in [0, 1], whether the majority is right), one per labelled question.
    ///   - bins: Bins over [0, 1]; a confidence of exactly 1 falls in the last.
    public static func expectedError(_ pairs: [(confidence: Double, correct: Bool)], bins: Int = 10) -> Double? {
        guard !pairs.isEmpty, bins >= 1 else { return nil }
        var count = [Int](repeating: 0, count: bins)
        var right = [Int](repeating: 0, count: bins)
        var confidence = [Double](repeating: 0, count: bins)
        for pair in pairs {
            let bin = Self.bin(of: pair.confidence, bins: bins)
            count[bin] += 1
            confidence[bin] += pair.confidence
            if pair.correct { right[bin] += 1 }
        }
        var error = 0.0
        for bin in 0 ..< bins where count[bin] > 0 {
            let n = Double(count[bin])
            error += n / Double(pairs.count) * abs(Double(right[bin]) / n - confidence[bin] / n)
        }
        return error
    }

    /// Questions per equal-width confidence bin over [0, 1] (a confidence of 1 in the last).
    public static func histogram(_ confidences: [Double], bins: Int = 10) -> [Int] {
        var counts = [Int](repeating: 0, count: max(1, bins))
        for value in confidences { counts[bin(of: value, bins: counts.count)] += 1 }
        return counts
    }

    static func bin(of confidence: Double, bins: Int) -> Int {
        min(bins - 1, max(0, Int((confidence * Double(bins)).rounded(.down))))
    }
}
