import Foundation
import SelfImproveCore
import Testing

@Suite("Arithmetic generator and evaluation")
struct GeneratorAndEvaluationTests {
    @Test func theSameSeedGivesTheSameProblems() {
        var first = ArithmeticProblemGenerator(seed: 42)
        var second = ArithmeticProblemGenerator(seed: 42)
        var other = ArithmeticProblemGenerator(seed: 43)
        let a = (0 ..< 50).map { _ in first.next() }
        #expect(a == (0 ..< 50).map { _ in second.next() })
        #expect(a != (0 ..< 50).map { _ in other.next() })
    }

    /// Every reference step is true arithmetic with whole results, and the last one is the answer.
    @Test func referenceSolutionsAreRight() throws {
        var generator = ArithmeticProblemGenerator(seed: 7)
        let step = /(?<a>\d+) (?<op>[-+*\/]) (?<b>\d+) = (?<c>\d+)/
        for _ in 0 ..< 500 {
            let problem = generator.next()
            #expect((1 ... 4).contains(problem.steps))
            let matches = problem.reasoning.matches(of: step)
            #expect(matches.count == problem.steps)
            for match in matches {
                let a = try #require(Int(match.output.a)), b = try #require(Int(match.output.b)), c = try #require(Int(match.output.c))
                switch match.output.op {
                case "+": #expect(a + b == c)
                case "-": #expect(a - b == c && c >= 0)
                case "*": #expect(a * b == c)
                default: #expect(b != 0 && a % b == 0 && a / b == c)
                }
            }
            #expect(Int(matches.last?.output.c ?? "") == problem.answer)
            #expect(problem.gsm8kAnswer.hasSuffix("#### \(problem.answer)"))
            let line = String(decoding: try JSONEncoder().encode(["question": problem.question, "answer": problem.gsm8kAnswer]), as: UTF8.self)
            #expect(try DatasetFormat.gsm8k.decode(line, source: "g", lineNumber: 1)?.gold?.canonical == String(problem.answer))
        }
    }

    @Test func accuracyAndCalibration() {
        func number(_ text: String) -> Answer? { Answer(parsing: text, as: .number) }
        var report = EvaluationReport(buckets: 4)
        let cases: [([Answer?], Answer?)] = [
            (["5", "7", "7", "7"].map(number), number("7")),   // first wrong, majority right
            (["3", "3", "4", "4"].map(number), number("4")),   // first wrong, tie -> "3", wrong; pass@m right
            (["9", "9", "9", "9"].map(number), number("9")),   // all right
            (["1", nil, nil, nil].map { $0.flatMap(number) }, nil), // unlabelled
        ]
        for (answers, gold) in cases {
            report.add(answers: answers, vote: SelfConsistency.vote(answers), gold: gold)
        }
        #expect(report.questions == 4)
        #expect(report.labelled == 3)
        #expect(report.firstPathCorrect == 1)
        #expect(report.majorityCorrect == 2)
        #expect(report.anyPathCorrect == 3)
        // Confidences 0.75 and 1.0 fall in the top bucket [0.75, 1], 0.5 in [0.5, 0.75).
        #expect(report.calibration.map(\.questions) == [0, 0, 1, 2])
        #expect(report.calibration[2].accuracy == 0)
        #expect(report.calibration[3].accuracy == 1)
    }
}
