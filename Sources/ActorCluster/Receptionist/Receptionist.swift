import CoreMetrics
import Distributed
import Logging
import Synchronization
import Wire

/// A key actors check in under, typed by the actor it lists (compare swift-distributed-actors'
/// `DistributedReception.Key`).
public struct ReceptionKey<Act: DistributedActor>: Hashable, Sendable, CustomStringConvertible
where Act.ActorSystem == ClusterSystem {
    public let name: String

    public init(_ name: String) { self.name = name }

    public var description: String { "ReceptionKey<\(Act.self)>(\(name))" }
}

/// Where actors announce themselves under a key and other nodes find them.
///
/// Each node gossips its own registrations to every node it is associated with (a full
/// snapshot after each handshake, deltas after), so a listing shows the local registrations
/// plus those of every associated node that is up. A node declared down drops out of every
/// listing at once.
public struct Receptionist: Sendable {
    let system: ClusterSystem

    /// Announces a local actor under `key`. It stays listed until it is deinitialised or its
    /// node goes away.
    /// - Throws: ``ClusterError`` `.actorNotFound` if `actor` is not local to this node.
    public func checkIn<Act>(_ actor: Act, with key: ReceptionKey<Act>) throws {
        try system.checkIn(actor.id, key: key.name)
    }

    /// The actors listed under `key` now.
    public func lookup<Act>(_ key: ReceptionKey<Act>) -> [Act] {
        resolveAll(system.state.withLock { $0.listing(for: key.name) })
    }

    /// The listing under `key`: the current one at once, then a new one on every change.
    /// Ends when the system shuts down.
    public func listing<Act>(_ key: ReceptionKey<Act>) -> AsyncMapSequence<AsyncStream<[ClusterActorID]>, [Act]> {
        let system = self.system
        return system.listingIDs(key.name).map { ids in
            ids.compactMap { try? Act.resolve(id: $0, using: system) }
        }
    }

    private func resolveAll<Act: DistributedActor>(_ ids: [ClusterActorID]) -> [Act] where Act.ActorSystem == ClusterSystem {
        ids.compactMap { try? Act.resolve(id: $0, using: system) }
    }
}

extension ClusterSystem {
    /// This node's receptionist.
    public var receptionist: Receptionist { Receptionist(system: self) }

    func checkIn(_ id: ClusterActorID, key: String) throws(ClusterError) {
        guard id.node == identity else {
            throw ClusterError(.actorNotFound, "only local actors can check in; \(id) lives on \(id.node)")
        }
        var effects = Effects()
        let added = try state.withLock { state throws(ClusterError) -> Bool in
            guard state.localActors[id.name]?.actor != nil else {
                throw ClusterError(.actorNotFound, "no live local actor \(id)")
            }
            let (inserted, _) = state.localRegistrations[key, default: []].insert(id)
            if inserted { notifyListing(key: key, state: &state, effects: &effects) }
            return inserted
        }
        effects.run()
        if added { broadcastRegistrations(added: [(key: key, id: id)], removed: []) }
    }

