import Wire
import ActorCluster
import Distributed
import Testing
import TestLogs

@Suite("Associations: handshakes, restarts and failure detection")
struct AssociationTests {
    @Test(.timeLimit(.minutes(1)))
    func nodeRestartedOnTheSamePortIsANewIncarnation() async throws {
        let (caller, _) = try await startNode("caller")
        let (first, firstActor) = try await startNode("callee")
        let endpoint = first.identity.endpoint
        var events = caller.nodeEvents().makeAsyncIterator()
        do {
            let old = try await caller.join(endpoint)
            #expect(old == first.identity)
            #expect(await events.next() == .up(first.identity))
            let oldRemote = try DiagnosticsActor.resolve(id: firstActor.id, using: caller)
            #expect(try await oldRemote.echo(echoRequest(1)).sequence == 1)

            await first.shutdown()
            let (second, secondActor) = try await startNode("callee", configuration: testConfiguration("callee", bind: endpoint))
            defer { withExtendedLifetime(secondActor) {} }
            #expect(second.identity.endpoint == endpoint)
            #expect(second.identity.incarnation != first.identity.incarnation)

            // The old incarnation is reported down; the new one comes up.
            var sawDown = false, sawUp = false
            while !(sawDown && sawUp), let event = await events.next() {
                if event == .down(first.identity) { sawDown = true }
                if event == .up(second.identity) { sawUp = true }
            }
            // Calls to the old incarnation's actors fail; the new one answers.
            await #expect(throws: (any Error).self) { _ = try await oldRemote.echo(echoRequest(2)) }
            let joined = try await caller.join(endpoint)
            #expect(joined == second.identity)
            let newRemote = try DiagnosticsActor.resolve(id: secondActor.id, using: caller)
            #expect(try await newRemote.echo(echoRequest(3)).sequence == 3)
            await caller.terminated(firstActor.id)
            await second.shutdown()
        } catch {
            await first.shutdown()
            await caller.shutdown()
            throw error
        }
        await caller.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func nodesDownLongerThanTheLimitAreForgottenUnlessJoined() async throws {
        var configuration = testConfiguration("caller")
        configuration.forgetDownNodesAfter = .milliseconds(300)
        let (caller, _) = try await startNode("caller", configuration: configuration)
        let (seed, _) = try await startNode("seed")
        let (other, otherActor) = try await startNode("other")
        do {
            try await caller.join(seed.identity.endpoint)
            // Reached through an actor id, not joined.
            let remote = try DiagnosticsActor.resolve(id: otherActor.id, using: caller)
            #expect(try await remote.echo(echoRequest(1)).sequence == 1)
            #expect(caller.knownEndpointCount == 2)

            await seed.shutdown()
            await other.shutdown()
            await caller.terminated(otherActor.id)
            try await eventually("the node reached through an actor id is forgotten") { caller.knownEndpointCount == 1 }
            // The joined seed is still dialled; a watch on the forgotten node's actor ends at once.
            try await Task.sleep(for: .milliseconds(500))
            #expect(caller.knownEndpointCount == 1)
            await caller.terminated(otherActor.id)
        } catch {
            await seed.shutdown()
            await other.shutdown()
            await caller.shutdown()
            throw error
        }
        await caller.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func joiningANodeThatIsNotThereTimesOut() async throws {
        try await withNodes(1) { nodes in
            let free = try await freeTCPEndpoint()
            do {
                try await nodes[0].system.join(free, timeout: .milliseconds(300))
                Issue.record("joined a node that does not exist")
            } catch let error as ClusterError {
                #expect(error.code == .nodeUnreachable)
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func callsToANodeThatNeverAnswersFailWithoutWaitingForTheirTimeout() async throws {
        try await withNodes(1) { nodes in
            let free = try await freeTCPEndpoint()
            let ghostID = ClusterActorID(node: NodeIdentity(endpoint: free, incarnation: 1), name: "DiagnosticsActor-1")
            let ghost = try DiagnosticsActor.resolve(id: ghostID, using: nodes[0].system)
            do {
                _ = try await ghost.echo(echoRequest(1))
                Issue.record("a call to nowhere answered")
            } catch let error as ClusterError {
                #expect(error.code == .nodeUnreachable)
            }
        }
    }

    /// The cure for the stall above: a method run on the global pool (`callExecution:
    /// .globalPool`, as the coordinator, verifiers and trainer run theirs) may block for longer
    /// than the failure timeout while the node's I/O thread goes on heartbeating.
    @Test(.timeLimit(.minutes(1)))
    func aBlockingMethodOnThePoolLeavesItsNodeHeard() async throws {
        let logs = CapturedLogs()
        var workerSettings = testConfiguration("worker")
        workerSettings.callExecution = .globalPool
        var peerSettings = testConfiguration("peer")
        peerSettings.failureTimeout = .seconds(1)
        let (worker, workerDiagnostics) = try await startNode("worker", configuration: workerSettings)
        let (peer, peerDiagnostics) = try await startNode("peer", configuration: peerSettings, logs: logs)
        defer { withExtendedLifetime((workerDiagnostics, peerDiagnostics)) {} }
        do {
            try await worker.register(BlockingActor.self)
            try await peer.register(BlockingActor.self)
            let blocking = BlockingActor(actorSystem: worker)
            _ = try await peer.join(worker.identity.endpoint, timeout: .seconds(5))
            let reply = try await BlockingActor.resolve(id: blocking.id, using: peer).block(echoRequest(1500))
            #expect(reply.sequence == 1500)
            #expect(peer.upNodes.contains(worker.identity))
            #expect(!logs.all.contains { $0.message == "Node down" })
        } catch {
            await peer.shutdown()
            await worker.shutdown()
            throw error
        }
        await peer.shutdown()
        await worker.shutdown()
    }

    /// A node whose own I/O thread is stalled (a long method run on it) does not read the
    /// heartbeats waiting for it: it must not take that for its peers' silence. Stalled for 1.5
    /// failure timeouts, it keeps its peer up (the limit doubles while it is behind).
    @Test(.timeLimit(.minutes(1)))
    func aNodeStalledByItsOwnWorkDoesNotDeclareItsPeersDown() async throws {
        let logs = CapturedLogs()
        var stalledSettings = testConfiguration("stalled")
        stalledSettings.failureTimeout = .seconds(1)
        stalledSettings.callExecution = .eventLoop
        let (stalled, stalledDiagnostics) = try await startNode("stalled", configuration: stalledSettings, logs: logs)
        let (peer, peerDiagnostics) = try await startNode("peer")
        defer { withExtendedLifetime((stalledDiagnostics, peerDiagnostics)) {} }
        do {
            try await stalled.register(BlockingActor.self)
            try await peer.register(BlockingActor.self)
            let blocking = BlockingActor(actorSystem: stalled)
            _ = try await peer.join(stalled.identity.endpoint, timeout: .seconds(5))
            let peerIdentity = peer.identity
            try await eventually("the stalled node sees its peer") { stalled.upNodes.contains(peerIdentity) }
            // The call stalls the node's I/O thread for 1.5 s; the peer may well give up on it
            // (it hears nothing meanwhile), which is right and not what this test is about.
            _ = try? await BlockingActor.resolve(id: blocking.id, using: peer).block(echoRequest(1500))
            try await Task.sleep(for: .milliseconds(500))
            #expect(stalled.upNodes.contains(peerIdentity))
            #expect(!logs.all.contains { $0.message == "Node down" && $0.metadata["peer"] == "\(peerIdentity)" })
        } catch {
            await peer.shutdown()
            await stalled.shutdown()
            throw error
        }
        await peer.shutdown()
        await stalled.shutdown()
    }
}

/// A loopback endpoint nobody listens on: bound by a throwaway node, which then stops.
func freeTCPEndpoint() async throws -> String {
    let probe = try await ClusterSystem.start(configuration: testConfiguration("probe"), logger: CapturedLogs().logger())
    let endpoint = probe.identity.endpoint
    await probe.shutdown()
    return endpoint
}
