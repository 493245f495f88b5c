import SwiftProtobuf
import ActorCluster
import Distributed
import Foundation
import Logging
import ProcessSupervision
import Synchronization
import Testing
import TestLogs
import Wire
import ZeroMQ

/// Settings that make failure detection quick in tests.
func testConfiguration(_ name: String, bind: String = "tcp://127.0.0.1:*") -> ClusterSystemConfiguration {
    var configuration = ClusterSystemConfiguration()
    configuration.nodeName = name
    configuration.bindEndpoint = bind
    configuration.heartbeatInterval = .milliseconds(100)
    configuration.failureTimeout = .milliseconds(2000)
    configuration.tick = .milliseconds(20)
    configuration.callTimeout = .seconds(20)
    return configuration
}

/// Starts a node hosting a checked-in diagnostics actor.
func startNode(_ name: String, configuration: ClusterSystemConfiguration? = nil, logs: CapturedLogs = CapturedLogs())
    async throws -> (ClusterSystem, DiagnosticsActor)
{
    let system = try await ClusterSystem.start(configuration: configuration ?? testConfiguration(name), logger: logs.logger())
    try await system.register(DiagnosticsActor.self)
    let diagnostics = DiagnosticsActor(actorSystem: system)
    try system.receptionist.checkIn(diagnostics, with: DiagnosticsActor.key)
    return (system, diagnostics)
}

/// Runs `body` with `count` started nodes and shuts every one down afterwards, also on error.
func withNodes(
    _ count: Int, logs: CapturedLogs = CapturedLogs(),
    configure: (Int) -> ClusterSystemConfiguration = { testConfiguration("node-\($0)") },
    _ body: ([(system: ClusterSystem, diagnostics: DiagnosticsActor)]) async throws -> Void
) async throws {
    var nodes: [(system: ClusterSystem, diagnostics: DiagnosticsActor)] = []
    do {
        for index in 0 ..< count {
            let node = try await startNode("node-\(index)", configuration: configure(index), logs: logs)
            nodes.append((node.0, node.1))
        }
        try await body(nodes)
    } catch {
        for node in nodes { await node.system.shutdown() }
        throw error
    }
    for node in nodes { await node.system.shutdown() }
}

/// Builds an echo request with a recognisable payload.
func echoRequest(_ sequence: UInt64, size: Int = 16) -> Selfimprove_V1_EchoRequest {
    var request = Selfimprove_V1_EchoRequest()
    request.sequence = sequence
    request.payload = Data((0 ..< size).map { UInt8(truncatingIfNeeded: Int(sequence) &+ $0) })
    return request
}

