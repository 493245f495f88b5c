import ActorCluster
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ZeroMQ

/// The key files of a cluster with `security.curve: true`, in its `security.keys` folder:
/// `cluster.key`/`cluster.pub` (the pair every node's server uses), and per node `NAME.key`
/// (its secret, only on the machine that runs it) and `NAME.pub` (on every machine: the nodes
/// of the config are the allow-list). Z85 text, secrets with owner-only permissions.
///
/// A node's key is its identity: a connection made with it is that node's name and role, and
/// may register actors only under that role's receptionist key (``receptionKey(of:)``).
public enum ClusterKeys {
    /// The base name of the servers' key pair.
    public static let serverName = "cluster"

    /// Why keys cannot be used.
    public struct KeyError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The CURVE settings of node `name`, or nil when the config does not ask for CURVE.
    /// - Throws: ``KeyError`` naming the missing or malformed file.
    public static func security(for name: String, config: ClusterConfig) throws -> ClusterSystemConfiguration.Security? {
        guard config.security.curve else { return nil }
        let folder = config.security.keys
        let server = try keyPair(serverName, in: folder)
        let node = try keyPair(name, in: folder)
        var members: [String: ClusterSystemConfiguration.Security.Member] = [:]
        for member in config.nodes {
            let key = try publicKey(member.address.name, in: folder)
            if let other = members[key] {
                throw KeyError(description: "nodes '\(other.name)' and '\(member.address.name)' have the same public key in \(folder.path); each node needs its own")
            }
            members[key] = .init(name: member.address.name, receptionKeys: [receptionKey(of: member.role)])
        }
        return .init(serverKeyPair: server, nodeKeyPair: node, members: members, domain: domain(of: config))
    }

    /// The receptionist key a node of `role` checks in under: with CURVE, the only one its key
    /// may register actors under.
    public static func receptionKey(of role: ClusterConfig.Role) -> String {
        switch role {
        case .coordinator: CoordinatorActor.key.name
        case .sampler: SamplerActor.key.name
        case .verifier: VerifierActor.key.name
        case .trainer: TrainerActor.key.name
        }
    }

    /// The ZAP domain every node of `config` uses (a node of another cluster is refused).
    public static func domain(of config: ClusterConfig) -> String {
        "selfimprove/\(config.name)"
    }

    /// Writes a key pair for the servers and for every node of `config` that has none yet.
    /// - Returns: The names written.
    public static func generateMissing(for config: ClusterConfig) throws -> [String] {
        let names = [serverName] + config.nodes.map(\.address.name)
        var written: [String] = []
        for name in names where !FileManager.default.fileExists(atPath: config.security.keys.appendingPathComponent("\(name).key").path) {
            try write(try ZMQCurveKeyPair.generate(), name: name, folder: config.security.keys)
            written.append(name)
        }
        return written
    }

    /// Writes `NAME.key` (secret, mode 0600) and `NAME.pub`; refuses to overwrite a secret.
    public static func write(_ pair: ZMQCurveKeyPair, name: String, folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let secret = folder.appendingPathComponent("\(name).key")
        guard !FileManager.default.fileExists(atPath: secret.path) else {
            throw KeyError(description: "\(secret.path) exists; refusing to overwrite a secret key")
        }
        // Created with its mode (O_EXCL, 0600): never readable by others, not even between a
        // write and a chmod.
        let descriptor = open(secret.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw KeyError(description: "could not create \(secret.path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array((pair.secretKey + "\n").utf8)
        guard Glibc.write(descriptor, bytes, bytes.count) == bytes.count, fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(secret.path)
            throw KeyError(description: "could not write \(secret.path): \(reason)")
        }
        try Data((pair.publicKey + "\n").utf8).write(to: folder.appendingPathComponent("\(name).pub"))
    }

    private static func keyPair(_ name: String, in folder: URL) throws -> ZMQCurveKeyPair {
        let file = folder.appendingPathComponent("\(name).key")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw KeyError(description: "security.curve is on but \(file.path) is missing (run `selfimprove keys generate --config FILE`)")
        }
        var status = stat()
        if stat(file.path, &status) == 0, status.st_mode & 0o077 != 0 {
            throw KeyError(description: "\(file.path) is a secret key readable by others (mode \(String(status.st_mode & 0o777, radix: 8))); run chmod 600 on it")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            return ZMQCurveKeyPair(publicKey: try ZMQCurveKeyPair.publicKey(forSecretKey: secret), secretKey: secret)
        } catch {
            throw KeyError(description: "\(file.path) is not a Z85 CURVE secret key: \(error)")
        }
    }

    private static func publicKey(_ name: String, in folder: URL) throws -> String {
        let file = folder.appendingPathComponent("\(name).pub")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw KeyError(description: "security.curve is on but \(file.path), the public key of node '\(name)', is missing")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard key.utf8.count == 40 else { throw KeyError(description: "\(file.path) is not a Z85 public key (40 characters)") }
        return key
    }
}
