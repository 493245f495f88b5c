import ProcessSupervision
import ActorCluster
import Foundation
import Testing
import Wire

/// Nodes in separate OS processes (`selfimprove peer`) over TCP loopback. Serialized: these
/// tests kill and pause processes and check failure-detection bounds.
@Suite("Across processes", .serialized)
struct MultiProcessTests {
    /// Waits for the peer's diagnostics actor to be listed on `system`.
    private func diagnostics(of peer: PeerProcess, on system: ClusterSystem) async throws -> DiagnosticsActor {
        for await listing in system.receptionist.listing(DiagnosticsActor.key) {
            if let actor = listing.first(where: { $0.id.node.endpoint == peer.endpoint && $0.id.node.incarnation == peer.incarnation }) {
                return actor
            }
        }
        throw TestFailure("listing ended")
    }

    private func sleepRequest(seconds: UInt32) -> Selfimprove_V1_SleepRequest {
        var request = Selfimprove_V1_SleepRequest()
        request.milliseconds = seconds * 1000
        return request
    }

    @Test(.timeLimit(.minutes(2)))
    func idleAssociationStaysUpOnHeartbeatsAlone() async throws {
        let peer = try await PeerProcess.launch()
        let (node, _) = try await startNode("caller")
        do {
            let identity = try await node.join(peer.endpoint)
            let remote = try await diagnostics(of: peer, on: node)
            try await Task.sleep(for: .seconds(5))
            #expect(node.upNodes.contains(identity))
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)
        } catch {
            await peer.process.stop()
            await node.shutdown()
            throw error
        }
        await peer.process.stop()
        await node.shutdown()
    }

    @Test(.timeLimit(.minutes(2)))
    func peerKilledMidCallFailsItsCallsWithinThreeSecondsAndLeavesTheListing() async throws {
        let peer = try await PeerProcess.launch()
        let (node, _) = try await startNode("caller")
        do {
            try await node.join(peer.endpoint)
            let remote = try await diagnostics(of: peer, on: node)
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)
            let watch = Task { await node.terminated(remote.id) }

            let calls = (0 ..< 5).map { _ in Task { try await remote.sleep(sleepRequest(seconds: 30)) } }
            try await Task.sleep(for: .milliseconds(200))
            let killedAt = ContinuousClock.now
            peer.process.send(signal: SIGKILL)
            for call in calls {
                let result = await call.result
                #expect(throws: ClusterError.self) { try result.get() }
            }
            let failedAfter = ContinuousClock.now - killedAt
            #expect(failedAfter < .seconds(3), "calls failed \(failedAfter) after kill -9")
            await watch.value
            #expect(!node.receptionist.lookup(DiagnosticsActor.key).contains { $0.id.node.endpoint == peer.endpoint })
        } catch {
            await peer.process.stop()
            await node.shutdown()
            throw error
        }
        await peer.process.stop()
        await node.shutdown()
    }

    @Test(.timeLimit(.minutes(2)))
    func peerStoppedWithSIGSTOPFailsItsCallsWithinThreeSecondsAndRejoinsAfterSIGCONT() async throws {
        let peer = try await PeerProcess.launch()
        let (node, _) = try await startNode("caller")
        var events = node.nodeEvents().makeAsyncIterator()
        do {
            let identity = try await node.join(peer.endpoint)
            #expect(await events.next() == .up(identity))
            let remote = try await diagnostics(of: peer, on: node)

            let call = Task { try await remote.sleep(sleepRequest(seconds: 30)) }
            try await Task.sleep(for: .milliseconds(200))
            let stoppedAt = ContinuousClock.now
            peer.process.send(signal: SIGSTOP)
            let result = await call.result
            let failedAfter = ContinuousClock.now - stoppedAt
            #expect(throws: ClusterError.self) { try result.get() }
            #expect(failedAfter < .seconds(3), "call failed \(failedAfter) after SIGSTOP")
            #expect(await events.next() == .down(identity))

            // Resumed, the same incarnation associates again and answers.
            peer.process.send(signal: SIGCONT)
            #expect(await events.next() == .up(identity))
            let again = try await diagnostics(of: peer, on: node)
            #expect(try await again.echo(echoRequest(9)).sequence == 9)
        } catch {
            peer.process.send(signal: SIGCONT)
            await peer.process.stop()
            await node.shutdown()
            throw error
        }
        await peer.process.stop()
        await node.shutdown()
    }

    @Test(.timeLimit(.minutes(2)))
    func peerRestartedOnTheSamePortIsRecognisedAsANewIncarnation() async throws {
        let first = try await PeerProcess.launch()
        let (node, _) = try await startNode("caller")
        var second: PeerProcess?
        do {
            let firstIdentity = try await node.join(first.endpoint)
            let oldRemote = try await diagnostics(of: first, on: node)
            first.process.send(signal: SIGKILL)
            _ = await first.process.waitForExit()

            let restarted = try await PeerProcess.launch(["--bind", first.endpoint])
            second = restarted
            #expect(restarted.endpoint == first.endpoint)
            #expect(restarted.incarnation != first.incarnation)

            let newRemote = try await diagnostics(of: restarted, on: node)
            #expect(newRemote.id.node.incarnation == restarted.incarnation)
            #expect(try await newRemote.echo(echoRequest(3)).sequence == 3)
            #expect(!node.upNodes.contains(firstIdentity))
            await #expect(throws: (any Error).self) { _ = try await oldRemote.echo(echoRequest(4)) }
            await node.terminated(oldRemote.id)
        } catch {
            await first.process.stop()
            if let second { await second.process.stop() }
            await node.shutdown()
            throw error
        }
        if let second { await second.process.stop() }
        await node.shutdown()
    }

    @Test(.timeLimit(.minutes(2)))
    func garbageSentToAPeerProcessDoesNotHarmIt() async throws {
        let peer = try await PeerProcess.launch()
        let (node, _) = try await startNode("caller")
        do {
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
        } catch {
            await peer.process.stop()
            await node.shutdown()
            throw error
        }
        let status = await peer.process.stop()
        #expect(status == 0, "peer exited with \(status): \(peer.process.standardErrorTail)")
        await node.shutdown()
    }
}