/// Waits until `condition` holds, polling every 20 ms, for at most `timeout`.
func eventually(
    timeout: Duration = .seconds(10), _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for: \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

/// The `selfimprove` executable built next to the test bundle (or `$SELFIMPROVE_BIN`).
func selfimproveExecutable() throws -> String {
    guard let path = ChildProcess.siblingExecutable(named: "selfimprove") else {
        throw TestFailure("selfimprove executable not found; run `swift build` first or set SELFIMPROVE_BIN")
    }
    return path
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A `selfimprove peer` child process.
struct PeerProcess {
    let process: ChildProcess
    /// The advertised endpoint (what actor ids carry).
    let endpoint: String
    /// The endpoint the peer's socket is bound to.
    let bound: String
    let incarnation: UInt64

    static func launch(_ arguments: [String] = []) async throws -> PeerProcess {
        let process = try ChildProcess(executable: try selfimproveExecutable(), arguments: ["peer", "--log-level", "warning"] + arguments)
        guard let line = await process.nextLine(timeout: .seconds(60)),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let endpoint = object["endpoint"] as? String,
              let incarnation = (object["incarnation"] as? String).flatMap({ UInt64($0) })
        else {
            await process.stop()
            throw TestFailure("peer did not start: \(process.standardErrorTail)")
        }
        return PeerProcess(process: process, endpoint: endpoint, bound: object["bound"] as? String ?? endpoint, incarnation: incarnation)
    }

    var diagnosticsID: ClusterActorID {
        ClusterActorID(node: NodeIdentity(endpoint: endpoint, incarnation: incarnation), name: "DiagnosticsActor-1")
    }
}

/// A bare ZeroMQ DEALER run on a thread of its own (blocking calls stay off the Swift pool):
/// sends the given messages, then collects replies until `replies` arrived or `timeout` (with
/// `replies: 0` it waits the whole `timeout`, so the messages leave before the socket closes).
func rawExchange(
    endpoint: String, send messages: [[[UInt8]]], replies: Int, timeout: Duration = .seconds(5),
    options: ZMQSocketOptions = ZMQSocketOptions()
) async throws -> [[[UInt8]]] {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                let context = try ZMQContext()
                let socket = try ZMQSocket(context: context, type: .dealer, options: options)
                try socket.connect(endpoint)
                for message in messages { try socket.sendWaitingForRoom(message) }
                var received: [[[UInt8]]] = []
                let deadline = ContinuousClock.now + timeout
                while received.count < replies || replies == 0, ContinuousClock.now < deadline {
                    if let frames = try socket.receive() {
                        received.append(frames)
                    } else {
                        _ = socket.waitReadable(timeoutMs: 50)
                    }
                }
                continuation.resume(returning: received)
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.start()
    }
}

/// Frames of one wire message: `[version][envelope]`.
func wireMessage(_ envelope: WireEnvelope) throws -> [[UInt8]] {
    [[WireFraming.protocolVersion], try envelope.serializedBytes()]
}

/// A handshake envelope from a made-up node.
func fakeHandshake(endpoint: String = "tcp://127.0.0.1:1") -> WireEnvelope {
    var handshake = WireHandshake()
    handshake.protocolVersion = UInt32(WireFraming.protocolVersion)
    handshake.from.endpoint = endpoint
    handshake.from.incarnation = 42
    var envelope = WireEnvelope()
    envelope.handshake = handshake
    return envelope
}

extension ZMQSocket {
    /// Sends `message`, retrying every millisecond while the socket is at its high-water mark
    /// (test peers run on plain threads, without the event loop's queue).
    func sendWaitingForRoom(_ message: [[UInt8]]) throws {
        while true {
            do {
                try send(message)
                return
            } catch let error as ZMQError where error.code == .wouldBlock {
                Thread.sleep(forTimeInterval: 0.001)
            }
        }
    }
}

/// A call envelope to the diagnostics actor of `node`, as a raw peer sends it.
func diagnosticsCall(_ id: UInt64, _ method: String, arguments: [Data],
                     on node: (system: ClusterSystem, diagnostics: DiagnosticsActor)) -> WireEnvelope {
    var envelope = WireEnvelope()
    envelope.call.callID = id
    envelope.call.method = method
    envelope.call.arguments = arguments
    envelope.call.target.node.endpoint = node.system.identity.endpoint
    envelope.call.target.node.incarnation = node.system.identity.incarnation
    envelope.call.target.name = node.diagnostics.id.name
    return envelope
}

/// The call ids of raw replies: those refused as `Overloaded` and those answered.
func overloadedAndAnswered(_ replies: [[[UInt8]]]) throws -> (refused: [UInt64], answered: [UInt64]) {
    var refused: [UInt64] = [], answered: [UInt64] = []
    for frames in replies where frames.count == 2 {
        switch try WireEnvelope(serializedBytes: frames[1]).body {
        case let .error(error)? where error.typeName == "Overloaded": refused.append(error.callID)
        case let .reply(reply)?: answered.append(reply.callID)
        default: break
        }
    }
    return (refused, answered)
}

/// `bytes` bytes of empty elements of field 1 (`0x0A 0x00` pairs): one decoded element per two bytes.
func emptyRepeatedElements(bytes: Int) -> Data {
    Data((0 ..< bytes).map { $0 % 2 == 0 ? 0x0A : 0x00 })
}
