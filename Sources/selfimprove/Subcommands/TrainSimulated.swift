import ArgumentParser
import Backends
import Foundation
import ProcessSupervision

/// `selfimprove train-simulated`: the rounds' simulated training engine (`engine.kind:
/// simulated`). It "trains" a ``SyntheticModel`` file on a round's data the way the engine
/// contract says any trainer does (data, base model and output folder in; a model in the
/// output folder out; progress lines on standard output), in seconds, so that rounds, retries
/// and kills can be tested without a real model.
struct TrainSimulated: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-simulated",
        abstract: "Simulated training engine for rounds tests (writes a synthetic model file).",
        shouldDisplay: false
    )

    @Option(help: "The round's training data (JSONL with prompt and completion).")
    var data: String
    @Option(help: "The current model (a synthetic model file).")
    var base: String
    @Option(help: "The folder to write model.json into.")
    var output: String
    @Option var round: Int = 1
    @Option var attempt: Int = 1
    @Option(help: "How strongly the data moves the error rate (negative: training hurts).")
    var gain: Double = 0.6
    @Option(help: "Attempts 1...N of every round fail.")
    var failAttempts: Int = 0
    @Option(help: "Seconds the job takes (progress lines meanwhile).")
    var duration: Double = 0

    func run() async throws {
        let baseModel = try SyntheticModel.read(path: base)
        guard let text = try? String(contentsOfFile: data, encoding: .utf8) else { throw ValidationError("cannot read \(data)") }
        var examples: [(prompt: String, completion: String)] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let prompt = object["prompt"] as? String, let completion = object["completion"] as? String
            else { throw ValidationError("\(data):\(number + 1): not a prompt/completion line") }
            examples.append((prompt, completion))
        }
        let steps = 10
        for step in 1 ... steps {
            if duration > 0 { try await Task.sleep(for: .milliseconds(Int(duration * 1000) / steps)) }
            if attempt <= failAttempts, step == steps / 2 {
                SafeFileWriter.standardError.write(Data("simulated failure of attempt \(attempt) (fail_attempts \(failAttempts))\n".utf8))
                throw ExitCode(3)
            }
            let remaining = Double(steps - step) * duration / Double(steps)
            emit(#"{"event": "progress", "step": \#(step), "steps": \#(steps), "loss": \#(1.0 / Double(step)), "tokens_per_s": 1000, "eta_s": \#(remaining)}"#)
        }
        let trained = baseModel.trained(on: examples, gain: gain, round: round)
        try trained.write(to: URL(fileURLWithPath: output).appendingPathComponent("model.json").path)
        emit(#"{"event": "done", "examples": \#(examples.count), "step_error_rate": \#(trained.stepErrorRate)}"#)
    }

    /// One progress line on standard output, unbuffered (the driver logs it as it comes).
    private func emit(_ line: String) {
        SafeFileWriter.standardOutput.write(Data((line + "\n").utf8))
    }
}
