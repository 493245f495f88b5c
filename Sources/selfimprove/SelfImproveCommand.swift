import ArgumentParser
import Benchmarks
import ProcessSupervision

/// The `selfimprove` command line.
@main
struct SelfImproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfimprove",
        abstract: "A Swift cluster that produces self-improvement data for language models.",
        subcommands: [Launch.self, Node.self, Smoke.self, Peer.self, Bench.self, Keys.self, Vote.self, Dataset.self, TrainSimulated.self, ZMQStallCheck.self, Report.self, Kubernetes.self, Slurm.self]
    )

    /// A closed standard error or output must fail a write (EPIPE), not kill the process.
    static func main() async {
        SafeFileWriter.ignoreBrokenPipes()
        await main(nil)
    }
}
