import ProcessSupervision
import ActorCluster
import Foundation
import Testing
import Wire

/// Nodes in separate OS processes (`selfimprove peer`) over TCP loopback. Serialized: these
/// tests kill and pause processes and check failure-detection bounds.
@Suite("Across processes", .serialized)
struct MultiProcessTests {
    /// Calls to a lost peer must fail through failure detection (the default failure timeout is
    /// 2 s), not by running to their end (they sleep 30 s). The bound is that generous on purpose:
    /// it catches a detector that never fires, not one that is a little slow on a loaded machine.
    static let detectionBound: Duration = .seconds(15)

    /// Waits for the peer's diagnostics actor to be listed on `system`.
    private func diagnostics(of peer: PeerProcess, on system: ClusterSystem) async throws -> DiagnosticsActor {
        for await listing in system.receptionist.listing(DiagnosticsActor.key) {
            if let actor = listing.first(where: { $0.id.node.endpoint == peer.endpoint && $0.id.node.incarnation == peer.incarnation }) {
                return actor
            }
        }
        throw TestFailure("listing ended")
    }

    /// Runs `body` with a `selfimprove peer` process and a local node, stopping both after, also
    /// on error (a paused peer is resumed first so that it can exit).
    private func withPeer(
        _ arguments: [String] = [], _ body: (PeerProcess, ClusterSystem) async throws -> Void
    ) async throws {
        let peer = try await PeerProcess.launch(arguments)
        let node: ClusterSystem
        do {
            node = try await startNode("caller").0
        } catch {
            await peer.process.stop()
            throw error
        }
        var failure: (any Error)?
        do {
            try await body(peer, node)
        } catch {
            failure = error
        }
        await peer.process.stop()
        await node.shutdown()
        if let failure { throw failure }
    }

    private func sleepRequest(seconds: UInt32) -> Selfimprove_V1_SleepRequest {
        var request = Selfimprove_V1_SleepRequest()
        request.milliseconds = seconds * 1000
        return request
    }

