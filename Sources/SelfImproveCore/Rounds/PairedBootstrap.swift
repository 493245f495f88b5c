/// A paired bootstrap over questions: the difference of a per-question quantity between two
/// models evaluated on the same questions, resampled by question, so that the questions' own
/// difficulty cancels out. Seeded, so the same inputs always give the same interval.
public enum PairedBootstrap {
    /// The mean difference `candidate - baseline` and its percentile 95% interval.
    /// - Parameters:
    ///   - baseline: Per-question values of the current model.
    ///   - candidate: The same questions' values of the candidate, in the same order.
    ///   - resamples: Bootstrap resamples (at least 1).
    ///   - seed: Seeds the resampling.
    /// - Returns: nil when the two lists differ in length or are empty.
    public static func difference(baseline: [Double], candidate: [Double], resamples: Int = 2000, seed: UInt64 = 2026) -> Estimate? {
        guard baseline.count == candidate.count, !baseline.isEmpty else { return nil }
        let differences = zip(candidate, baseline).map { $0 - $1 }
        let n = differences.count
        let mean = differences.reduce(0, +) / Double(n)
        var random = SplitMix64(seed: seed)
        var means: [Double] = []
        means.reserveCapacity(max(1, resamples))
        for _ in 0 ..< max(1, resamples) {
            var sum = 0.0
            for _ in 0 ..< n { sum += differences[Int(random.next(upTo: UInt64(n)))] }
            means.append(sum / Double(n))
        }
        means.sort()
        let lowerIndex = Int((Double(means.count) * 0.025).rounded(.down))
        let upperIndex = min(means.count - 1, Int((Double(means.count) * 0.975).rounded(.up)) - 1)
        return Estimate(mean: mean, lower: means[lowerIndex], upper: means[max(lowerIndex, upperIndex)])
    }
}
