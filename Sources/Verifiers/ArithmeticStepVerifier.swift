import Foundation
import SelfImproveCore

/// Re-computes every `a op b = c` in a path (`+`, `-`, `*`, `/`, `×`, `÷`, `x`; thousands
/// commas and decimals allowed) and scores the share that is right. A path without any such
/// step gets ``scoreWithoutSteps`` (nothing to check is neither right nor wrong).
public struct ArithmeticStepVerifier: PathVerifier {
    public let name = "arithmetic_steps"
    public var scoreWithoutSteps: Double

    public init(scoreWithoutSteps: Double = 0.5) {
        self.scoreWithoutSteps = scoreWithoutSteps
    }

    /// One checked step.
    public struct Step: Sendable, Hashable {
        public var text: String
        public var isRight: Bool
    }

    public func score(_ path: String, for question: Question) async throws -> Double {
        let steps = Self.check(path)
        guard !steps.isEmpty else { return scoreWithoutSteps }
        return Double(steps.filter(\.isRight).count) / Double(steps.count)
    }

    /// Every arithmetic step of `path`, checked.
    public static func check(_ path: String) -> [Step] {
        let number = #"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?"#
        let pattern = try? NSRegularExpression(pattern: "(\(number))\\s*([-+*/×÷x])\\s*(\(number))\\s*=\\s*(\(number))")
        guard let pattern else { return [] }
        let text = path as NSString
        var steps: [Step] = []
        for match in pattern.matches(in: path, range: NSRange(location: 0, length: text.length)).prefix(1000) {
            func value(_ group: Int) -> Double? {
                Double(text.substring(with: match.range(at: group)).replacingOccurrences(of: ",", with: ""))
            }
            guard let a = value(1), let b = value(3), let c = value(4) else { continue }
            let expected: Double?
            switch text.substring(with: match.range(at: 2)) {
            case "+": expected = a + b
            case "-": expected = a - b
            case "*", "×", "x": expected = a * b
            default: expected = b == 0 ? nil : a / b
            }
            let isRight = expected.map { abs($0 - c) <= 1e-6 * max(1, abs($0)) } ?? false
            steps.append(Step(text: text.substring(with: match.range), isRight: isRight))
        }
        return steps
    }
}
