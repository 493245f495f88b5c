import Foundation
import CoreMetrics
import Distributed
import Logging
import Metrics
import SwiftProtobuf
import Synchronization
import Wire
import ZeroMQ

/// A `DistributedActorSystem` whose nodes talk over ZeroMQ with protobuf messages.
///
/// Each node binds one ROUTER socket; to call a node it has not heard from, it connects a
/// DEALER to that node's endpoint and introduces itself with a handshake. Either connection
/// carries traffic both ways. Both sides send application heartbeats; a peer silent past
/// ``ClusterSystemConfiguration/failureTimeout`` is declared down: its calls in flight fail,
/// watchers learn its actors are gone, and its receptionist listings disappear.
///
/// Methods cross the wire under stable names (see ``ClusterCallable``); arguments and results
/// are protobuf messages.
///
/// Thread-safety: all API may be used from any task. State lives in one `Mutex`; sockets live on
/// the ``ZMQEventLoop`` thread.
public final class ClusterSystem: DistributedActorSystem, Sendable {
    public typealias ActorID = ClusterActorID
    public typealias SerializationRequirement = any SwiftProtobuf.Message
    public typealias InvocationEncoder = ClusterInvocationEncoder
    public typealias InvocationDecoder = ClusterInvocationDecoder
    public typealias ResultHandler = ClusterResultHandler

    /// A change in the set of nodes this node is associated with.
    public enum NodeEvent: Sendable, Hashable {
        case up(NodeIdentity)
        case down(NodeIdentity)
    }

    /// This node.
    public let identity: NodeIdentity
    /// The endpoint the ROUTER is bound to (wildcard port resolved); `identity.endpoint` is the
    /// advertised one, which differs behind NAT or a proxy.
    public let boundEndpoint: String
    public let configuration: ClusterSystemConfiguration
    public let logger: Logger

    let loop: ZMQEventLoop
    let routerSocket: ZMQSocketID
    /// Logs failed handshakes and, when CURVE is on, admits only allowed keys.
    let connectionGuard: ZMQConnectionGuard?

    /// Bytes waiting to be sent to peers that do not keep up (bounded per peer by
    /// `eventLoop.maxQueuedBytesPerDestination`, beyond libzmq's high-water mark).
    public var queuedSendBytes: Int { loop.queuedSendBytes }

    /// Connection attempts refused so far: failed handshakes (not ZeroMQ, garbage) and, with
    /// CURVE, keys outside the allow-list.
    public var refusedConnectionCount: Int { connectionGuard?.refusals ?? 0 }
    let state = Mutex(SystemState())
    let methods = MethodRegistry()
    private let tasks = Mutex<[Task<Void, Never>]>([])

    let metrics: SystemMetrics
    /// Liveness notes of the receive path; only touched on the event loop's thread.
    let heard = Mutex(HeardRecently())
    /// Rate limit of the warning about messages dropped at a full peer queue.
    let droppedSends = Mutex(DroppedSendLog())

    /// Task-local per-call timeout override; see ``withCallTimeout(_:_:)``.
    @TaskLocal static var callTimeoutOverride: Duration?
    /// The peer whose call the current task serves; see ``caller``.
    @TaskLocal static var currentCaller: CallerIdentity?

    /// CURVE members by name (a connection's ZAP user id is its member's name).
    let membersByName: [String: ClusterSystemConfiguration.Security.Member]

    private init(identity: NodeIdentity, boundEndpoint: String, configuration: ClusterSystemConfiguration, logger: Logger,
                 loop: ZMQEventLoop, routerSocket: ZMQSocketID, connectionGuard: ZMQConnectionGuard?)
    {
        self.connectionGuard = connectionGuard
        self.identity = identity
        self.boundEndpoint = boundEndpoint
        self.configuration = configuration
        self.logger = logger
        self.loop = loop
        self.routerSocket = routerSocket
        self.metrics = SystemMetrics(node: configuration.nodeName, labels: configuration.metricLabels)
        let members = configuration.security?.members.values.map { ($0.name, $0) } ?? []
        self.membersByName = Dictionary(members, uniquingKeysWith: { first, _ in first })
    }

