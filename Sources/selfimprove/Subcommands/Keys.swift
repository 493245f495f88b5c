import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Foundation
import ZeroMQ

/// `selfimprove keys`: CURVE key management.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage CURVE key pairs.",
        subcommands: [Generate.self]
    )

    /// `selfimprove keys generate`: a cluster's key files (`--config`), or one pair (`--name`).
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write CURVE key pairs (Z85): NAME.key (secret, mode 0600) and NAME.pub.",
            discussion: "With --config, writes the pairs a cluster with security.curve needs into its security.keys folder: cluster.key/.pub and one pair per node, keeping any that exist.")

        @Option(help: "A cluster config: write every missing pair of its nodes into its security.keys folder.")
        var config: String?

        @OptionGroup var configOptions: ConfigOptions

        @Option(help: "Folder to write to (with --name).")
        var out = "keys"

        @Option(help: "Base name of the files (one pair).")
        var name: String?

        func validate() throws {
            guard (config == nil) != (name == nil) else { throw ValidationError("give either --config or --name") }
            if let name, name.isEmpty || name.contains("/") { throw ValidationError("--name must be a plain file name") }
        }

        func run() async throws {
            if let config {
                let cluster = try configOptions.load(config)
                let written = try ClusterKeys.generateMissing(for: cluster)
                print(written.isEmpty ? "every key pair exists in \(cluster.security.keys.path)"
                    : "wrote \(written.map { "\($0).key/.pub" }.joined(separator: ", ")) in \(cluster.security.keys.path)")
                return
            }
            guard let name else { return }
            do {
                try ClusterKeys.write(try ZMQCurveKeyPair.generate(), name: name, folder: URL(fileURLWithPath: out))
            } catch let error as ClusterKeys.KeyError {
                throw ValidationError(error.description)
            }
            print("wrote \(out)/\(name).key (secret, 0600) and \(out)/\(name).pub")
        }
    }
}
