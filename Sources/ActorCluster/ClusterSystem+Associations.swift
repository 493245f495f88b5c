import CoreMetrics
import Distributed
import Logging
import SwiftProtobuf
import Synchronization
import Wire
import ZeroMQ

/// Handshakes, heartbeats and failure detection (after the zguide's Paranoid Pirate: both
/// sides send heartbeats; silence past the failure timeout means the peer is gone).
extension ClusterSystem {
    // MARK: - Joining

    /// Connects to the node at `endpoint` and waits for its handshake.
    /// - Parameters:
    ///   - endpoint: The node's advertised endpoint, for example `tcp://10.0.0.5:7000`.
    ///   - timeout: How long to wait; the connection keeps retrying in the background after.
    /// - Returns: The node's identity.
    /// - Throws: ``ClusterError`` `.nodeUnreachable` on timeout or refusal.
    @discardableResult
    public func join(_ endpoint: String, timeout: Duration = .seconds(10)) async throws -> NodeIdentity {
        let token = state.withLock { $0.makeToken() }
        let timeoutTask = Task {
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            let waiter = state.withLock { $0.joinWaiters[endpoint]?.removeValue(forKey: token) }
            waiter?.resume(throwing: ClusterError(.nodeUnreachable, "no handshake from \(endpoint) within \(timeout)"))
        }
        defer { timeoutTask.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            var effects = Effects()
            state.withLock { state in
                if state.isShutDown {
                    effects.add { continuation.resume(throwing: ClusterError(.shutDown, "node is shutting down")) }
                    return
                }
                if let peer = state.peers[endpoint], peer.status == .up, let remote = peer.remote {
                    effects.add { continuation.resume(returning: remote) }
                    return
                }
                if state.peers[endpoint]?.status == .rejected {
                    effects.add { continuation.resume(throwing: ClusterError(.nodeUnreachable, "\(endpoint) refused our handshake")) }
                    return
                }
                state.joinWaiters[endpoint, default: [:]][token] = continuation
                state.joinedEndpoints.insert(endpoint)
                _ = connectDealer(to: endpoint, state: &state, effects: &effects)
            }
            effects.run()
        }
    }

    /// How many remote endpoints this node holds state and connections for (up, down or still
    /// being dialled), for monitoring.
    public var knownEndpointCount: Int {
        state.withLock { $0.peers.count }
    }

    /// The identities of the nodes currently associated and up.
    public var upNodes: [NodeIdentity] {
        state.withLock { state in state.peers.values.filter { $0.status == .up }.compactMap(\.remote) }
    }

