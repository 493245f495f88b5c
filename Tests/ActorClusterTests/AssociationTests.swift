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
}

/// A loopback endpoint nobody listens on: bound by a throwaway node, which then stops.
func freeTCPEndpoint() async throws -> String {
    let probe = try await ClusterSystem.start(configuration: testConfiguration("probe"), logger: CapturedLogs().logger())
    let endpoint = probe.identity.endpoint
    await probe.shutdown()
    return endpoint
}
