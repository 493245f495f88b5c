/// pass@k from n ≥ k samples of which c are right, without the bias of drawing k once: the
/// probability that k of the n samples, drawn without replacement, include a right one,
/// 1 − C(n−c, k) / C(n, k) (Chen et al., 2021, the Codex paper's estimator).
///
/// Computed as 1 − ∏_{i=n−c+1}^{n} (1 − k/i), which never forms a binomial coefficient.
public enum PassAtK {
    /// The estimate for one question, or nil when fewer than k samples were drawn.
    public static func unbiased(n: Int, correct: Int, k: Int) -> Double? {
        guard k >= 1, n >= k, (0 ... n).contains(correct) else { return nil }
        if correct == 0 { return 0 }
        if n - correct < k { return 1 }
        var allWrong = 1.0
        for i in (n - correct + 1) ... n {
            allWrong *= 1 - Double(k) / Double(i)
        }
        return 1 - allWrong
    }
}
