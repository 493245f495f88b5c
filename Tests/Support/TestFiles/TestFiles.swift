import Foundation

/// The files tests share: the repository's root (configs, data sets, scripts) and fresh
/// temporary folders.
public enum TestFiles {
    /// The repository's root.
    public static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `cluster/` in the repository: the configs, data sets and scripts.
    public static var cluster: URL { repository.appendingPathComponent("cluster") }

    /// A new empty folder under the temporary directory, named `prefix` and a UUID; the test
    /// removes it.
    public static func temporaryFolder(_ prefix: String = "selfimprove-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
