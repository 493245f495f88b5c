import ClusterNodes
import ArgumentParser
import CommandLineSupport
import Foundation
import SelfImproveCore

/// `selfimprove dataset`: data set tools.
struct Dataset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Data set tools.",
        subcommands: [Generate.self]
    )

    /// `selfimprove dataset generate`: the project's seeded arithmetic word problems, GSM8K JSONL.
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write seeded arithmetic word problems (1-4 steps) as GSM8K-format JSONL."
        )

        @Option(help: "Number of problems.")
        var count: Int

        @Option(help: "Random seed; the same seed gives the same file.")
        var seed: UInt64 = 1

        @Option(help: "Steps per problem (1-4); random when not given.")
        var steps: Int?

        @Option(help: "Output file.")
        var out: String

        func validate() throws {
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
            if let steps, !(1 ... 4).contains(steps) { throw ValidationError("--steps must be 1, 2, 3 or 4") }
        }

        func run() async throws {
            var generator = ArithmeticProblemGenerator(seed: seed)
            let writer = try JSONLinesWriter(path: out)
            for index in 0 ..< count {
                let problem = generator.next(steps: steps)
                try writer.write(GSM8KLine(id: "arith-\(seed)-\(index)", question: problem.question, answer: problem.gsm8kAnswer, steps: problem.steps))
            }
            try writer.close()
        }
    }
}
