import Foundation
import Distributed
import Synchronization
import Wire
import ZeroMQ

/// Where to send to a peer: through our own DEALER connected to it, or back through our
/// ROUTER to the connection it opened to us.
enum Route: Hashable, Sendable {
    case dealer(ZMQSocketID)
    case router(routingID: [UInt8])
}

/// One remote node as this node sees it, keyed by endpoint.
struct Peer {
    enum Status: Equatable {
        /// Handshake sent, no answer yet.
        case connecting
        /// Handshake done, heartbeats flowing.
        case up
        /// Declared down: silent past the failure timeout, or replaced by a new incarnation.
        case down
        /// The peer refused our handshake (protocol mismatch); we stop trying.
        case rejected
    }

    let endpoint: String
    /// Our DEALER connected to the peer, if we initiated a connection.
    var dealer: ZMQSocketID?
    /// The routing id of the connection the peer opened to our ROUTER, if it did.
    var routingID: [UInt8]?
    /// The peer's identity once a handshake told us.
    var remote: NodeIdentity?
    var status: Status
    var lastHeard: ContinuousClock.Instant
    var lastSent: ContinuousClock.Instant
    var statusSince: ContinuousClock.Instant
    var heartbeatSequence: UInt64 = 0

    /// Our preferred way to reach the peer.
    var route: Route? {
        if let dealer { return .dealer(dealer) }
        if let routingID { return .router(routingID: routingID) }
        return nil
    }
}

/// A call a peer made to this node: call ids are unique per caller, hence per route.
struct ServedCall: Hashable {
    var route: Route
    var callID: UInt64
}

/// A remote call waiting for its reply.
struct PendingCall {
    let continuation: CheckedContinuation<Data, any Error>
    let target: ClusterActorID
    let method: String
    let deadline: ContinuousClock.Instant
    let timeout: Duration
}

/// A weak reference to a local actor: the system must not keep actors alive.
struct WeakActorRef {
    weak var actor: (any DistributedActor)?
}

/// Everything mutable in a ``ClusterSystem``, guarded by one `Mutex`.
struct SystemState {
    var isShutDown = false

    // Local actors.
    var localActors: [String: WeakActorRef] = [:]
    var reservedNames: Set<String> = []
    var nextActorNumber: UInt64 = 0

    // Calls in flight, by call id.
    var nextCallID: UInt64 = 1
    var pending: [UInt64: PendingCall] = [:]

    /// Tasks running calls peers made, so a `Cancel` can reach them.
    var serving: [ServedCall: Task<Void, Never>] = [:]
    /// Calls running per peer (the entries of `serving` by route).
    var servingPerRoute: [Route: Int] = [:]
    /// Argument bytes of each running call, and their sum.
    var servingSizes: [ServedCall: Int] = [:]
    var servingBytes = 0

    /// Forgets a served call (finished or cancelled) and returns its task.
    @discardableResult
    mutating func endServing(_ key: ServedCall) -> Task<Void, Never>? {
        guard let task = serving.removeValue(forKey: key) else { return nil }
        let left = servingPerRoute[key.route, default: 1] - 1
        servingPerRoute[key.route] = left > 0 ? left : nil
        servingBytes -= servingSizes.removeValue(forKey: key) ?? 0
        return task
    }

    // Associations.
    var peers: [String: Peer] = [:]
    var endpointByRoutingID: [[UInt8]: String] = [:]
    var endpointByDealer: [ZMQSocketID: String] = [:]
    var joinWaiters: [String: [UInt64: CheckedContinuation<NodeIdentity, any Error>]] = [:]
    /// Endpoints joined explicitly: their connections are kept however long they are down.
    var joinedEndpoints: Set<String> = []
    /// With CURVE: the member whose key first claimed each endpoint in a handshake, until the
    /// node there goes down (see `handshakeClaimRefusal`).
    var memberByEndpoint: [String: String] = [:]

    // Receptionist.
    var localRegistrations: [String: Set<ClusterActorID>] = [:]
    var remoteRegistrations: [String: [String: Set<ClusterActorID>]] = [:]
    var listingSubscribers: [String: [UInt64: AsyncStream<[ClusterActorID]>.Continuation]] = [:]

    /// Remote actors their node withdrew (deinitialised, or left out of its final snapshot),
    /// so that a watch started afterwards returns at once. Bounded: oldest forgotten first.
    var departed = BoundedSet<ClusterActorID>(capacity: 10_000)
    /// Node incarnations declared down, remembered after the node itself is forgotten.
    var departedNodes = BoundedSet<NodeIdentity>(capacity: 10_000)

    // Watchers and node events.
    var watchers: [ClusterActorID: [UInt64: CheckedContinuation<Void, Never>]] = [:]
    var nodeEventSubscribers: [UInt64: AsyncStream<ClusterSystem.NodeEvent>.Continuation] = [:]
    var nextToken: UInt64 = 1

    var lastTick: ContinuousClock.Instant = .now

    mutating func makeToken() -> UInt64 {
        defer { nextToken += 1 }
        return nextToken
    }

    /// Every registration currently known under `key`, local and remote (live nodes only).
    func listing(for key: String) -> [ClusterActorID] {
        var ids = localRegistrations[key] ?? []
        for (endpoint, keys) in remoteRegistrations where peers[endpoint]?.status == .up {
            ids.formUnion(keys[key] ?? [])
        }
        return ids.sorted { ($0.node.endpoint, $0.name) < ($1.node.endpoint, $1.name) }
    }
}

/// A set that forgets its oldest members beyond `capacity`.
struct BoundedSet<Element: Hashable> {
    let capacity: Int
    private(set) var members: Set<Element> = []
    private var order: [Element] = []
    private var head = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func insert(_ element: Element) {
        guard members.insert(element).inserted else { return }
        order.append(element)
        if members.count > capacity {
            members.remove(order[head])
            head += 1
            if head > capacity {
                order.removeFirst(head)
                head = 0
            }
        }
    }

    func contains(_ element: Element) -> Bool { members.contains(element) }
}

/// Work decided under the lock and carried out after it is released (resuming continuations,
/// sending), so no continuation or socket call ever runs while the lock is held.
struct Effects {
    var actions: [@Sendable () -> Void] = []

    mutating func add(_ action: @escaping @Sendable () -> Void) {
        actions.append(action)
    }

    func run() {
        for action in actions { action() }
    }
}
