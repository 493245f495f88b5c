/// Chooses verify-then-refine's threshold on a dev split, as SCORE does: with every answer's
/// P(incorrect) and whether it was right before and after refinement (a dev run refines every
/// answer it can, threshold 0), the threshold that maximises accuracy when only answers above
/// it take their refinement. Ties go to the highest threshold (fewest refinements).
public enum ThresholdTuning {
    /// One dev question.
    public struct Point: Sendable, Hashable {
        public var probabilityIncorrect: Double
        public var rightBefore: Bool
        /// Right after refinement (equal to `rightBefore` when it was not refined).
        public var rightAfter: Bool

        public init(probabilityIncorrect: Double, rightBefore: Bool, rightAfter: Bool) {
            self.probabilityIncorrect = probabilityIncorrect
            self.rightBefore = rightBefore
            self.rightAfter = rightAfter
        }
    }

    /// Accuracy when answers with P(incorrect) above `threshold` take their refinement.
    public static func accuracy(_ points: [Point], threshold: Double) -> Double {
        guard !points.isEmpty else { return 0 }
        let right = points.filter { $0.probabilityIncorrect > threshold ? $0.rightAfter : $0.rightBefore }.count
        return Double(right) / Double(points.count)
    }

    /// The best threshold among 0, 1 and every P(incorrect) seen, with its dev accuracy.
    public static func best(_ points: [Point]) -> (threshold: Double, accuracy: Double) {
        let candidates = Set([0, 1] + points.map(\.probabilityIncorrect)).sorted(by: >)
        var best = (threshold: 1.0, accuracy: accuracy(points, threshold: 1))
        for threshold in candidates {
            let value = accuracy(points, threshold: threshold)
            if value > best.accuracy { best = (threshold, value) }
        }
        return best
    }
}