    /// Starts a node: binds its ROUTER and starts its event loop, receive task and timers.
    /// - Parameters:
    ///   - configuration: Endpoint, timeouts and socket options.
    ///   - logger: The node's logger; the system adds `node.name` and `node.id` metadata.
    /// - Returns: The running system. Call ``shutdown()`` when done.
    /// - Throws: ``ClusterError`` for invalid configuration, ``ZMQError`` if binding fails.
    public static func start(configuration: ClusterSystemConfiguration = .default, logger: Logger) async throws -> ClusterSystem {
        try configuration.validate()
        var logger = logger
        logger[metadataKey: "node.name"] = "\(configuration.nodeName)"
        var options = configuration.socketOptions
        options.maxMessageSize = Int64(configuration.maxMessageSize)
        let loop = try ZMQEventLoop(name: "zmq-\(configuration.nodeName)", configuration: configuration.eventLoop, logger: logger)
        let inbound = InboundDispatch()
        loop.deliverEvents { inbound.handle($0) }
        let routerSocket: ZMQSocketID
        let bound: String
        var connectionGuard: ZMQConnectionGuard?
        do {
            // The guard first: from the moment the ROUTER listens, failed handshakes are logged
            // and, with CURVE, every connection must present an allowed key.
            let monitor = "inproc://selfimprove-handshakes"
            let policy = configuration.security.map { security in
                ZMQConnectionGuard.Policy(domain: security.domain, allowedPublicKeys: security.allowedPublicKeys.union(security.members.keys),
                                          userIDs: security.members.mapValues(\.name))
            }
            connectionGuard = try ZMQConnectionGuard(loop: loop, policy: policy, monitorEndpoints: [monitor], logger: logger)
            options.handshakeMonitorEndpoint = monitor
            if let security = configuration.security {
                options.curve = .init(keyPair: security.serverKeyPair, zapDomain: security.domain)
            }
            (routerSocket, bound) = try await loop.bind(.router, to: configuration.bindEndpoint, options: options)
        } catch {
            connectionGuard?.stop()
            loop.shutdown()
            throw error
        }
        let identity = NodeIdentity(endpoint: configuration.advertisedEndpoint ?? bound, incarnation: NodeIdentity.randomIncarnation())
        logger[metadataKey: "node.id"] = "\(identity)"
        let system = ClusterSystem(identity: identity, boundEndpoint: bound, configuration: configuration, logger: logger, loop: loop, routerSocket: routerSocket, connectionGuard: connectionGuard)
        inbound.attach(system)
        system.startTasks()
        logger.debug("Node started", metadata: ["zmq.endpoint": "\(bound)"])
        return system
    }

    private func startTasks() {
        let timer = Task { [self] in await self.timerLoop() }
        tasks.withLock { $0 = [timer] }
    }

    /// Stops the node: tells peers its registrations are gone, fails calls in flight with
    /// `.shutDown`, closes every socket and stops its tasks. Idempotent.
    public func shutdown() async {
        var effects = Effects()
        let (wasRunning, routes) = state.withLock { state -> (Bool, [Route]) in
            guard !state.isShutDown else { return (false, []) }
            state.isShutDown = true
            for (_, call) in state.pending {
                let continuation = call.continuation
                effects.add { continuation.resume(throwing: ClusterError(.shutDown, "node is shutting down")) }
            }
            state.pending.removeAll()
            for (_, waiters) in state.joinWaiters {
                for (_, waiter) in waiters {
                    effects.add { waiter.resume(throwing: ClusterError(.shutDown, "node is shutting down")) }
                }
            }
            state.joinWaiters.removeAll()
            for (_, subscribers) in state.listingSubscribers {
                for (_, subscriber) in subscribers { effects.add { subscriber.finish() } }
            }
            state.listingSubscribers.removeAll()
            for (_, subscriber) in state.nodeEventSubscribers { effects.add { subscriber.finish() } }
            state.nodeEventSubscribers.removeAll()
            for (_, waiters) in state.watchers {
                for (_, waiter) in waiters { effects.add { waiter.resume() } }
            }
            state.watchers.removeAll()
            let routes = state.peers.values.filter { $0.status == .up }.compactMap(\.route)
            return (true, routes)
        }
        guard wasRunning else { return }
        effects.run()
        // A leaving node withdraws its registrations at once instead of waiting to be
        // declared down (best effort: the sockets close right after).
        var goodbye = WireEnvelope()
        var update = WireReceptionistUpdate()
        update.snapshot = true
        goodbye.receptionistUpdate = update
        for route in routes { send(goodbye, via: route) }
        try? await Task.sleep(for: .milliseconds(20))
        for task in tasks.withLock({ $0 }) { task.cancel() }
        // The loop first: libzmq sends monitor events with a blocking send, so the guard must
        // keep reading them until the ROUTER is closed.
        loop.shutdown()
        connectionGuard?.stop()
        for task in tasks.withLock({ $0 }) { await task.value }
        logger.debug("Node stopped")
    }

