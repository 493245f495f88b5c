import Backends
import Foundation
import SelfImproveCore
import TestFiles
import Testing

/// The trainable simulated model: its file round trip, and training that follows the data.
@Suite("Synthetic model")
struct SyntheticModelTests {
    /// A few-shot prompt for a generated question, and a completion stating `answer`.
    static func example(_ problem: ArithmeticProblemGenerator.Problem, answer: Int) -> (prompt: String, completion: String) {
        ("Q: 1 + 1?\nA: 1 + 1 = 2. The answer is 2.\n\nQ: \(problem.question)\nA:", " \(problem.reasoning) The answer is \(answer).")
    }

    @Test func trainingFollowsTheShareOfRightData() {
        var generator = ArithmeticProblemGenerator(seed: 3)
        let problems = (0 ..< 20).map { _ in generator.next() }
        let base = SyntheticModel(stepErrorRate: 0.2)
        let right = problems.map { Self.example($0, answer: $0.answer) }
        let wrong = problems.map { Self.example($0, answer: $0.answer + 1) }
        let better = base.trained(on: right, gain: 0.5, round: 1)
        #expect(better.stepErrorRate == 0.2 * 0.5)
        #expect(better.rightShare == 1 && better.examples == 20 && better.round == 1)
        #expect(base.trained(on: wrong, gain: 0.5, round: 1).stepErrorRate == 0.2 * 1.5)
        let half = Array(right.prefix(10) + wrong.prefix(10))
        #expect(base.trained(on: half, gain: 0.5, round: 1).stepErrorRate == 0.2)
        // A negative gain makes even right data hurt.
        #expect(base.trained(on: right, gain: -1, round: 1).stepErrorRate == 0.4)
        // Unreadable examples change nothing.
        #expect(base.trained(on: [("no question here", "The answer is 3.")], gain: 0.5, round: 1).stepErrorRate == 0.2)
    }

    @Test func fileRoundTripAndBadFiles() throws {
        let folder = try TestFiles.temporaryFolder("synthetic-model")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("model.json").path
        var model = SyntheticModel(stepErrorRate: 0.125)
        model.round = 2
        try model.write(to: path)
        #expect(try SyntheticModel.read(path: path) == model)
        try Data(#"{"format": "other", "step_error_rate": 0.1}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: BackendError("\(path): format is 'other', expected 'selfimprove-synthetic-model/1'")) { try SyntheticModel.read(path: path) }
        try Data(#"{"format": "selfimprove-synthetic-model/1", "step_error_rate": 3}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: BackendError("\(path): step_error_rate must be between 0 and 1, got 3.0")) { try SyntheticModel.read(path: path) }
        #expect(throws: BackendError("cannot read the synthetic model file \(folder.path)/none.json")) {
            try SyntheticModel.read(path: folder.appendingPathComponent("none.json").path)
        }
    }

    @Test func aModelFileSetsTheSimulatorsErrorRateAndVersion() async throws {
        // A lower error rate gives right answers more often on the same prompts and seeds.
        var generator = ArithmeticProblemGenerator(seed: 11)
        let problems = (0 ..< 40).map { _ in generator.next() }
        func accuracy(_ rate: Double) async throws -> Int {
            var configuration = SyntheticBackend.Configuration()
            configuration.stepErrorRate = rate
            let backend = SyntheticBackend(configuration: configuration)
            var right = 0
            for problem in problems {
                let response = try await backend.sample(SamplingRequest(prompt: "Q: \(problem.question)\nA:", n: 4, temperature: 0.7, maxTokens: 256, stop: []))
                right += response.paths.filter { AnswerExtractor.extract(from: $0.text, as: .number) == Answer(parsing: String(problem.answer), as: .number) }.count
            }
            return right
        }
        let low = try await accuracy(0.05), high = try await accuracy(0.4)
        #expect(low > high)
    }
}
