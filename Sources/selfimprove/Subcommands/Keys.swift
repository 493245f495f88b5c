import ArgumentParser
import Foundation
import ZeroMQ

/// `selfimprove keys`: CURVE key management.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage CURVE key pairs.",
        subcommands: [Generate.self]
    )

    /// `selfimprove keys generate`: writes NAME.key (secret, mode 0600) and NAME.pub in Z85.
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a new CURVE key pair (Z85) to NAME.key and NAME.pub.")

        @Option(help: "Folder to write to.")
        var out = "keys"

        @Option(help: "Base name of the files.")
        var name: String

        func validate() throws {
            guard !name.isEmpty, !name.contains("/") else { throw ValidationError("--name must be a plain file name") }
        }

        func run() async throws {
            let pair = try ZMQCurveKeyPair.generate()
            let folder = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let secret = folder.appendingPathComponent("\(name).key")
            let `public` = folder.appendingPathComponent("\(name).pub")
            guard !FileManager.default.fileExists(atPath: secret.path) else {
                throw ValidationError("\(secret.path) exists; refusing to overwrite a secret key")
            }
            guard FileManager.default.createFile(atPath: secret.path, contents: Data((pair.secretKey + "\n").utf8),
                                                 attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("could not write \(secret.path)")
            }
            try Data((pair.publicKey + "\n").utf8).write(to: `public`)
            print("wrote \(secret.path) (secret, 0600) and \(`public`.path)")
        }
    }
}
