import ActorCluster
import Foundation
import SwiftProtobuf
import Testing
import TestLogs
import Wire
import ZeroMQ

@Suite("Hostile and broken input")
struct HostileInputTests {
    @Test(.timeLimit(.minutes(1)))
    func garbageFramesAreLoggedAndTheNodeCarriesOn() async throws {
        let logs = CapturedLogs()
        try await withNodes(2, logs: logs) { nodes in
            let target = nodes[1].system.identity.endpoint
            let noBody = WireEnvelope()
            var generator = SystemRandomNumberGenerator()
            let random = (0 ..< 64).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let garbage: [[[UInt8]]] = [
                [random],                                             // one frame
                [[WireFraming.protocolVersion], random, random],     // three frames
                [[9], try noBody.serializedBytes()],                 // unknown protocol version
                [[WireFraming.protocolVersion], random],             // undecodable envelope
                [[WireFraming.protocolVersion], [0xFF, 0xFF, 0xFF]], // truncated protobuf
                [[WireFraming.protocolVersion], try noBody.serializedBytes()], // envelope without a body
                [[], []],                                            // empty frames
            ]
            _ = try await rawExchange(endpoint: target, send: garbage, replies: 0, timeout: .milliseconds(200))

            // Bytes that are not even ZMTP, on a plain TCP connection.
            try sendRawTCP(to: target, bytes: Array(repeating: 0xAB, count: 4096))

            try await eventually("every garbage frame is logged") {
                logs.all.filter { $0.message == "Rejected frame from peer" }.count >= garbage.count
            }
            let rejected = logs.all.filter { $0.message == "Rejected frame from peer" }
            #expect(rejected.allSatisfy { $0.metadata["peer"] != nil && $0.metadata["reason"] != nil })

            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            #expect(try await remote.echo(echoRequest(5)).sequence == 5)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func undecodableArgumentsComeBackAsAnErrorReply() async throws {
        try await withNodes(1) { nodes in
            let node = nodes[0]
            let envelope = diagnosticsCall(77, "Diagnostics.echo", arguments: [Data([0xFF, 0xFF, 0xFF, 0xFF])], on: node)
            let replies = try await rawExchange(
                endpoint: node.system.identity.endpoint,
                send: [try wireMessage(fakeHandshake()), try wireMessage(envelope)],
                replies: 10, timeout: .seconds(2))
            let errors = try replies.compactMap { frames -> WireErrorReply? in
                guard frames.count == 2 else { return nil }
                let reply = try WireEnvelope(serializedBytes: frames[1])
                if case let .error(error)? = reply.body { return error }
                return nil
            }
            let error = try #require(errors.first)
            #expect(error.callID == 77)
            #expect(error.code == RemoteCallError.argumentsInvalid)
            #expect(error.message.contains("EchoRequest"))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func frameOverTheSizeLimitIsDroppedWithoutHarmingOtherPeers() async throws {
        let logs = CapturedLogs()
        try await withNodes(2, logs: logs, configure: { index in
            var configuration = testConfiguration("node-\(index)")
            configuration.maxMessageSize = 1 << 20
            return configuration
        }) { nodes in
            let target = nodes[1].system.identity.endpoint
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)

            // A peer that ignores the limit: libzmq on the node drops its connection.
            let oversized: [[UInt8]] = [[WireFraming.protocolVersion], Array(repeating: 0x42, count: 2 << 20)]
            async let flood = rawExchange(endpoint: target, send: [oversized, oversized], replies: 1, timeout: .milliseconds(500))
            // Meanwhile a well-behaved peer keeps working.
            for sequence in 2 ..< 200 {
                #expect(try await remote.echo(echoRequest(UInt64(sequence))).sequence == UInt64(sequence))
            }
            let answered = try await flood
            #expect(answered.isEmpty)
            #expect(try await remote.echo(echoRequest(500)).sequence == 500)
        }
    }

    /// A frame made of empty repeated messages decodes into one allocation per two bytes: it
    /// is refused before decoding, while large ordinary calls still pass.
    @Test(.timeLimit(.minutes(1)))
    func aFrameThatWouldDecodeIntoFarMoreMemoryThanItsSizeIsRefusedBeforeDecoding() async throws {
        let logs = CapturedLogs()
        try await withNodes(2, logs: logs) { nodes in
            let node = nodes[1]
            // 512 Ki empty elements of field 1: 1 MiB on the wire.
            let envelope = diagnosticsCall(78, "Diagnostics.echo", arguments: [emptyRepeatedElements(bytes: 1 << 20)], on: node)
            let replies = try await rawExchange(endpoint: node.system.identity.endpoint,
                                                send: [try wireMessage(fakeHandshake()), try wireMessage(envelope)], replies: 10, timeout: .seconds(1))
            #expect(!replies.contains { frames in
                guard frames.count == 2, let reply = try? WireEnvelope(serializedBytes: frames[1]) else { return false }
                if case let .error(error)? = reply.body { return error.callID == 78 }
                return false
            }, "the call was decoded and answered")
            try await eventually("the frame is refused before decoding") {
                logs.all.contains { $0.message == "Rejected frame from peer" && $0.metadata["reason"]?.description.contains("refused before decoding") == true }
            }
            // An ordinary call of the same size is served.
            let remote = try DiagnosticsActor.resolve(id: node.diagnostics.id, using: nodes[0].system)
            #expect(try await remote.echo(echoRequest(9, size: 1 << 20)).sequence == 9)
        }
    }

    /// A peer that floods calls cannot start unbounded work: past its in-flight bound the node
    /// answers at once with `Overloaded`, and the calls it took are answered as usual.
    @Test(.timeLimit(.minutes(1)))
    func callsBeyondAPeersInFlightBoundAreRefusedAsOverloaded() async throws {
        try await withNodes(1, configure: { index in
            var configuration = testConfiguration("node-\(index)")
            configuration.maxCallsInFlightPerPeer = 10
            return configuration
        }) { nodes in
            let node = nodes[0]
            var sleep = Selfimprove_V1_SleepRequest()
            sleep.milliseconds = 1000
            let argument = try sleep.serializedData()
            let calls = try (1 ... 15).map { try wireMessage(diagnosticsCall(UInt64($0), "Diagnostics.sleep", arguments: [argument], on: node)) }
            let replies = try await rawExchange(endpoint: node.system.identity.endpoint, send: [try wireMessage(fakeHandshake())] + calls,
                                                replies: 100, timeout: .seconds(3))
            let (refused, answered) = try overloadedAndAnswered(replies)
            #expect(refused.sorted() == Array(11 ... 15))
            #expect(answered.sorted() == Array(1 ... 10))
        }
    }

    /// Calls are bounded by the bytes they hold too: past `maxCallBytesInFlight`, more calls
    /// are refused as `Overloaded` however few are running.
    @Test(.timeLimit(.minutes(1)))
    func callsBeyondTheBytesInFlightBoundAreRefusedAsOverloaded() async throws {
        try await withNodes(1, configure: { index in
            var configuration = testConfiguration("node-\(index)")
            configuration.maxCallBytesInFlight = 5 << 20
            return configuration
        }) { nodes in
            let node = nodes[0]
            var sleep = Selfimprove_V1_SleepRequest()
            sleep.milliseconds = 1000
            // A 2 MiB unknown field (number 15, length-delimited) rides along; decoding keeps it.
            var argument = try sleep.serializedData()
            argument.append(contentsOf: [0x7A, 0x80, 0x80, 0x80, 0x01])
            argument.append(Data(count: 2 << 20))
            let calls = try (1 ... 4).map { try wireMessage(diagnosticsCall(UInt64($0), "Diagnostics.sleep", arguments: [argument], on: node)) }
            let replies = try await rawExchange(endpoint: node.system.identity.endpoint, send: [try wireMessage(fakeHandshake())] + calls,
                                                replies: 100, timeout: .seconds(3))
            let (refused, answered) = try overloadedAndAnswered(replies)
            #expect(refused.sorted() == [3, 4])
            #expect(answered.sorted() == [1, 2])
        }
    }

    @Test func theBudgetCountsNestedFieldsAndLetsOrdinaryMessagesThrough() throws {
        // Empty elements: one field per two bytes.
        let empties = emptyRepeatedElements(bytes: 40_000)
        #expect(WireAllocationBudget.countFields(empties, limit: .max) == 20_000)
        #expect(WireAllocationBudget.refusal(empties) != nil)
        // The same inside a call inside an envelope is found too.
        var call = WireCall()
        call.method = "Diagnostics.echo"
        call.arguments = [empties]
        var envelope = WireEnvelope()
        envelope.call = call
        #expect(WireAllocationBudget.refusal(try envelope.serializedBytes() as [UInt8]) != nil)
        // A large ordinary message passes.
        var ordinary = WireEnvelope()
        var echo = WireCall()
        echo.method = "Diagnostics.echo"
        echo.arguments = (0 ..< 64).map { try! echoRequest(UInt64($0), size: 4096).serializedData() }
        ordinary.call = echo
        let bytes: [UInt8] = try ordinary.serializedBytes()
        #expect(WireAllocationBudget.refusal(bytes) == nil)
        #expect(WireAllocationBudget.countFields(bytes, limit: .max) < 1000)
    }

    @Test(.timeLimit(.minutes(1)))
    func handshakeWithAnotherProtocolVersionIsRefused() async throws {
        try await withNodes(1) { nodes in
            var handshake = fakeHandshake()
            handshake.handshake.protocolVersion = 99
            let replies = try await rawExchange(
                endpoint: nodes[0].system.identity.endpoint, send: [try wireMessage(handshake)], replies: 1, timeout: .seconds(2))
            let reply = try #require(replies.first)
            let envelope = try WireEnvelope(serializedBytes: reply[1])
            guard case let .handshakeReject(reject)? = envelope.body else {
                Issue.record("expected a HandshakeReject, got \(envelope)")
                return
            }
            #expect(reject.reason.contains("99"))
        }
    }
}

/// Writes bytes on a plain TCP connection (no ZMTP) to a `tcp://host:port` endpoint.
func sendRawTCP(to endpoint: String, bytes: [UInt8]) throws {
    guard let fd = connectTCP(to: endpoint) else { throw TestFailure("connect to \(endpoint) failed") }
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }  // no SIGPIPE if the node hung up
}

/// Opens a plain TCP connection to a `tcp://host:port` endpoint (nil if refused or malformed).
func connectTCP(to endpoint: String) -> Int32? {
    let address = endpoint.replacingOccurrences(of: "tcp://", with: "")
    guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else { return nil }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var inet = sockaddr_in()
    inet.sin_family = sa_family_t(AF_INET)
    inet.sin_port = port.bigEndian
    inet.sin_addr.s_addr = inet_addr(String(address[..<colon]))
    let connected = withUnsafePointer(to: &inet) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        return nil
    }
    return fd
}
