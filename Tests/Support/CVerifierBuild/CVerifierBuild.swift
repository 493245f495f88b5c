import Foundation
import TestFiles
import Synchronization

/// The C verifier node (`peers/c-verifier`) built for tests with its own Makefile, once per test
/// process: with AddressSanitizer and UndefinedBehaviorSanitizer (`make SANITIZE=1`, into
/// `.build/c-verifier-asan`) or plain (`make`, into `.build/c-verifier`, where cluster/setup
/// puts it and `cluster/c-verifier.yaml` looks for it). `make` rebuilds only what changed.
public enum CVerifierBuild {
    /// The repository's root.
    public static let repository = TestFiles.repository

    /// The built programs.
    public struct Binaries: Sendable {
        /// `selfimprove-c-verifier`, the node.
        public var node: URL
        /// `wire-probe`: answers one envelope read from standard input.
        public var probe: URL
    }

    /// Why the build failed (the compiler's or make's output).
    public struct BuildError: Error, CustomStringConvertible {
        public var description: String
    }

    private static let built = Mutex<[Bool: Binaries]>([:])

    /// Builds (or finds up to date) the node and the probe.
    /// - Parameter sanitized: With ASan and UBSan (tests of hostile input), or plain.
    public static func build(sanitized: Bool = true) throws -> Binaries {
        try built.withLock { built in
            if let binaries = built[sanitized] { return binaries }
            let folder = repository.appendingPathComponent(sanitized ? ".build/c-verifier-asan" : ".build/c-verifier")
            var arguments = ["make", "-s", "-C", repository.appendingPathComponent("peers/c-verifier").path, "BUILD=\(folder.path)"]
            if sanitized { arguments.append("SANITIZE=1") }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw BuildError(description: "`\(arguments.joined(separator: " "))` failed (cluster/setup installs make, libzmq3-dev and libprotobuf-c-dev): \(text)")
            }
            let binaries = Binaries(node: folder.appendingPathComponent("selfimprove-c-verifier"), probe: folder.appendingPathComponent("wire-probe"))
            built[sanitized] = binaries
            return binaries
        }
    }
}
