import Foundation
import ProcessSupervision
import TestFiles
import Testing

/// What the tests that run `selfimprove` as processes share.
enum RunTestSupport {
    /// The repository's root (configs and data sets are read from it).
    static let repository = TestFiles.repository

    /// The built `selfimprove`.
    static func executable() throws -> String {
        try #require(ChildProcess.siblingExecutable(named: "selfimprove"), "run `swift build` first")
    }

    /// A new empty folder under the temporary directory.
    static func temporaryFolder() throws -> URL { try TestFiles.temporaryFolder("selfimprove-run") }

    /// Runs a system tool (ip, tc, mount) with its output discarded; its exit status.
    @discardableResult
    static func tool(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