    /// Raw listing of ids under `key`; see ``Receptionist/listing(_:)``.
    func listingIDs(_ key: String) -> AsyncStream<[ClusterActorID]> {
        let (stream, continuation) = AsyncStream<[ClusterActorID]>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = state.withLock { state -> UInt64? in
            guard !state.isShutDown else { return nil }
            let token = state.makeToken()
            state.listingSubscribers[key, default: [:]][token] = continuation
            continuation.yield(state.listing(for: key))
            return token
        }
        guard let token else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.listingSubscribers[key]?.removeValue(forKey: token) }
        }
        return stream
    }

    /// Sends the current listing under `key` to its subscribers. Called with the lock held, and
    /// yields right there (a yield never blocks nor calls back): listings computed under the
    /// lock by different threads must reach subscribers in the order they were computed, or a
    /// stale listing could arrive last.
    func notifyListing(key: String, state: inout SystemState, effects: inout Effects) {
        guard let subscribers = state.listingSubscribers[key], !subscribers.isEmpty else { return }
        let ids = state.listing(for: key)
        for (_, subscriber) in subscribers {
            subscriber.yield(ids)
        }
    }

    /// All of this node's registrations, as a snapshot update.
    func registrationSnapshot() -> WireEnvelope {
        let registrations = state.withLock { state in
            state.localRegistrations.flatMap { key, ids in ids.map { (key: key, id: $0) } }
        }
        var update = WireReceptionistUpdate()
        update.snapshot = true
        update.added = registrations.map { makeRegistration(key: $0.key, id: $0.id) }
        var envelope = WireEnvelope()
        envelope.receptionistUpdate = update
        return envelope
    }

    /// Pushes a change of this node's registrations to every node that is up.
    func broadcastRegistrations(added: [(key: String, id: ClusterActorID)], removed: [(key: String, id: ClusterActorID)]) {
        var update = WireReceptionistUpdate()
        update.added = added.map { makeRegistration(key: $0.key, id: $0.id) }
        update.removed = removed.map { makeRegistration(key: $0.key, id: $0.id) }
        var envelope = WireEnvelope()
        envelope.receptionistUpdate = update
        let routes = state.withLock { state in state.peers.values.filter { $0.status == .up }.compactMap(\.route) }
        for route in routes { send(envelope, via: route) }
    }

    private func makeRegistration(key: String, id: ClusterActorID) -> WireRegistration {
        var registration = WireRegistration()
        registration.key = key
        registration.actor = id.toWire()
        return registration
    }

    /// Applies a peer's registrations. Entries naming actors of another node are refused: a node
    /// speaks only for its own actors.
    /// - Parameter member: With CURVE, the member whose key sent it: entries under receptionist
    ///   keys the member may not use are refused and logged.
    func applyReceptionistUpdate(_ update: WireReceptionistUpdate, from route: Route, member: String?) {
        var effects = Effects()
        var refused = 0
        var forbiddenKeys: Set<String> = []
        let allowedKeys = member.flatMap { membersByName[$0]?.receptionKeys }
        state.withLock { state in
            let endpoint: String?
            switch route {
            case let .dealer(socket): endpoint = state.endpointByDealer[socket]
            case let .router(routingID): endpoint = state.endpointByRoutingID[routingID]
            }
            guard let endpoint, let peer = state.peers[endpoint], peer.status == .up, let remote = peer.remote else { return }
            func decode(_ registrations: [WireRegistration], checkingKeys: Bool) -> [(key: String, id: ClusterActorID)] {
                registrations.compactMap { registration in
                    guard let id = try? ClusterActorID(wire: registration.actor), id.node == remote, !registration.key.isEmpty else {
                        refused += 1
                        return nil
                    }
                    if checkingKeys, let allowedKeys, !allowedKeys.contains(registration.key) {
                        forbiddenKeys.insert(registration.key)
                        return nil
                    }
                    return (registration.key, id)
                }
            }
            var table = state.remoteRegistrations[endpoint] ?? [:]
            var changedKeys: Set<String> = []
            var gone: Set<ClusterActorID> = []
            if update.snapshot {
                for (key, ids) in table {
                    changedKeys.insert(key)
                    gone.formUnion(ids)
                }
                table = [:]
            }
            for (key, id) in decode(update.added, checkingKeys: true) {
                table[key, default: []].insert(id)
                changedKeys.insert(key)
                gone.remove(id)
            }
            for (key, id) in decode(update.removed, checkingKeys: false) {
                table[key]?.remove(id)
                if table[key]?.isEmpty == true { table[key] = nil }
                changedKeys.insert(key)
                gone.insert(id)
            }
            let stillListed = Set(table.values.flatMap { $0 })
            state.remoteRegistrations[endpoint] = table.isEmpty ? nil : table
            for key in changedKeys { notifyListing(key: key, state: &state, effects: &effects) }
            for id in gone where !stillListed.contains(id) {
                state.departed.insert(id)
                fireWatchers(of: id, state: &state, effects: &effects)
            }
        }
        effects.run()
        if refused > 0 {
            logger.warning("Refused receptionist entries", metadata: ["peer": "\(describe(route))", "count": "\(refused)"])
        }
        if !forbiddenKeys.isEmpty {
            metrics.framesRejected.increment()
            logger.warning("Refused registrations under keys this member may not use", metadata: [
                "peer": "\(describe(route))", "member": "\(member ?? "-")", "keys": "\(forbiddenKeys.sorted().joined(separator: ","))",
                "allowed": "\((allowedKeys ?? []).sorted().joined(separator: ","))",
            ])
        }
    }
}