    /// Runs `body` with a different timeout for the remote calls it makes.
    public static func withCallTimeout<T>(_ timeout: Duration, _ body: () async throws -> T) async rethrows -> T {
        try await $callTimeoutOverride.withValue(timeout) { try await body() }
    }

    // MARK: - Method registration

    /// Makes a distributed actor type's methods callable across nodes under their stable names.
    /// Call on every node that hosts or calls actors of the type, before any call.
    /// - Throws: ``ClusterError`` if a name is taken by another method or a method could not
    ///   be recorded.
    public func register<Act: ClusterCallable>(_ type: Act.Type) async throws {
        let probeID = ClusterActorID(node: NodeIdentity(endpoint: "recording://\(Act.self)", incarnation: 1), name: "probe")
        let probe = try Act.resolve(id: probeID, using: self)
        for method in Act.wireMethods {
            let recording = MethodRecording()
            await MethodRecording.$current.withValue(recording) {
                _ = try? await method.body(probe, .recording(method.name))
            }
            guard let recorded = recording.recorded.withLock({ $0 }) else {
                throw ClusterError(.configuration, "'\(method.name)' did not call a distributed method of \(Act.self)")
            }
            let body = method.body
            let name = method.name
            try methods.add(.init(name: name, identifier: recorded.identifier, arity: recorded.arity) { actor, arguments in
                guard let typed = actor as? Act else {
                    throw RemoteCallError(code: RemoteCallError.actorNotFound, typeName: "",
                                          message: "\(name) is a method of \(Act.self), but the target is a \(Swift.type(of: actor))")
                }
                return try await body(typed, arguments)
            })
        }
    }

    // MARK: - DistributedActorSystem: identities

    public func assignID<Act>(_ actorType: Act.Type) -> ClusterActorID where Act: DistributedActor, Act.ID == ClusterActorID {
        let name = state.withLock { state -> String in
            state.nextActorNumber += 1
            let name = "\(shortTypeName(Act.self))-\(state.nextActorNumber)"
            state.reservedNames.insert(name)
            return name
        }
        return ClusterActorID(node: identity, name: name)
    }

    public func actorReady<Act>(_ actor: Act) where Act: DistributedActor, Act.ID == ClusterActorID {
        state.withLock { state in
            state.reservedNames.remove(actor.id.name)
            state.localActors[actor.id.name] = WeakActorRef(actor: actor)
        }
    }

    public func resignID(_ id: ClusterActorID) {
        var effects = Effects()
        let removedKeys = state.withLock { state -> [String] in
            state.reservedNames.remove(id.name)
            state.localActors[id.name] = nil
            var keys: [String] = []
            for (key, var ids) in state.localRegistrations where ids.contains(id) {
                ids.remove(id)
                state.localRegistrations[key] = ids.isEmpty ? nil : ids
                keys.append(key)
                notifyListing(key: key, state: &state, effects: &effects)
            }
            fireWatchers(of: id, state: &state, effects: &effects)
            return keys
        }
        effects.run()
        if !removedKeys.isEmpty {
            broadcastRegistrations(added: [], removed: removedKeys.map { (key: $0, id: id) })
        }
    }

    public func resolve<Act>(id: ClusterActorID, as actorType: Act.Type) throws -> Act?
    where Act: DistributedActor, Act.ID == ClusterActorID {
        guard id.node == identity else { return nil }
        let actor = state.withLock { $0.localActors[id.name]?.actor }
        guard let actor else {
            throw ClusterError(.actorNotFound, "no live local actor \(id)")
        }
        guard let typed = actor as? Act else {
            throw ClusterError(.actorNotFound, "local actor \(id) is a \(type(of: actor)), not a \(Act.self)")
        }
        return typed
    }

    public func makeInvocationEncoder() -> ClusterInvocationEncoder {
        ClusterInvocationEncoder()
    }

    // MARK: - DistributedActorSystem: remote calls

    public func remoteCall<Act, Err, Res>(
        on actor: Act, target: RemoteCallTarget, invocation: inout ClusterInvocationEncoder,
        throwing: Err.Type, returning: Res.Type
    ) async throws -> Res
    where Act: DistributedActor, Act.ID == ClusterActorID, Err: Error, Res: SwiftProtobuf.Message {
        let bytes = try await performCall(to: actor.id, target: target, arguments: invocation.arguments)
        do {
            return try Res(serializedBytes: bytes)
        } catch {
            throw ClusterError(.serialization, "reply of \(actor.id) is not a valid \(Res.protoMessageName)", cause: error)
        }
    }

