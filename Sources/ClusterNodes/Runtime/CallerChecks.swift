import ActorCluster
import Logging
import Synchronization

/// Who may call what: the rules a node applies to the peer behind a distributed call
/// (``ClusterSystem/caller``), so that one member of the cluster cannot act as another's role.
///
/// - The coordinator's calls to a trainer or verifier (records, `finish`) are recognised by the
///   connection they come over: the one this node opened to the coordinator's endpoint (an
///   address it chose), or, with CURVE, any connection made with the coordinator's key.
///   Without CURVE an accepted connection only *claims* an endpoint: the check then stops
///   mistakes, not an attacker (docs/cluster.md says so).
/// - With CURVE, a sampler's calls to the coordinator must come from a sampler's key, and a
///   sampler name, once seen from one key, is that key's for the rest of the run.
public struct CallerChecks: Sendable {
    /// The coordinator's endpoint as this node joined it (nil on the coordinator itself).
    public var coordinatorEndpoint: String?
    /// The coordinator's member name (its config entry).
    public var coordinatorMember: String
    /// Whether connections are authenticated by CURVE keys.
    public var curve: Bool
    /// The config's sampler entries (their keys' member names).
    public var samplerMembers: Set<String>

    public init(coordinatorEndpoint: String?, coordinatorMember: String, curve: Bool, samplerMembers: Set<String>) {
        self.coordinatorEndpoint = coordinatorEndpoint
        self.coordinatorMember = coordinatorMember
        self.curve = curve
        self.samplerMembers = samplerMembers
    }

    /// The checks of `config`'s nodes; `coordinatorEndpoint` is where this node joins.
    public init(config: ClusterConfig, coordinatorEndpoint: String?) {
        self.init(coordinatorEndpoint: coordinatorEndpoint, coordinatorMember: config.coordinator.address.name,
                  curve: config.security.curve, samplerMembers: Set(config.samplers.map(\.address.name)))
    }

    /// Why the caller may not make a coordinator's call (`method`), or nil when it may. Local
    /// calls (no caller) may.
    public func refusalUnlessCoordinator(_ caller: CallerIdentity?, method: String) -> String? {
        guard let caller else { return nil }
        switch caller.connection {
        case .dialled:
            if let coordinatorEndpoint, caller.endpoint == coordinatorEndpoint { return nil }
        case .accepted:
            if curve, caller.member == coordinatorMember { return nil }
            if !curve, let coordinatorEndpoint, caller.endpoint == coordinatorEndpoint { return nil }
        }
        return "\(method) is the coordinator's call, and this caller (\(caller)) is not the coordinator"
    }

    /// Why the caller may not act as sampler `name`, or nil when it may. Without CURVE every
    /// claim stands (nothing proves otherwise); with it, the caller's key must be a sampler's,
    /// and `names` binds each sampler name to the first key it was seen with.
    public func refusalUnlessSampler(_ caller: CallerIdentity?, claiming name: String, names: SamplerNameBinding) -> String? {
        guard curve, let caller else { return nil }
        guard let member = caller.member, samplerMembers.contains(member) else {
            return "only samplers' keys may act as a sampler, and this caller (\(caller)) holds no sampler's key"
        }
        guard let owner = names.bind(name, to: member) else {
            return "sampler '\(name)' is one name too many: \(SamplerNameBinding.capacity) sampler names are known"
        }
        if owner != member {
            return "sampler '\(name)' belongs to the key of member '\(owner)', and this caller is member '\(member)'"
        }
        return nil
    }
}

/// Which member's key each sampler name was first seen with (sampler replicas of one entry
/// share its key, so several names may belong to one member; never the other way round).
public final class SamplerNameBinding: Sendable {
    private let owners = Mutex<[String: String]>([:])

    public init() {}

    /// How many names it keeps (a key cannot grow it without bound).
    static let capacity = 10_000

    /// Binds `name` to `member` unless it is bound already; returns the owner, or nil when the
    /// name is new and the binding is full.
    func bind(_ name: String, to member: String) -> String? {
        owners.withLock { owners in
            if let owner = owners[name] { return owner }
            guard owners.count < Self.capacity else { return nil }
            owners[name] = member
            return member
        }
    }
}

extension CallerChecks {
    /// The error a refused call answers with (type name `Unauthorized`).
    static func unauthorized(_ reason: String) -> RemoteCallError {
        RemoteCallError(code: RemoteCallError.remoteThrew, typeName: "Unauthorized", message: reason)
    }

    /// Throws, and logs, unless the running call is the coordinator's.
    func requireCoordinator(_ method: String, logger: Logger) throws(RemoteCallError) {
        guard let reason = refusalUnlessCoordinator(ClusterSystem.caller, method: method) else { return }
        logger.warning("Refused a call only the coordinator may make", metadata: ["method": "\(method)", "reason": "\(reason)"])
        throw Self.unauthorized(reason)
    }
}