    /// Events for nodes coming up and going down, starting with an `.up` for each node
    /// already up. Ends when the system shuts down.
    public func nodeEvents() -> AsyncStream<NodeEvent> {
        let (stream, continuation) = AsyncStream<NodeEvent>.makeStream()
        let token = state.withLock { state -> UInt64? in
            guard !state.isShutDown else { return nil }
            let token = state.makeToken()
            state.nodeEventSubscribers[token] = continuation
            for peer in state.peers.values where peer.status == .up {
                if let remote = peer.remote { continuation.yield(.up(remote)) }
            }
            return token
        }
        guard let token else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.nodeEventSubscribers.removeValue(forKey: token) }
        }
        return stream
    }

    // MARK: - Handshake messages

    /// - Parameter member: With CURVE, the member whose key the connection was made with.
    func handleHandshake(_ handshake: WireHandshake, from route: Route, member: String?) {
        guard case let .router(routingID) = route else {
            logger.warning("Handshake arrived on an outbound connection", metadata: ["peer": "\(describe(route))"])
            return
        }
        guard handshake.protocolVersion == UInt32(WireFraming.protocolVersion) else {
            var envelope = WireEnvelope()
            var reject = Selfimprove_V1_HandshakeReject()
            reject.reason = "protocol version \(handshake.protocolVersion) is not supported; this node speaks \(WireFraming.protocolVersion)"
            envelope.handshakeReject = reject
            send(envelope, via: route)
            logger.warning("Refused handshake", metadata: ["peer": "\(describe(route))", "reason": "\(reject.reason)"])
            return
        }
        let remote: NodeIdentity
        do {
            remote = try NodeIdentity(wire: handshake.from)
        } catch {
            logger.warning("Rejected frame from peer", metadata: ["peer": "\(describe(route))", "reason": "bad handshake: \(error.message)"])
            return
        }
        var effects = Effects()
        let refusal = state.withLock { state -> String? in
            let now = ContinuousClock.now
            let endpoint = remote.endpoint
            if let refusal = handshakeClaimRefusal(remote, member: member, state: state) { return refusal }
            if let member { state.memberByEndpoint[endpoint] = member }
            var peer = state.peers[endpoint] ?? Peer(endpoint: endpoint, status: .connecting, lastHeard: now, lastSent: now, statusSince: now)
            if let old = peer.routingID, old != routingID {
                state.endpointByRoutingID[old] = nil
            }
            peer.routingID = routingID
            state.endpointByRoutingID[routingID] = endpoint
            state.peers[endpoint] = peer
            markUp(endpoint: endpoint, remote: remote, state: &state, effects: &effects)
            return nil
        }
        if let refusal {
            // Not answered: a node that really is there (restarted, say) retries its handshake
            // and is accepted once our own connection to it has caught up.
            metrics.framesRejected.increment()
            logger.warning("Ignored a handshake that claims another node's endpoint", metadata: [
                "peer": "\(describe(route))", "member": "\(member ?? "-")", "claimed": "\(remote)", "reason": "\(refusal)",
            ])
            return
        }
        var accept = WireEnvelope()
        var body = Selfimprove_V1_HandshakeAccept()
        body.from = identity.toWire()
        accept.handshakeAccept = body
        send(accept, via: route)
        send(registrationSnapshot(), via: route)
        effects.run()
    }

    /// Why a handshake on an accepted connection may not claim `remote`'s endpoint, or nil: an
    /// endpoint our own live connection reaches as another incarnation is not the claimant's
    /// (the node there would have to have restarted, and our connection would say so); with
    /// CURVE, neither is one another member's key claimed first (until that node goes down).
    private func handshakeClaimRefusal(_ remote: NodeIdentity, member: String?, state: SystemState) -> String? {
        if let member, let owner = state.memberByEndpoint[remote.endpoint], owner != member {
            return "\(remote.endpoint) belongs to member '\(owner)', and this connection is member '\(member)'"
        }
        if let peer = state.peers[remote.endpoint], peer.dealer != nil, peer.status == .up,
           let known = peer.remote, known.incarnation != remote.incarnation
        {
            return "our own connection to \(remote.endpoint) reaches \(known), not \(remote)"
        }
        return nil
    }

    func handleHandshakeAccept(_ accept: Selfimprove_V1_HandshakeAccept, from route: Route) {
        guard case let .dealer(socket) = route else {
            logger.warning("Handshake answer arrived on an inbound connection", metadata: ["peer": "\(describe(route))"])
            return
        }
        let remote: NodeIdentity
        do {
            remote = try NodeIdentity(wire: accept.from)
        } catch {
            logger.warning("Rejected frame from peer", metadata: ["peer": "\(describe(route))", "reason": "bad handshake answer: \(error.message)"])
            return
        }
        var effects = Effects()
        let known = state.withLock { state -> Bool in
            guard let endpoint = state.endpointByDealer[socket] else { return false }
            markUp(endpoint: endpoint, remote: remote, state: &state, effects: &effects)
            return true
        }
        if known { send(registrationSnapshot(), via: route) }
        effects.run()
    }

    func handleHandshakeReject(_ reject: Selfimprove_V1_HandshakeReject, from route: Route) {
        guard case let .dealer(socket) = route else { return }
        var effects = Effects()
        let endpoint = state.withLock { state -> String? in
            guard let endpoint = state.endpointByDealer[socket], var peer = state.peers[endpoint] else { return nil }
            peer.status = .rejected
            peer.statusSince = .now
            state.peers[endpoint] = peer
            failCalls(toEndpoint: endpoint, with: ClusterError(.nodeUnreachable, "\(endpoint) refused our handshake: \(reject.reason)"), state: &state, effects: &effects)
            for (_, waiter) in state.joinWaiters.removeValue(forKey: endpoint) ?? [:] {
                effects.add { waiter.resume(throwing: ClusterError(.nodeUnreachable, "\(endpoint) refused our handshake: \(reject.reason)")) }
            }
            return endpoint
        }
        effects.run()
        logger.error("Handshake refused", metadata: ["peer": "\(endpoint ?? describe(route))", "reason": "\(reject.reason)"])
    }

    func handleAssociationUnknown(from route: Route) {
        guard case .dealer = route else { return }
        // The peer lost (or never had) our association, e.g. it declared us down while we were
        // paused: introduce ourselves again.
        send(makeHandshake(), via: route)
        logger.debug("Peer asked for a new handshake", metadata: ["peer": "\(describe(route))"])
    }

    /// Records that a peer is up as `remote`. A different incarnation at the same endpoint means
    /// the old one restarted: it is declared down first.
    private func markUp(endpoint: String, remote: NodeIdentity, state: inout SystemState, effects: inout Effects) {
        guard var peer = state.peers[endpoint] else { return }
        let now = ContinuousClock.now
        if let old = peer.remote, old.incarnation != remote.incarnation, peer.status == .up || peer.status == .connecting {
            declareDown(endpoint: endpoint, reason: "restarted as \(remote)", state: &state, effects: &effects)
            peer = state.peers[endpoint] ?? peer
        }
        let wasUp = peer.status == .up && peer.remote == remote
        peer.remote = remote
        peer.status = .up
        peer.lastHeard = now
        peer.statusSince = now
        state.peers[endpoint] = peer
        for (_, waiter) in state.joinWaiters.removeValue(forKey: endpoint) ?? [:] {
            effects.add { waiter.resume(returning: remote) }
        }
        guard !wasUp else { return }
        // Yielded under the lock so that up and down events keep their order.
        for (_, subscriber) in state.nodeEventSubscribers {
            subscriber.yield(.up(remote))
        }
        let logger = self.logger
        effects.add { logger.debug("Node up", metadata: ["peer": "\(remote)"]) }
    }

    // MARK: - Liveness

    /// Notes traffic from a peer. Traffic on an inbound connection we hold no live association
    /// for is answered with `AssociationUnknown`, so the peer handshakes again.
    func noteHeard(from route: Route) {
        let unknown = state.withLock { state -> Bool in
            let endpoint: String?
            switch route {
            case let .dealer(socket): endpoint = state.endpointByDealer[socket]
            case let .router(routingID): endpoint = state.endpointByRoutingID[routingID]
            }
            guard let endpoint, var peer = state.peers[endpoint] else {
                if case .router = route { return true }
                return false
            }
            if peer.status == .up {
                peer.lastHeard = .now
                state.peers[endpoint] = peer
                return false
            }
            if case .router = route, peer.dealer == nil { return true }
            return false
        }
        if unknown {
            var envelope = WireEnvelope()
            envelope.associationUnknown = Selfimprove_V1_AssociationUnknown()
            send(envelope, via: route)
        }
    }

    /// Runs ``tick()`` every ``ClusterSystemConfiguration/tick`` until cancelled.
    func timerLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.tick)
            tick()
        }
    }

    /// Expires calls past their deadline, sends heartbeats and handshake retries, and declares
    /// silent peers down.
    func tick() {
        var effects = Effects()
        var heartbeats: [Route] = []
        var handshakes: [Route] = []
        var forgotten: [ZMQSocketID] = []
        var cancellations: [(Route, UInt64)] = []
        // Unread inbound messages may hold the very heartbeats a silent-looking peer sent: while
        // we are behind (the I/O thread busy past its limit, or a read that left messages
        // waiting), a peer is only declared down after twice the failure timeout.
        let behind = loop.isBehind
        let silenceLimit = behind ? configuration.failureTimeout * 2 : configuration.failureTimeout
        state.withLock { state in
            guard !state.isShutDown else { return }
            let now = ContinuousClock.now
            // If this process itself was paused (SIGSTOP, a debugger), everyone looks silent:
            // restart the silence clocks instead of declaring the whole cluster down.
            let paused = now - state.lastTick > configuration.failureTimeout
            state.lastTick = now

            var expired: [UInt64] = []
            for (callID, call) in state.pending where call.deadline <= now {
                expired.append(callID)
            }
            for callID in expired {
                guard let call = state.pending.removeValue(forKey: callID) else { continue }
                let error = ClusterError(.timeout, "\(call.method) on \(call.target) got no reply within \(call.timeout)")
                effects.add { call.continuation.resume(throwing: error) }
                metrics.callsTimedOut.increment()
                if let route = state.peers[call.target.node.endpoint]?.route {
                    cancellations.append((route, callID))
                }
            }

            let handshakeRetry = configuration.heartbeatInterval * 4
            for endpoint in Array(state.peers.keys) {
                guard var peer = state.peers[endpoint] else { continue }
                if paused { peer.lastHeard = now }
                switch peer.status {
                case .up:
                    if now - peer.lastHeard > silenceLimit {
                        state.peers[endpoint] = peer
                        declareDown(endpoint: endpoint, reason: "silent for \(now - peer.lastHeard)", state: &state, effects: &effects)
                        continue
                    }
                    if now - peer.lastSent >= configuration.heartbeatInterval, let route = peer.route {
                        heartbeats.append(route)
                        peer.lastSent = now
                        peer.heartbeatSequence += 1
                    }
                case .connecting, .down:
                    if now - peer.statusSince > configuration.forgetDownNodesAfter, !state.joinedEndpoints.contains(endpoint),
                       state.joinWaiters[endpoint]?.isEmpty ?? true
                    {
                        if peer.status == .connecting {
                            failCalls(toEndpoint: endpoint, with: ClusterError(.nodeUnreachable, "\(endpoint) never answered"), state: &state, effects: &effects)
                        }
                        forget(endpoint, state: &state, closing: &forgotten)
                        continue
                    }
                    if let dealer = peer.dealer, now - peer.lastSent >= handshakeRetry {
                        handshakes.append(.dealer(dealer))
                        peer.lastSent = now
                    }
                    if peer.status == .connecting, now - peer.statusSince > silenceLimit {
                        failCalls(toEndpoint: endpoint, with: ClusterError(.nodeUnreachable, "no handshake from \(endpoint) within \(configuration.failureTimeout)"), state: &state, effects: &effects)
                    }
                case .rejected:
                    break
                }
                state.peers[endpoint] = peer
            }
        }
        effects.run()
        for socket in forgotten { loop.close(socket) }
        for (route, callID) in cancellations { sendCancel(callID, via: route) }
        if !heartbeats.isEmpty {
            var envelope = WireEnvelope()
            envelope.heartbeat = WireHeartbeat()
            if let frame: [UInt8] = try? envelope.serializedBytes() {
                for route in heartbeats { sendFrame(frame, via: route) }
            }
        }
        if !handshakes.isEmpty, let frame: [UInt8] = try? makeHandshake().serializedBytes() {
            for route in handshakes { sendFrame(frame, via: route) }
        }
    }

    /// Declares the node at `endpoint` down: fails its calls, drops its registrations, tells
    /// watchers and node-event subscribers. Called with the lock held.
    func declareDown(endpoint: String, reason: String, state: inout SystemState, effects: inout Effects) {
        guard var peer = state.peers[endpoint], peer.status == .up || peer.status == .connecting else { return }
        peer.status = .down
        peer.statusSince = .now
        state.peers[endpoint] = peer
        state.memberByEndpoint[endpoint] = nil
        let remote = peer.remote
        failCalls(toEndpoint: endpoint, with: ClusterError(.nodeDown, "node \(remote?.description ?? endpoint) is down: \(reason)"), state: &state, effects: &effects)
        if let removed = state.remoteRegistrations.removeValue(forKey: endpoint) {
            for key in removed.keys { notifyListing(key: key, state: &state, effects: &effects) }
        }
        if let remote {
            state.departedNodes.insert(remote)
            for id in state.watchers.keys where id.node == remote {
                fireWatchers(of: id, state: &state, effects: &effects)
            }
            for (_, subscriber) in state.nodeEventSubscribers {
                subscriber.yield(.down(remote))
            }
            metrics.nodesDown.increment()
            let logger = self.logger
            effects.add { logger.warning("Node down", metadata: ["peer": "\(remote)", "reason": "\(reason)"]) }
        }
    }

    /// Drops everything known about a peer that stayed down: its connection (closed by the
    /// caller after the lock), routes and registrations. Called with the lock held.
    private func forget(_ endpoint: String, state: inout SystemState, closing sockets: inout [ZMQSocketID]) {
        guard let peer = state.peers.removeValue(forKey: endpoint) else { return }
        if let dealer = peer.dealer {
            state.endpointByDealer[dealer] = nil
            sockets.append(dealer)
        }
        if let routingID = peer.routingID, state.endpointByRoutingID[routingID] == endpoint {
            state.endpointByRoutingID[routingID] = nil
        }
        state.remoteRegistrations[endpoint] = nil
        let logger = self.logger
        logger.debug("Forgot node", metadata: ["zmq.endpoint": "\(endpoint)"])
    }

    /// Fails every call in flight to actors at `endpoint`. Called with the lock held.
    func failCalls(toEndpoint endpoint: String, with error: ClusterError, state: inout SystemState, effects: inout Effects) {
        let callIDs = state.pending.compactMap { $0.value.target.node.endpoint == endpoint ? $0.key : nil }
        for callID in callIDs {
            guard let call = state.pending.removeValue(forKey: callID) else { continue }
            effects.add { call.continuation.resume(throwing: error) }
            metrics.callsFailed.increment()
        }
    }
}