    public func remoteCallVoid<Act, Err>(
        on actor: Act, target: RemoteCallTarget, invocation: inout ClusterInvocationEncoder, throwing: Err.Type
    ) async throws where Act: DistributedActor, Act.ID == ClusterActorID, Err: Error {
        _ = try await performCall(to: actor.id, target: target, arguments: invocation.arguments)
    }

    private func performCall(to id: ClusterActorID, target: RemoteCallTarget, arguments: [Data]) async throws -> Data {
        if let recording = MethodRecording.current {
            recording.recorded.withLock { $0 = .init(identifier: target.identifier, arity: arguments.count) }
            throw MethodRecording.Done()
        }
        guard let method = methods.entry(identifier: target.identifier) else {
            throw ClusterError(.unregisteredMethod, "\(target) has no wire name: register its actor type with ClusterSystem.register(_:)")
        }
        let timeout = Self.callTimeoutOverride ?? configuration.callTimeout
        var call = WireCall()
        call.target = id.toWire()
        call.method = method.name
        call.arguments = arguments
        call.timeoutMs = UInt32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        metrics.callsStarted.increment()

        let callID = state.withLock { state -> UInt64 in
            defer { state.nextCallID &+= 1 }
            return state.nextCallID
        }
        call.callID = callID
        var envelope = WireEnvelope()
        envelope.call = call
        let frame: [UInt8]
        do {
            frame = try envelope.serializedBytes()
        } catch {
            throw ClusterError(.serialization, "call to \(method.name) did not serialize", cause: error)
        }
        guard frame.count <= configuration.maxMessageSize else {
            throw ClusterError(.messageTooLarge, "call to \(method.name) is \(frame.count) bytes; maxMessageSize is \(configuration.maxMessageSize)")
        }

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
                var effects = Effects()
                let route = state.withLock { state -> Route? in
                    if state.isShutDown {
                        effects.add { continuation.resume(throwing: ClusterError(.shutDown, "node is shutting down")) }
                        return nil
                    }
                    if let failure = knownFailure(for: id, state: state) {
                        effects.add { continuation.resume(throwing: failure) }
                        return nil
                    }
                    state.pending[callID] = PendingCall(
                        continuation: continuation, target: id, method: method.name,
                        deadline: .now + timeout, timeout: timeout)
                    return ensureRoute(to: id.node.endpoint, state: &state, effects: &effects)
                }
                effects.run()
                if let route {
                    sendFrame(frame, via: route)
                }
                if Task.isCancelled {
                    cancelCall(callID)
                }
            }
        } onCancel: {
            cancelCall(callID)
        }
    }

    /// A reason to fail a call at once: its node is known to be down or replaced.
    private func knownFailure(for id: ClusterActorID, state: SystemState) -> ClusterError? {
        guard let peer = state.peers[id.node.endpoint] else { return nil }
        if let remote = peer.remote, remote.incarnation != id.node.incarnation, peer.status == .up {
            return ClusterError(.nodeDown, "\(id) belonged to an earlier incarnation of \(id.node.endpoint) (now \(remote))")
        }
        if peer.status == .down, peer.remote?.incarnation == id.node.incarnation {
            return ClusterError(.nodeDown, "node \(id.node) is down")
        }
        if peer.status == .rejected {
            return ClusterError(.nodeUnreachable, "node \(id.node.endpoint) refused our handshake")
        }
        return nil
    }

    /// Ends a pending call whose caller was cancelled, and asks the callee to stop working on it.
    func cancelCall(_ callID: UInt64) {
        let (call, route) = state.withLock { state -> (PendingCall?, Route?) in
            guard let call = state.pending.removeValue(forKey: callID) else { return (nil, nil) }
            return (call, state.peers[call.target.node.endpoint]?.route)
        }
        guard let call else { return }
        metrics.callsFailed.increment()
        call.continuation.resume(throwing: CancellationError())
        if let route { sendCancel(callID, via: route) }
    }

    /// Tells the callee that this node gave up on a call.
    func sendCancel(_ callID: UInt64, via route: Route) {
        var cancel = Selfimprove_V1_Cancel()
        cancel.callID = callID
        var envelope = WireEnvelope()
        envelope.cancel = cancel
        send(envelope, via: route)
    }

    /// Completes a pending call with an error, if it is still pending.
    func failCall(_ callID: UInt64, with error: any Error) {
        let call = state.withLock { $0.pending.removeValue(forKey: callID) }
        if let call {
            metrics.callsFailed.increment()
            call.continuation.resume(throwing: error)
        }
    }
}

/// The last component of a type's name, for readable actor names.
func shortTypeName(_ type: Any.Type) -> String {
    let full = String(describing: type)
    return full.split(separator: ".").last.map(String.init) ?? full
}
