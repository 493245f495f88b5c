import Foundation
import CoreMetrics
import Distributed
import Logging
import SwiftProtobuf
import Synchronization
import Wire
import ZeroMQ

extension ClusterSystem {
    /// The routing id our DEALERs announce: a non-zero marker byte (libzmq reserves ids
    /// starting with 0) followed by our incarnation, so peers can tell our connections apart.
    var dealerRoutingID: [UInt8] {
        var bytes: [UInt8] = [0x6E]
        withUnsafeBytes(of: identity.incarnation.bigEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    // MARK: - Sending

    func send(_ envelope: WireEnvelope, via route: Route) {
        do {
            let frame: [UInt8] = try envelope.serializedBytes()
            sendFrame(frame, via: route)
        } catch {
            logger.error("Envelope did not serialize", metadata: ["error": "\(error)"])
        }
    }

    func sendFrame(_ frame: [UInt8], via route: Route) {
        switch route {
        case let .dealer(socket):
            loop.send([[WireFraming.protocolVersion], frame], on: socket)
        case let .router(routingID):
            loop.send([routingID, [WireFraming.protocolVersion], frame], on: routerSocket)
        }
    }

    /// Returns how to reach `endpoint`, connecting a DEALER (and queueing the handshake as its
    /// first message) if we have no connection. Called with the lock held.
    func ensureRoute(to endpoint: String, state: inout SystemState, effects: inout Effects) -> Route? {
        if let route = state.peers[endpoint]?.route { return route }
        return connectDealer(to: endpoint, state: &state, effects: &effects)
    }

    func connectDealer(to endpoint: String, state: inout SystemState, effects: inout Effects) -> Route? {
        if let dealer = state.peers[endpoint]?.dealer { return .dealer(dealer) }
        var options = configuration.socketOptions
        options.maxMessageSize = Int64(configuration.maxMessageSize)
        options.routingID = dealerRoutingID
        if let security = configuration.security {
            options.curve = .init(keyPair: security.nodeKeyPair, serverPublicKey: security.serverKeyPair.publicKey)
        }
        let socket = loop.connectNow(.dealer, to: endpoint, options: options) { [logger] error in
            logger.warning("Could not connect", metadata: ["zmq.endpoint": "\(endpoint)", "error": "\(error)"])
        }
        let now = ContinuousClock.now
        var peer = state.peers[endpoint] ?? Peer(endpoint: endpoint, status: .connecting, lastHeard: now, lastSent: now, statusSince: now)
        peer.dealer = socket
        if peer.status != .up {
            peer.status = .connecting
            peer.statusSince = now
            peer.lastHeard = now
        }
        peer.lastSent = now
        state.peers[endpoint] = peer
        state.endpointByDealer[socket] = endpoint
        let handshake = makeHandshake()
        // The open command is already queued on the loop, so the handshake goes out first.
        loop.send([[WireFraming.protocolVersion], (try? handshake.serializedBytes()) ?? []], on: socket)
        logger.debug("Connecting", metadata: ["zmq.endpoint": "\(endpoint)"])
        return .dealer(socket)
    }

    func makeHandshake() -> WireEnvelope {
        var handshake = WireHandshake()
        handshake.protocolVersion = UInt32(WireFraming.protocolVersion)
        handshake.from = identity.toWire()
        var envelope = WireEnvelope()
        envelope.handshake = handshake
        return envelope
    }

    // MARK: - Receiving

    /// Handles one event of the event loop, on the loop's thread: decodes, then resumes a
    /// waiting caller or starts a task; never blocks.
    func handle(_ event: ZMQEvent) {
        switch event {
        case let .message(socket, frames, userID):
            receive(frames, on: socket, userID: userID)
        case let .sendFailed(socket, destination, error):
            metrics.sendsDropped.increment()
            let route: Route = socket == routerSocket ? .router(routingID: destination ?? []) : .dealer(socket)
            let key = socket == routerSocket ? hex(destination ?? []) : "\(socket)"
            if let dropped = droppedSends.withLock({ $0.noteDrop(to: key) }) {
                // Named off this thread: this event may be handled while the state lock is held.
                let message = error.message
                let gone = error.code == .hostUnreachable
                Task {
                    // A peer that disconnected (a reply to a node that stopped, at the end of a
                    // run or after a crash) is routine; one that stays and does not read is not.
                    self.logger.log(level: gone ? .debug : .warning,
                                    gone ? "Dropping messages to a peer that has disconnected" : "Dropping messages to a peer that does not read them",
                                    metadata: ["peer": "\(self.describe(route))", "dropped": "\(dropped)", "error": "\(message)"])
                }
            }
        }
    }

    /// - Parameter userID: The ZAP user id of the sender's connection (with CURVE, the name of
    ///   the member whose key it used).
    private func receive(_ frames: [[UInt8]], on socket: ZMQSocketID, userID: String?) {
        let route: Route
        let body: ArraySlice<[UInt8]>
        if socket == routerSocket {
            guard let routingID = frames.first else { return }
            route = .router(routingID: routingID)
            body = frames.dropFirst()
        } else {
            route = .dealer(socket)
            body = frames[...]
        }
        guard body.count == 2, let version = body.first, version.count == 1 else {
            rejectFrame(route: route, reason: "expected 2 frames [version][envelope], got \(body.count) (first frame \(body.first?.count ?? 0) bytes)")
            return
        }
        guard version[0] == WireFraming.protocolVersion else {
            rejectFrame(route: route, reason: "unsupported protocol version \(version[0])")
            return
        }
        if let refusal = WireAllocationBudget.refusal(body[body.startIndex + 1]) {
            rejectFrame(route: route, reason: refusal)
            return
        }
        let envelope: WireEnvelope
        do {
            envelope = try WireEnvelope(serializedBytes: body[body.startIndex + 1])
        } catch {
            rejectFrame(route: route, reason: "undecodable envelope (\(body[body.startIndex + 1].count) bytes): \(error)")
            return
        }
        metrics.envelopesReceived.increment()
        // Only an accepted connection's user id says who sent it (ours name no one).
        let member = socket == routerSocket ? userID.flatMap { membersByName[$0]?.name } : nil
        dispatch(envelope, from: route, member: member)
    }

    private func rejectFrame(route: Route, reason: String) {
        metrics.framesRejected.increment()
        logger.warning("Rejected frame from peer", metadata: ["peer": "\(describe(route))", "reason": "\(reason)"])
    }

    /// A readable name for whoever is behind a route, for logs.
    func describe(_ route: Route) -> String {
        state.withLock { state in
            switch route {
            case let .dealer(socket):
                return state.endpointByDealer[socket] ?? "\(socket)"
            case let .router(routingID):
                if let endpoint = state.endpointByRoutingID[routingID] { return endpoint }
                return "unidentified connection \(hex(routingID))"
            }
        }
    }

    private func dispatch(_ envelope: WireEnvelope, from route: Route, member: String?) {
        switch envelope.body {
        case let .call(call)?:
            if heard.withLock({ $0.shouldNote(route) }) { noteHeard(from: route) }
            handleCall(call, from: route, member: member)
        case let .reply(reply)?:
            if heard.withLock({ $0.shouldNote(route) }) { noteHeard(from: route) }
            completeCall(reply.callID, with: .success(reply.result))
        case let .error(error)?:
            if heard.withLock({ $0.shouldNote(route) }) { noteHeard(from: route) }
            completeCall(error.callID, with: .failure(RemoteCallError(code: error.code, typeName: error.typeName, message: error.message)))
        case let .handshake(handshake)?:
            handleHandshake(handshake, from: route, member: member)
        case let .handshakeAccept(accept)?:
            handleHandshakeAccept(accept, from: route)
        case let .handshakeReject(reject)?:
            handleHandshakeReject(reject, from: route)
        case .heartbeat?:
            noteHeard(from: route)
        case let .receptionistUpdate(update)?:
            noteHeard(from: route)
            applyReceptionistUpdate(update, from: route, member: member)
        case .associationUnknown?:
            handleAssociationUnknown(from: route)
        case let .cancel(cancel)?:
            handleCancel(cancel, from: route)
        case nil:
            rejectFrame(route: route, reason: "envelope has no body")
        }
    }

    // MARK: - Calls

    private func completeCall(_ callID: UInt64, with result: Result<Data, RemoteCallError>) {
        let call = state.withLock { $0.pending.removeValue(forKey: callID) }
        guard let call else {
            logger.trace("Late or unknown reply dropped", metadata: ["call.id": "\(callID)"])
            return
        }
        switch result {
        case let .success(bytes):
            metrics.callsSucceeded.increment()
            call.continuation.resume(returning: bytes)
        case let .failure(error):
            metrics.callsFailed.increment()
            call.continuation.resume(throwing: error)
        }
    }

    private func handleCall(_ call: WireCall, from route: Route, member: String?) {
        let key = ServedCall(route: route, callID: call.callID)
        let executor: (any TaskExecutor)? = configuration.callExecution == .eventLoop ? loop : nil
        let perPeer = configuration.maxCallsInFlightPerPeer, total = configuration.maxCallsInFlight
        let size = call.arguments.reduce(0) { $0 + $1.count }
        // Created under the lock, so the task's own removal (below) cannot come first.
        let refusal: String? = state.withLock { state in
            let running = state.servingPerRoute[route, default: 0]
            if running >= perPeer { return "\(running) calls from this peer are running on \(configuration.nodeName); try again later" }
            if state.serving.count >= total { return "\(state.serving.count) calls are running on \(configuration.nodeName); try again later" }
            if !state.serving.isEmpty, state.servingBytes + size > configuration.maxCallBytesInFlight {
                return "calls holding \(state.servingBytes) bytes of arguments are running on \(configuration.nodeName), and this one has \(size); try again later"
            }
            guard state.serving[key] == nil else { return nil }
            state.servingPerRoute[route] = running + 1
            state.servingSizes[key] = size
            state.servingBytes += size
            let caller = switch route {
            case let .dealer(socket): CallerIdentity(connection: .dialled, endpoint: state.endpointByDealer[socket], member: nil)
            case let .router(routingID): CallerIdentity(connection: .accepted, endpoint: state.endpointByRoutingID[routingID], member: member)
            }
            state.serving[key] = Task(executorPreference: executor) {
                let envelope = await ClusterSystem.$currentCaller.withValue(caller) { await self.execute(call) }
                self.state.withLock { $0.endServing(key) }
                if !Task.isCancelled { self.send(envelope, via: route) }
            }
            return nil
        }
        if let refusal {
            metrics.callsRefused.increment()
            var envelope = WireEnvelope()
            envelope.error = .make(callID: call.callID, code: RemoteCallError.remoteThrew, typeName: "Overloaded", message: refusal)
            send(envelope, via: route)
        }
    }

    private func handleCancel(_ cancel: Selfimprove_V1_Cancel, from route: Route) {
        let task = state.withLock { $0.endServing(ServedCall(route: route, callID: cancel.callID)) }
        task?.cancel()
    }

    private func execute(_ call: WireCall) async -> WireEnvelope {
        func failure(_ code: String, _ message: String) -> WireEnvelope {
            var envelope = WireEnvelope()
            envelope.error = .make(callID: call.callID, code: code, message: message)
            return envelope
        }
        let target: ClusterActorID
        do {
            target = try ClusterActorID(wire: call.target)
        } catch {
            return failure(RemoteCallError.protocolInvalid, "bad call target: \(error.message)")
        }
        guard target.node.incarnation == identity.incarnation else {
            return failure(RemoteCallError.incarnationMismatch, "\(target) belongs to another incarnation; this node is \(identity)")
        }
        guard let entry = methods.entry(named: call.method) else {
            return failure(RemoteCallError.methodUnknown, "no method '\(call.method)' is registered on \(configuration.nodeName)")
        }
        guard call.arguments.count == entry.arity else {
            return failure(RemoteCallError.argumentsInvalid, "\(call.method) takes \(entry.arity) argument(s), got \(call.arguments.count)")
        }
        guard let actor = state.withLock({ $0.localActors[target.name]?.actor }) else {
            return failure(RemoteCallError.actorNotFound, "no actor '\(target.name)' on \(configuration.nodeName)")
        }
        let arguments = WireArguments(method: call.method, encoded: call.arguments)
        var envelope = WireEnvelope()
        do {
            let result = try await entry.invoke(actor, arguments)
            var reply = WireReply()
            reply.callID = call.callID
            if let result { reply.result = try result.serializedData() }
            envelope.reply = reply
        } catch let error as RemoteCallError {
            envelope.error = .make(callID: call.callID, code: error.code, typeName: error.typeName, message: error.message)
        } catch {
            envelope.error = .make(callID: call.callID, code: RemoteCallError.remoteThrew,
                                   typeName: String(reflecting: type(of: error as any Error)), message: "\(error)")
        }
        metrics.callsServed.increment()
        return envelope
    }
}

/// Hands the event loop's events to the system once it exists, holding back (in order) any
/// that arrive between binding the ROUTER and the system's creation.
final class InboundDispatch: Sendable {
    private enum Target {
        case waiting([ZMQEvent])
        case attached(ClusterSystem)
    }

    private let target = Mutex(Target.waiting([]))

    func attach(_ system: ClusterSystem) {
        let held = target.withLock { target -> [ZMQEvent] in
            guard case let .waiting(events) = target else { return [] }
            target = .attached(system)
            return events
        }
        for event in held { system.handle(event) }
    }

    func handle(_ event: ZMQEvent) {
        let system = target.withLock { target -> ClusterSystem? in
            switch target {
            case var .waiting(events):
                events.append(event)
                target = .waiting(events)
                return nil
            case let .attached(system):
                return system
            }
        }
        system?.handle(event)
    }
}

/// Remembers when the receive path last reported traffic from each route, so a busy
/// connection updates the shared liveness state at most every 10 ms instead of per message.
struct HeardRecently {
    private var noted: [Route: ContinuousClock.Instant] = [:]

    mutating func shouldNote(_ route: Route) -> Bool {
        let now = ContinuousClock.now
        if let last = noted[route], now - last < .milliseconds(10) { return false }
        if noted.count > 4096 { noted.removeAll(keepingCapacity: true) }
        noted[route] = now
        return true
    }
}

/// Lower-case hex of some bytes, for logs.
func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: text, as: UTF8.self)
}
