import ActorCluster
import Foundation
import SwiftProtobuf
import Testing
import TestLogs
import Wire
import ZeroMQ

/// Peers that attack with volume rather than content: a flood of connections, and a peer that
/// sends calls but never reads the replies.
@Suite("Connection floods and peers that never read")
struct FloodAndSlowPeerTests {
    /// The resident memory of this process.
    private func residentBytes() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test(.timeLimit(.minutes(1)))
    func aFloodOfConnectionsNeitherStopsTheNodeNorLeavesStateBehind() async throws {
        let logs = CapturedLogs()
        try await withNodes(2, logs: logs) { nodes in
            let target = nodes[1].system.identity.endpoint
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)
            let knownBefore = nodes[1].system.knownEndpointCount

            // 300 connections at once: 100 silent, 200 sending a broken ZMTP greeting.
            var descriptors: [Int32] = []
            for index in 0 ..< 300 {
                guard let fd = connectTCP(to: target) else { continue }
                descriptors.append(fd)
                if index % 3 != 0 {
                    let greeting: [UInt8] = [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0] + Array("NOPE".utf8) + Array(repeating: 0, count: 48)
                    _ = greeting.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }  // no SIGPIPE if the node hung up
                }
            }
            #expect(descriptors.count == 300)
            // Meanwhile the node keeps answering a well-behaved peer.
            for sequence in 2 ..< 102 {
                #expect(try await remote.echo(echoRequest(UInt64(sequence))).sequence == UInt64(sequence))
            }
            try await eventually("the broken handshakes are counted as refused") {
                nodes[1].system.refusedConnectionCount >= 150
            }
            for fd in descriptors { close(fd) }
            // Refusals are logged, but at most 20 per 10 s: a flood cannot flood the log.
            let logged = logs.all.filter { $0.message == "Refused a connection" }
            #expect(!logged.isEmpty && logged.count <= 20)
            #expect(logged.allSatisfy { $0.metadata["reason"] != nil })
            // None of it became a peer the node keeps state for.
            #expect(nodes[1].system.knownEndpointCount == knownBefore)
            #expect(try await remote.echo(echoRequest(500)).sequence == 500)
        }
    }

    /// What a node holds for a peer is bounded: libzmq's high-water mark plus the event loop's
    /// `maxQueuedBytesPerDestination` (256 MiB by default; 16 MiB here, so the test can show
    /// the bound with 100 MiB of replies). Past it, messages to that peer are dropped, logged
    /// with its identity, and other peers are served as before.
    @Test(.timeLimit(.minutes(1)))
    func aPeerThatNeverReadsCannotGrowTheNodesMemoryOrBlockOthers() async throws {
        let logs = CapturedLogs()
        try await withNodes(2, logs: logs, configure: { index in
            var configuration = testConfiguration("node-\(index)")
            configuration.eventLoop.maxQueuedBytesPerDestination = 16 << 20
            // The production socket options otherwise: no ZMTP heartbeats (libzmq aborts the
            // stalled peer's process, this test process, when a PING reaches its stopped
            // input; see ZMQSocketOptions).
            return configuration
        }) { nodes in
            let node = nodes[1]
            let remote = try DiagnosticsActor.resolve(id: node.diagnostics.id, using: nodes[0].system)
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)
            let before = residentBytes()

            // 60,000 calls of 1 KiB each (60 MiB of replies) from a peer that never reads.
            // (The peer runs in this process too, so it makes its messages one at a time.)
            let calls = 60_000, payload = 1024
            let peerDone = DispatchSemaphore(value: 0)
            let peer = Thread {
                defer { peerDone.signal() }
                do {
                    let context = try ZMQContext()
                    var options = ZMQSocketOptions()
                    options.receiveHighWaterMark = 10
                    let socket = try ZMQSocket(context: context, type: .dealer, options: options)
                    try socket.connect(node.system.identity.endpoint)
                    func send(_ message: [[UInt8]]) throws { try socket.sendWaitingForRoom(message) }
                    try send(try wireMessage(fakeHandshake(endpoint: "tcp://127.0.0.1:9")))
                    for index in 0 ..< calls {
                        var call = WireCall()
                        call.callID = UInt64(index + 1)
                        call.target.node.endpoint = node.system.identity.endpoint
                        call.target.node.incarnation = node.system.identity.incarnation
                        call.target.name = node.diagnostics.id.name
                        call.method = "Diagnostics.echo"
                        call.arguments = [try echoRequest(UInt64(index), size: payload).serializedData()]
                        var envelope = WireEnvelope()
                        envelope.call = call
                        try send(try wireMessage(envelope))
                    }
                    // Hold the connection open without reading, then drain it and go away.
                    Thread.sleep(forTimeInterval: 3)
                    // (Bounded: the node's heartbeats keep coming.)
                    let deadline = ContinuousClock.now + .seconds(3)
                    while ContinuousClock.now < deadline, socket.waitReadable(timeoutMs: 300) {
                        while (try? socket.receive()) != nil {}
                    }
                } catch {}
            }
            peer.start()

            try await eventually(timeout: .seconds(30), "the node drops replies to the peer that does not read") {
                logs.all.contains { $0.message == "Dropping messages to a peer that does not read them" }
            }
            // Others are still served while the slow peer's queue is full.
            for sequence in 2 ..< 52 {
                #expect(try await remote.echo(echoRequest(UInt64(sequence), size: payload)).sequence == UInt64(sequence))
            }
            let warning = try #require(logs.all.first { $0.message == "Dropping messages to a peer that does not read them" })
            #expect(warning.metadata["peer"]?.contains("tcp://127.0.0.1:9") == true)
            // The node holds at most the bound for that peer, not the replies.
            #expect(node.system.queuedSendBytes <= 16 << 20)
            #expect(node.system.queuedSendBytes > 8 << 20, "the bound was not reached: \(node.system.queuedSendBytes) bytes")
            // (Resident memory is shared with the other tests of this process: a loose check.)
            let growth = residentBytes() - before
            #expect(growth < 200 << 20, "resident memory grew by \(growth >> 20) MiB")
            // Rate-limited: a handful of warnings, not one per dropped reply.
            #expect(logs.all.filter { $0.message == "Dropping messages to a peer that does not read them" }.count < 10)
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    peerDone.wait()
                    continuation.resume()
                }
            }
        }
    }
}
