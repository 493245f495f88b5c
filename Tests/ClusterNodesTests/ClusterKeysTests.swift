import ClusterNodes
import Foundation
import TestFiles
import Testing

/// Secret keys are created owner-only and a secret others can read is refused.
@Suite("Cluster keys")
struct ClusterKeysTests {
    static let synthetic = ClusterConfigTests.clusterFolder.appendingPathComponent("synthetic.yaml").path

    private func config(keys: URL) throws -> ClusterConfig {
        try ClusterConfig.load(file: Self.synthetic, overrides: ["security.curve=true", "security.keys=\(keys.path)"])
    }

    @Test func secretsAreWrittenOwnerOnlyAndNeverOverwritten() throws {
        let folder = try TestFiles.temporaryFolder("keys")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cluster = try config(keys: folder)
        let written = try ClusterKeys.generateMissing(for: cluster)
        #expect(written.first == ClusterKeys.serverName && written.count == cluster.nodes.count + 1)
        for name in written {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("\(name).key").path)[.posixPermissions] as? Int)
            #expect(mode == 0o600, "\(name).key has mode \(String(mode, radix: 8))")
        }
        #expect(try ClusterKeys.generateMissing(for: cluster).isEmpty)
        let name = try #require(cluster.nodes.first?.address.name)
        #expect(try ClusterKeys.security(for: name, config: cluster) != nil)
    }

    @Test func aSecretReadableByOthersIsRefused() throws {
        let folder = try TestFiles.temporaryFolder("keys")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cluster = try config(keys: folder)
        _ = try ClusterKeys.generateMissing(for: cluster)
        let name = try #require(cluster.nodes.first?.address.name)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: folder.appendingPathComponent("\(name).key").path)
        do {
            _ = try ClusterKeys.security(for: name, config: cluster)
            Issue.record("a secret readable by others was loaded")
        } catch {
            #expect("\(error)".contains("\(name).key is a secret key readable by others (mode 644)"), "\(error)")
        }
    }
}
