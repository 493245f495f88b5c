import ActorCluster
import CVerifierBuild
import Distributed
import Foundation
import ProcessSupervision
import SwiftProtobuf
import TestFiles
import Testing
import TestLogs
import Wire
import ZeroMQ

/// The verifier's methods as a caller sees them (the Swift verifier lives in ClusterNodes):
/// resolving the C node's actor as this type gives typed calls by the protocol's stable names.
distributed actor VerifierStub: ClusterCallable {
    typealias ActorSystem = ClusterSystem

    static let key = ReceptionKey<VerifierStub>("verifiers")

    static let wireMethods: [WireMethod<VerifierStub>] = [
        .init("Verifier.scoreGroups") { try await $0.scoreGroups($1.next()) },
        .init("Verifier.finish") { actor, _ in try await actor.finish() },
    ]

    distributed func scoreGroups(_ batch: Selfimprove_V1_ScoreBatch) -> Selfimprove_V1_ScoreBatchReply { Selfimprove_V1_ScoreBatchReply() }

    distributed func finish() -> Selfimprove_V1_Empty { Selfimprove_V1_Empty() }
}

/// A running `selfimprove-c-verifier` (the AddressSanitizer build).
struct CVerifierProcess {
    let process: ChildProcess
    let endpoint: String
    let incarnation: UInt64

