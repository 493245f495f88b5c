import ArgumentParser

/// `selfimprove bench`: benchmarks that print JSON for comparison across commits.
public struct Bench: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Run benchmarks.",
        subcommands: [BenchActors.self, BenchPipeline.self, BenchBackend.self, BenchRounds.self, BenchRefine.self, BenchSearch.self]
    )

    public init() {}
}