    @Test(.timeLimit(.minutes(2)))
    func idleAssociationStaysUpOnHeartbeatsAlone() async throws {
        try await withPeer { peer, node in
            let identity = try await node.join(peer.endpoint)
            let remote = try await diagnostics(of: peer, on: node)
            try await Task.sleep(for: .seconds(5))
            #expect(node.upNodes.contains(identity))
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func peerKilledMidCallFailsItsCallsOnDetectionAndLeavesTheListing() async throws {
        try await withPeer { peer, node in
            try await node.join(peer.endpoint)
            let remote = try await diagnostics(of: peer, on: node)
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)
            let watch = Task { await node.terminated(remote.id) }

            let calls = (0 ..< 5).map { _ in Task { try await remote.sleep(sleepRequest(seconds: 30)) } }
            try await eventually("the peer is serving the 5 calls") { try await remote.status().sleeping == 5 }
            let killedAt = ContinuousClock.now
            peer.process.send(signal: SIGKILL)
            for call in calls {
                let result = await call.result
                #expect(throws: ClusterError.self) { try result.get() }
            }
            let failedAfter = ContinuousClock.now - killedAt
            #expect(failedAfter < Self.detectionBound, "calls failed \(failedAfter) after kill -9")
            await watch.value
            #expect(!node.receptionist.lookup(DiagnosticsActor.key).contains { $0.id.node.endpoint == peer.endpoint })
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func peerStoppedWithSIGSTOPFailsItsCallsOnDetectionAndRejoinsAfterSIGCONT() async throws {
        try await withPeer { peer, node in
            var events = node.nodeEvents().makeAsyncIterator()
            let identity = try await node.join(peer.endpoint)
            #expect(await events.next() == .up(identity))
            let remote = try await diagnostics(of: peer, on: node)

            let call = Task { try await remote.sleep(sleepRequest(seconds: 30)) }
            try await eventually("the peer is serving the call") { try await remote.status().sleeping == 1 }
            let stoppedAt = ContinuousClock.now
            peer.process.send(signal: SIGSTOP)
            let result = await call.result
            let failedAfter = ContinuousClock.now - stoppedAt
            #expect(throws: ClusterError.self) { try result.get() }
            #expect(failedAfter < Self.detectionBound, "call failed \(failedAfter) after SIGSTOP")
            #expect(await events.next() == .down(identity))

            // Resumed, the same incarnation associates again and answers.
            peer.process.send(signal: SIGCONT)
            #expect(await events.next() == .up(identity))
            let again = try await diagnostics(of: peer, on: node)
            #expect(try await again.echo(echoRequest(9)).sequence == 9)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func peerCutOffByASilentLinkFailsItsCallsOnDetectionAndLeavesTheListing() async throws {
        // All traffic between the node and the peer goes through a relay that can go silent.
        let relay = try TCPRelay()
        defer { relay.stop() }
        try await withPeer(["--advertise", relay.endpoint]) { peer, node in
            let realPort = try #require(UInt16(peer.bound.split(separator: ":").last ?? ""))
            #expect(peer.endpoint == relay.endpoint)
            relay.forward(toPort: realPort)
            let identity = try await node.join(relay.endpoint)
            #expect(identity.endpoint == relay.endpoint)
            var remote: DiagnosticsActor?
            for await listing in node.receptionist.listing(DiagnosticsActor.key) {
                remote = listing.first { $0.id.node == identity }
                if remote != nil { break }
            }
            let target = try #require(remote)
            #expect(try await target.echo(echoRequest(1)).sequence == 1)

            let call = Task { try await target.sleep(sleepRequest(seconds: 30)) }
            try await eventually("the peer is serving the call") { try await target.status().sleeping == 1 }
            let cutAt = ContinuousClock.now
            relay.blackHole()
            let result = await call.result
            let failedAfter = ContinuousClock.now - cutAt
            #expect(throws: ClusterError.self) { try result.get() }
            #expect(failedAfter < Self.detectionBound, "call failed \(failedAfter) after the link went silent")
            await node.terminated(target.id)
            #expect(!node.receptionist.lookup(DiagnosticsActor.key).contains { $0.id.node == identity })
            #expect(peer.process.isRunning)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func peerRestartedOnTheSamePortIsRecognisedAsANewIncarnation() async throws {
        try await withPeer { first, node in
            let firstIdentity = try await node.join(first.endpoint)
            let oldRemote = try await diagnostics(of: first, on: node)
            first.process.send(signal: SIGKILL)
            _ = await first.process.waitForExit()

            let restarted = try await PeerProcess.launch(["--bind", first.endpoint])
            do {
                #expect(restarted.endpoint == first.endpoint)
                #expect(restarted.incarnation != first.incarnation)
                let newRemote = try await diagnostics(of: restarted, on: node)
                #expect(newRemote.id.node.incarnation == restarted.incarnation)
                #expect(try await newRemote.echo(echoRequest(3)).sequence == 3)
                #expect(!node.upNodes.contains(firstIdentity))
                await #expect(throws: (any Error).self) { _ = try await oldRemote.echo(echoRequest(4)) }
                await node.terminated(oldRemote.id)
            } catch {
                await restarted.process.stop()
                throw error
            }
            await restarted.process.stop()
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func garbageSentToAPeerProcessDoesNotHarmIt() async throws {
        try await withPeer { peer, node in
            try await node.join(peer.endpoint)
            let remote = try await diagnostics(of: peer, on: node)
            let garbage: [[[UInt8]]] = (0 ..< 50).map { index in
                [[UInt8(index)], (0 ..< index * 7).map { UInt8(truncatingIfNeeded: $0 * 31) }]
            }
            _ = try await rawExchange(endpoint: peer.endpoint, send: garbage, replies: 0, timeout: .milliseconds(300))
            try sendRawTCP(to: peer.endpoint, bytes: Array(repeating: 0xFF, count: 10_000))
            for sequence in 0 ..< 100 {
                #expect(try await remote.echo(echoRequest(UInt64(sequence))).sequence == UInt64(sequence))
            }
            #expect(peer.process.isRunning)
            let status = await peer.process.stop()
            #expect(status == 0, "peer exited with \(status): \(peer.process.standardErrorTail)")
        }
    }
}