    /// Starts the node and waits for its "Listening" line.
    static func start(_ arguments: [String]) async throws -> CVerifierProcess {
        let binaries = try CVerifierBuild.build(sanitized: true)
        let process = try ChildProcess(executable: binaries.node.path, arguments: ["--heartbeat-ms", "100", "--failure-timeout-ms", "2000"] + arguments,
                                       unblockingSignals: true)
        for _ in 0 ..< 200 {
            let log = process.standardErrorTail
            if let line = log.split(separator: "\n").first(where: { $0.contains("Listening") }),
               let endpoint = Self.value(of: "endpoint", in: String(line)), let incarnation = Self.value(of: "incarnation", in: String(line)).flatMap({ UInt64($0, radix: 16) })
            {
                return CVerifierProcess(process: process, endpoint: endpoint, incarnation: incarnation)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        await process.stop()
        throw TestFailure("the C verifier did not start: \(process.standardErrorTail)")
    }

    /// `key=value` or `key="value"` of a log line.
    static func value(of key: String, in line: String) -> String? {
        guard let range = line.range(of: " \(key)=") else { return nil }
        var rest = line[range.upperBound...]
        if rest.hasPrefix("\"") {
            rest = rest.dropFirst()
            return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
        }
        return String(rest.prefix { $0 != " " })
    }

    var actorID: ClusterActorID { ClusterActorID(node: NodeIdentity(endpoint: endpoint, incarnation: incarnation), name: "verifier") }

    var log: String { process.standardErrorTail }

    /// Stops it with SIGTERM; returns the exit status and checks the sanitizers stayed quiet.
    @discardableResult
    func stop(sourceLocation: SourceLocation = #_sourceLocation) async -> Int32 {
        let status = await process.stop(grace: .seconds(10))
        #expect(!log.contains("Sanitizer"), "\(log.suffix(4000))", sourceLocation: sourceLocation)
        return status
    }
}

/// The C verifier node (`peers/c-verifier`) against the Swift actor system and raw frames:
/// the protocol page's handshake, listing, calls, errors, cancellation, failure detection and
/// CURVE, and the hostile input the Swift nodes are tested with, under AddressSanitizer.
@Suite("C verifier node", .serialized)
struct CVerifierNodeTests {
    private func batch(_ paths: [[String]], critic: String = "") -> Selfimprove_V1_ScoreBatch {
        var batch = Selfimprove_V1_ScoreBatch()
        batch.groups = paths.enumerated().map { index, texts in
            var group = Selfimprove_V1_ScoreRequest()
            group.questionID = "q-\(index)"
            group.question = "What is 5 + 3?"
            group.answerKind = "number"
            group.paths = texts
            group.critic = critic
            return group
        }
        return batch
    }

    /// Runs `body` with a started node and stops it afterwards, also when `body` throws.
    /// - Returns: The node's exit status after SIGTERM (130 when it stopped as asked).
    private func withNode(_ arguments: [String], _ body: (CVerifierProcess) async throws -> Void) async throws -> Int32 {
        let node = try await CVerifierProcess.start(arguments)
        do {
            try await body(node)
        } catch {
            await node.stop()
            throw error
        }
        return await node.stop()
    }

    private func coordinatorStandIn(_ name: String = "coordinator", bind: String = "tcp://127.0.0.1:*", logs: CapturedLogs = CapturedLogs(),
                                    security: ClusterSystemConfiguration.Security? = nil) async throws -> ClusterSystem
    {
        var configuration = testConfiguration(name, bind: bind)
        configuration.security = security
        let system = try await ClusterSystem.start(configuration: configuration, logger: logs.logger())
        try await system.register(VerifierStub.self)
        return system
    }

    @Test(.timeLimit(.minutes(1)))
    func itJoinsListsItselfScoresAndStopsWhenTheRunIsOver() async throws {
        let coordinator = try await coordinatorStandIn()
        let node = try await CVerifierProcess.start(["--name", "c-verifier", "--coordinator", coordinator.identity.endpoint])
        do {
            try await eventually("the C node is listed under 'verifiers'") { coordinator.receptionist.lookup(VerifierStub.key).count == 1 }
            let verifier = try #require(coordinator.receptionist.lookup(VerifierStub.key).first)
            #expect(verifier.id == node.actorID)
            let reply = try await verifier.scoreGroups(batch([["5 + 3 = 8", "5 + 3 = 9", "", "no steps"], ["2 * 3 = 6 and 6 - 1 = 4"]]))
            #expect(reply.verifier == "c-verifier")
            #expect(reply.groups.map { $0.scores.map(\.combined) } == [[1, 0, 0, 0.5], [0.5]])
            // A judge critic is an error of the method, as the Swift verifier's.
            await #expect(throws: RemoteCallError.self) { _ = try await verifier.scoreGroups(batch([["5 + 3 = 8"]], critic: "value")) }
            // Heartbeats keep the association up well past the failure timeout.
            try await Task.sleep(for: .seconds(3))
            #expect(coordinator.upNodes.contains(NodeIdentity(endpoint: node.endpoint, incarnation: node.incarnation)))
            // Verifier.finish: it answers, says goodbye (an empty snapshot) and exits with 0.
            _ = try await verifier.finish()
            #expect(await node.process.waitForExit() == 0)
            try await eventually("the listing is empty") { coordinator.receptionist.lookup(VerifierStub.key).isEmpty }
            #expect(!node.log.contains("Sanitizer"), "\(node.log)")
        } catch {
            await node.stop()
            await coordinator.shutdown()
            throw error
        }
        await coordinator.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func badCallsGetTheProtocolsErrorsAndACancelledCallNoAnswer() async throws {
        let status = try await withNode(["--name", "c-verifier", "--score-delay-ms", "300"]) { node in
            var target = Selfimprove_V1_ActorIdentity()
            target.node.endpoint = node.endpoint
            target.node.incarnation = node.incarnation
            target.name = "verifier"
            func call(_ id: UInt64, _ method: String, _ arguments: [Data], target: Selfimprove_V1_ActorIdentity?) -> WireEnvelope {
                var envelope = WireEnvelope()
                envelope.call.callID = id
                envelope.call.method = method
                envelope.call.arguments = arguments
                if let target { envelope.call.target = target }
                return envelope
            }
            var otherIncarnation = target
            otherIncarnation.node.incarnation = node.incarnation ^ 1
            var otherActor = target
            otherActor.name = "someone"
            let scoring = try batch([["5 + 3 = 8"]]).serializedData()
            var cancel = WireEnvelope()
            cancel.cancel.callID = 20
            let messages: [WireEnvelope] = [
                fakeHandshake(),
                call(1, "Verifier.scoreGroups", [scoring], target: nil),
                call(2, "Verifier.scoreGroups", [scoring], target: otherIncarnation),
                call(3, "Verifier.rank", [scoring], target: target),
                call(4, "Verifier.scoreGroups", [], target: target),
                call(5, "Verifier.scoreGroups", [scoring], target: otherActor),
                call(6, "Verifier.scoreGroups", [Data([0xFF, 0xFF, 0xFF, 0xFF, 0x0F])], target: target),
                call(7, "Verifier.scoreGroups", [try batch([["x"]], critic: "process").serializedData()], target: target),
                // Only the coordinator, over the connection the node opened to it, may finish it.
                call(8, "Verifier.finish", [], target: target),
                // Scored group by group, 300 ms each: the cancel arrives before its first group.
                call(20, "Verifier.scoreGroups", [try batch([["1 + 1 = 2"], ["1 + 1 = 2"], ["1 + 1 = 2"]]).serializedData()], target: target),
                cancel,
                call(21, "Verifier.scoreGroups", [scoring], target: target),
            ]
            let replies = try await rawExchange(endpoint: node.endpoint, send: try messages.map(wireMessage), replies: 40, timeout: .seconds(4))
            var errors: [UInt64: WireErrorReply] = [:]
            var answered: [UInt64: Data] = [:]
            var accepted = false
            for frames in replies where frames.count == 2 {
                switch try WireEnvelope(serializedBytes: frames[1]).body {
                case let .error(error)?: errors[error.callID] = error
                case let .reply(reply)?: answered[reply.callID] = reply.result
                case let .handshakeAccept(accept)?: accepted = accept.from.incarnation == node.incarnation
                default: break
                }
            }
            #expect(accepted)
            #expect(errors[1]?.code == RemoteCallError.protocolInvalid)
            #expect(errors[2]?.code == RemoteCallError.incarnationMismatch)
            #expect(errors[3]?.code == RemoteCallError.methodUnknown)
            #expect(errors[4]?.code == RemoteCallError.argumentsInvalid)
            #expect(errors[5]?.code == RemoteCallError.actorNotFound)
            #expect(errors[6]?.code == RemoteCallError.argumentsInvalid)
            #expect(errors[7]?.code == RemoteCallError.remoteThrew)
            #expect(errors[7]?.message == "critic 'process' needs a judge_backend on this verifier")
            #expect(errors[8]?.typeName == "Unauthorized", "\(String(describing: errors[8]))")
            #expect(errors[20] == nil && answered[20] == nil, "a cancelled call is not answered")
            let scored = try Selfimprove_V1_ScoreBatchReply(serializedBytes: try #require(answered[21], "call 21 not answered"))
            #expect(scored.groups.map { $0.scores.map(\.combined) } == [[1]])
            #expect(answered.count == 1 && errors.count == 8, "exactly one answer per call: \(answered.keys) \(errors.keys)")
        }
        // Still running when stopped: the forged finish did not end it.
        #expect(status == 130)
    }

    @Test(.timeLimit(.minutes(1)))
    func callsBeyondItsQueueAreRefusedNotHoarded() async throws {
        let status = try await withNode(["--name", "c-verifier", "--score-delay-ms", "1000"]) { node in
            let scoring = try batch([["5 + 3 = 8"]]).serializedData()
            let calls = try (1 ... 258).map { id -> [[UInt8]] in
                var envelope = WireEnvelope()
                envelope.call.callID = UInt64(id)
                envelope.call.method = "Verifier.scoreGroups"
                envelope.call.arguments = [scoring]
                envelope.call.target.node.endpoint = node.endpoint
                envelope.call.target.node.incarnation = node.incarnation
                envelope.call.target.name = "verifier"
                return try wireMessage(envelope)
            }
            let replies = try await rawExchange(endpoint: node.endpoint, send: [try wireMessage(fakeHandshake())] + calls, replies: 1000,
                                                timeout: .milliseconds(1800))
            let (refused, answered) = try overloadedAndAnswered(replies)
            // 256 wait (the first is answered after its second of scoring); the last two are refused.
            #expect(refused.sorted() == [257, 258])
            #expect(answered == [1])
        }
        #expect(status == 130)
    }

    @Test(.timeLimit(.minutes(1)))
    func aFloodOfHandshakesCannotLockPeersOut() async throws {
        let status = try await withNode(["--name", "c-verifier", "--max-associations", "2"]) { node in
            // Three connections handshake in turn (each stays associated); the table holds two,
            // so the third makes room by forgetting the first instead of being refused.
            for peer in 1 ... 3 {
                let replies = try await rawExchange(endpoint: node.endpoint, send: [try wireMessage(fakeHandshake(endpoint: "tcp://127.0.0.1:\(peer)"))],
                                                    replies: 1, timeout: .seconds(2))
                let first = try #require(replies.first, "peer \(peer) got no answer")
                guard case .handshakeAccept? = try WireEnvelope(serializedBytes: first[1]).body else {
                    Issue.record("peer \(peer) was not accepted")
                    continue
                }
            }
            let accepted = node.log.components(separatedBy: "Node up").count - 1
            #expect(accepted == 3, "\(node.log)")
        }
        #expect(status == 130)
    }

    @Test(.timeLimit(.minutes(2)))
    func hostileFramesAreLoggedAndTheNodeCarriesOn() async throws {
        let status = try await withNode(["--name", "c-verifier"]) { node in
            var generator = SystemRandomNumberGenerator()
            let random = (0 ..< 64).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let noBody = WireEnvelope()
            // The cases of HostileInputTests.
            let garbage: [[[UInt8]]] = [
                [random],
                [[WireFraming.protocolVersion], random, random],
                [[9], try noBody.serializedBytes()],
                [[WireFraming.protocolVersion], random],
                [[WireFraming.protocolVersion], [0xFF, 0xFF, 0xFF]],
                [[WireFraming.protocolVersion], try noBody.serializedBytes()],
                [[], []],
            ]
            _ = try await rawExchange(endpoint: node.endpoint, send: garbage, replies: 0, timeout: .milliseconds(300))
            try sendRawTCP(to: node.endpoint, bytes: Array(repeating: 0xAB, count: 4096))
            // A frame over the 64 MiB limit: libzmq drops that connection.
            let oversized: [[UInt8]] = [[WireFraming.protocolVersion], Array(repeating: 0x42, count: (64 << 20) + 1)]
            let flood = try await rawExchange(endpoint: node.endpoint, send: [oversized], replies: 1, timeout: .milliseconds(1500))
            #expect(flood.isEmpty)
            // Another protocol version is refused, naming it.
            var handshake = fakeHandshake()
            handshake.handshake.protocolVersion = 99
            let refused = try await rawExchange(endpoint: node.endpoint, send: [try wireMessage(handshake)], replies: 1, timeout: .seconds(2))
            guard case let .handshakeReject(reject)? = try WireEnvelope(serializedBytes: try #require(refused.first)[1]).body else {
                Issue.record("expected a HandshakeReject")
                throw CancellationError()
            }
            #expect(reject.reason.contains("99"))
            // Traffic without a handshake is answered with AssociationUnknown.
            var heartbeat = WireEnvelope()
            heartbeat.heartbeat = WireHeartbeat()
            let unknown = try await rawExchange(endpoint: node.endpoint, send: [try wireMessage(heartbeat)], replies: 1, timeout: .seconds(2))
            if case .associationUnknown? = try WireEnvelope(serializedBytes: try #require(unknown.first)[1]).body {} else {
                Issue.record("expected AssociationUnknown")
            }
            // A call of 512 Ki empty elements (1 MiB) is refused before protobuf-c unpacks it.
            var call = WireCall()
            call.callID = 5
            call.method = "Verifier.scoreGroups"
            call.arguments = [emptyRepeatedElements(bytes: 1 << 20)]
            var costly = WireEnvelope()
            costly.call = call
            _ = try await rawExchange(endpoint: node.endpoint, send: [try wireMessage(fakeHandshake()), try wireMessage(costly)], replies: 0,
                                      timeout: .milliseconds(500))
            try await eventually("the costly frame is refused before decoding") { node.log.contains("refused before decoding") }
            #expect(node.log.components(separatedBy: "Rejected frame from peer").count - 1 >= garbage.count, "\(node.log)")
            // It still serves a well-formed call.
            let coordinator = try await coordinatorStandIn()
            let verifier = try VerifierStub.resolve(id: node.actorID, using: coordinator)
            _ = try await coordinator.join(node.endpoint, timeout: .seconds(5))
            #expect(try await verifier.scoreGroups(batch([["5 + 3 = 8"]])).groups.first?.scores.first?.combined == 1)
            await coordinator.shutdown()
            #expect(node.process.isRunning)
        }
        #expect(status == 130)
    }

    @Test(.timeLimit(.minutes(1)))
    func aPausedNodeIsDeclaredDownAndRejoinsAndItFindsARestartedCoordinator() async throws {
        let port = try freeLoopbackPort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        var coordinator = try await coordinatorStandIn(bind: endpoint)
        let node = try await CVerifierProcess.start(["--name", "c-verifier", "--coordinator", endpoint])
        do {
            try await eventually("listed") { coordinator.receptionist.lookup(VerifierStub.key).count == 1 }
            // Paused past the failure timeout: declared down, its listing gone.
            node.process.send(signal: SIGSTOP)
            try await eventually("declared down") { coordinator.receptionist.lookup(VerifierStub.key).isEmpty }
            // Resumed: its traffic gets AssociationUnknown, it handshakes again and is listed again.
            node.process.send(signal: SIGCONT)
            try await eventually("listed again") { coordinator.receptionist.lookup(VerifierStub.key).count == 1 }
            // The coordinator restarts on the same endpoint (a new incarnation): the node finds it.
            await coordinator.shutdown()
            try await eventually("the node declares the coordinator down") { node.log.contains("Node down") }
            coordinator = try await coordinatorStandIn(bind: endpoint)
            try await eventually("listed on the new coordinator") { coordinator.receptionist.lookup(VerifierStub.key).count == 1 }
            let verifier = try #require(coordinator.receptionist.lookup(VerifierStub.key).first)
            #expect(try await verifier.scoreGroups(batch([["5 + 3 = 8"]])).groups.first?.scores.first?.combined == 1)
        } catch {
            await node.stop()
            await coordinator.shutdown()
            throw error
        }
        #expect(await node.stop() == 130)
        await coordinator.shutdown()
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE (zmq_has(\"curve\") is 0)"))
    func withCurveItAdmitsOnlyTheConfigsNodes() async throws {
        let folder = try TestFiles.temporaryFolder("c-verifier-keys")
        defer { try? FileManager.default.removeItem(at: folder) }
        var pairs: [String: ZMQCurveKeyPair] = [:]
        for name in ["cluster", "coordinator", "c-verifier", "member", "intruder"] {
            let pair = try ZMQCurveKeyPair.generate()
            pairs[name] = pair
            try (pair.secretKey + "\n").write(to: folder.appendingPathComponent("\(name).key"), atomically: true, encoding: .utf8)
            try (pair.publicKey + "\n").write(to: folder.appendingPathComponent("\(name).pub"), atomically: true, encoding: .utf8)
        }
        let members = ["coordinator", "c-verifier", "member"]
        func security(_ name: String) throws -> ClusterSystemConfiguration.Security {
            .init(serverKeyPair: try #require(pairs["cluster"]), nodeKeyPair: try #require(pairs[name]),
                  allowedPublicKeys: Set(members.compactMap { pairs[$0]?.publicKey }), domain: "selfimprove/test")
        }
        let coordinator = try await coordinatorStandIn(security: try security("coordinator"))
        let node = try await CVerifierProcess.start([
            "--name", "c-verifier", "--coordinator", coordinator.identity.endpoint, "--curve-keys", folder.path, "--curve-key-name", "c-verifier",
            "--curve-domain", "selfimprove/test", "--curve-allow", members.joined(separator: ","),
        ])
        let member = try await coordinatorStandIn("member", security: try security("member"))
        let intruder = try await coordinatorStandIn("intruder", security: try security("intruder"))
        do {
            // As a CURVE client: it joins the coordinator and is called back over the connection.
            try await eventually("listed") { coordinator.receptionist.lookup(VerifierStub.key).count == 1 }
            let verifier = try #require(coordinator.receptionist.lookup(VerifierStub.key).first)
            #expect(try await verifier.scoreGroups(batch([["5 + 3 = 8"]])).groups.first?.scores.first?.combined == 1)
            // As a CURVE server: a node of the config gets in, one outside it does not.
            _ = try await member.join(node.endpoint, timeout: .seconds(5))
            await #expect(throws: ClusterError.self) { _ = try await intruder.join(node.endpoint, timeout: .milliseconds(1500)) }
            #expect(node.log.contains("Refused a CURVE client key=\(try #require(pairs["intruder"]).publicKey)"), "\(node.log)")
        } catch {
            await node.stop()
            for system in [coordinator, member, intruder] { await system.shutdown() }
            throw error
        }
        #expect(await node.stop() == 130)
        for system in [coordinator, member, intruder] { await system.shutdown() }
    }
}

/// A free loopback TCP port (bound to port 0 and released).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
